"""Claiming and recovering runs against a real SQLite file, from several processes."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.models import Run
from app.models.base import utcnow
from app.services.run_lifecycle import claim_group, claim_next_run, recover_orphaned_runs


@pytest.fixture
def database_url(both_databases: str) -> str:
    return both_databases  # these run on SQLite and on PostgreSQL


def claim_all(database_url: str, worker_id: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    factory = make_session_factory(make_engine(database_url))
    claimed = []
    while True:
        with session_scope(factory) as session:
            claim = claim_next_run(session, worker_id)
        if claim is None:
            break
        claimed.append(claim.run_id)
    out.put((worker_id, claimed))


@pytest.mark.live
def test_concurrent_claimers_never_take_the_same_run(
    client: TestClient, settings: Settings
) -> None:
    ids = [client.post("/runs", json={"epochs": 5}).json()["id"] for _ in range(40)]
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = [
        context.Process(target=claim_all, args=(settings.database_url, f"w{i}", out))
        for i in range(4)
    ]
    for process in processes:
        process.start()
    results = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    claimed = [run_id for _, runs in results for run_id in runs]
    assert sorted(claimed) == sorted(ids)  # every run once, none twice
    for worker_id, runs in results:
        for run_id in runs:
            assert client.get(f"/runs/{run_id}").json()["status"] == "running"
        assert runs == sorted(runs), f"{worker_id} claimed out of order"


def test_claims_oldest_first(client: TestClient, settings: Settings) -> None:
    ids = [client.post("/runs", json={"epochs": 5}).json()["id"] for _ in range(3)]
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        claims = [claim_next_run(session, "w") for _ in range(4)]
    assert [claim.run_id if claim else None for claim in claims] == [*ids, None]
    assert [claim.number if claim else None for claim in claims] == [1, 1, 1, None]


def test_recovery_requeues_then_fails_after_max_restarts(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    run_id = client.post("/runs", json={"epochs": 5}).json()["id"]
    factory = make_session_factory(make_engine(settings.database_url))

    def stale(_worker: str | None, heartbeat: object) -> bool:
        return True

    for attempt in range(3):
        with session_scope(factory) as session:
            claim = claim_next_run(session, "gone:1")
            assert claim is not None
            assert (claim.run_id, claim.number) == (run_id, attempt + 1)  # each claim its own
            session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(heartbeat_at=utcnow() - timedelta(minutes=5))
            )
        with session_scope(factory) as session:
            assert recover_orphaned_runs(session, is_orphaned=stale, max_restarts=2) == [run_id]
        run = client.get(f"/runs/{run_id}").json()
        if attempt < 2:
            assert run["status"] == "queued"
            assert run["restarts"] == attempt + 1
        else:
            assert run["status"] == "failed"
            assert "PC_MAX_RESTARTS=2" in run["error"]
            assert run["finished_at"] is not None
    with session_scope(factory) as session:
        assert session.scalar(select(Run.worker_id).where(Run.id == run_id)) is None


def test_a_claimed_sweep_run_takes_the_queued_runs_it_can_train_with(
    client: TestClient, settings: Settings
) -> None:
    body = {
        "dataset": "curve",
        "base": {"architecture": "mlp", "hidden_layers": [8], "epochs": 50},
        "grid": {"activation": ["tanh", "relu"], "learning_rate": [0.001, 0.01, 0.1]},
    }
    sweep = client.post("/sweeps", json=body).json()
    tanh = [run["id"] for run in sweep["runs"] if run["values"]["activation"] == "tanh"]
    alone = client.post("/runs", json={"epochs": 5}).json()["id"]
    factory = make_session_factory(make_engine(settings.database_url))

    def claim(worker_id: str, *, most: int = 16, idle: int = 0) -> list[int]:
        with session_scope(factory) as session:
            claim = claim_next_run(session, worker_id)
            assert claim is not None
            group = claim_group(session, claim, most=most, idle_workers=idle)
            return [member.run_id for member in group]

    # The tanh runs differ only in their learning rates: one stack; the relu ones are another.
    assert claim("a", most=2) == tanh[:2]
    assert claim("b") == [tanh[2]]  # the only one of its shape left
    relu = [run["id"] for run in sweep["runs"] if run["values"]["activation"] == "relu"]
    # Two idle workers and nothing else in the queue but one run: each gets a share.
    assert claim("c", idle=2) == relu[:2]
    assert claim("d") == [relu[2]]
    assert claim("e") == [alone]  # not a sweep's: always alone
    with session_scope(factory) as session:
        owners = {row.id: row.worker_id for row in session.execute(select(Run.id, Run.worker_id))}
    assert [owners[run] for run in [*tanh, *relu, alone]] == list("aabccde")
