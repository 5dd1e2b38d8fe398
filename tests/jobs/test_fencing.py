"""A worker that loses its run while it is paused (a frozen VM, a long GC, a partition) and
then wakes changes nothing of the run's new owner: no row, no checkpoint file.

Scaled down and made exact: two workers' task code in one process, on real databases and real
files. Worker A's `on_report` hook (called at every report and every heartbeat) blocks, which
stops it as SIGSTOP would; recovery takes the run from it, worker B resumes and finishes it, then
A wakes in the middle of the report that falls on a checkpoint's epoch.
"""

from __future__ import annotations

import hashlib
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.jobs.liveness import Liveness
from app.jobs.task import TaskContext, execute_run, write
from app.ml.checkpoints import load_checkpoint
from app.models import Checkpoint, Run, RunHistory
from app.services.run_lifecycle import claim_next_run
from tests.polling import wait_for


@pytest.fixture
def database_url(both_databases: str) -> str:
    return both_databases


class Freeze:
    """An `on_report` hook that stops whichever of the worker's threads calls it, until thawed."""

    def __init__(self) -> None:
        self.frozen, self.thawed = threading.Event(), threading.Event()

    def __call__(self) -> None:
        self.frozen.set()
        self.thawed.wait(120)


def test_a_worker_woken_after_losing_its_run_leaves_the_new_owners_files_alone(
    client: TestClient, settings: Settings
) -> None:
    body = {"architecture": "simple", "dataset": "linear", "epochs": 60, "checkpoint_every": 10}
    run_id = client.post("/runs", json=body).json()["id"]
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    freeze = Freeze()

    def context(worker_id: str, **hooks: object) -> TaskContext:
        # Reports only at checkpoints: A freezes at epoch 10's report, a checkpoint's epoch.
        settings.progress_interval_s = 1e9
        return TaskContext.from_settings(settings, factory, worker_id, **hooks)  # type: ignore[arg-type]

    paused = context("host-a:1", on_report=freeze)
    claim_a = write(paused, lambda session: claim_next_run(session, "host-a:1"))
    assert claim_a is not None
    worker_a = threading.Thread(target=execute_run, args=(claim_a, paused), daemon=True)
    worker_a.start()
    assert freeze.frozen.wait(60)

    liveness = Liveness(heartbeat_timeout_s=0.5)
    wait_for(lambda: liveness.recover(factory, max_restarts=3) == [run_id], 60, 0.1)

    awake = context("host-b:2")
    claim_b = write(awake, lambda session: claim_next_run(session, "host-b:2"))
    assert claim_b is not None
    assert claim_b.run_id == run_id
    assert claim_b.number == claim_a.number + 1
    execute_run(claim_b, awake)  # resumes from A's epoch 0, trains all 60 epochs
    with session_scope(factory) as session:
        assert session.scalar(select(Run.status).where(Run.id == run_id)) == "succeeded"
        before = {
            row.epoch: (row.path, row.sha256)
            for row in session.scalars(select(Checkpoint).where(Checkpoint.run_id == run_id))
        }
    assert sorted(before) == [0, 10, 20, 30, 40, 50, 60]

    freeze.thawed.set()  # A wakes inside epoch 10's report, finds the run gone, stops
    worker_a.join(60)
    assert not worker_a.is_alive()

    with session_scope(factory) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert (run.status, run.epoch, run.restarts) == ("succeeded", 60, 1)
        after = {
            row.epoch: (row.path, row.sha256)
            for row in session.scalars(select(Checkpoint).where(Checkpoint.run_id == run_id))
        }
        epochs = list(
            session.scalars(
                select(RunHistory.epoch)
                .where(RunHistory.run_id == run_id)
                .order_by(RunHistory.epoch)
            )
        )
    assert after == before
    for epoch, (path, sha256) in after.items():  # every file is B's, whole, and loads
        data = (settings.models_store / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, f"epoch {epoch}'s file was replaced"
        assert load_checkpoint(settings.models_store, path, sha256)["epoch"] == epoch
    assert epochs == list(range(60))  # A wrote no loss of its own
    files = sorted(p.name for p in (settings.models_store / f"run-{run_id}").iterdir())
    assert len(files) == len(after), f"A left files behind: {files}"
    # And the run can be resumed from its last checkpoint, as a user would.
    assert client.post(f"/runs/{run_id}/resume", json={"epochs": 10}).status_code == 202
    engine.dispose()
