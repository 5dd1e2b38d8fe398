"""Slow epochs and a stalled database, scaled down: a heartbeat timeout of one second, epochs
of a few seconds, and a write lock held from outside past the busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core.config import Settings
from app.main import create_app
from app.models import Run
from tests.jobs.workers import all_workers_ready, assert_history_continuous, worker_pid_of
from tests.polling import run_status, wait_ended, wait_for

pytestmark = pytest.mark.live

# About two to four seconds an epoch for one worker thread on these machines: longer than the
# heartbeat timeout below.
SLOW = {"architecture": "mlp", "hidden_layers": [768] * 6, "checkpoint_every": 1000}


@pytest.fixture
def stall_client(settings: Settings) -> Iterator[TestClient]:
    settings.runner_enabled = True
    settings.workers = 2
    settings.progress_interval_s = 0.1
    settings.heartbeat_timeout_s = 1.0
    settings.sqlite_busy_timeout_ms = 300
    settings.write_patience_s = 60.0
    with TestClient(create_app(settings)) as client:
        wait_for(lambda: all_workers_ready(client), 60)
        yield client


def slow_dataset(client: TestClient) -> str:
    body = {"kind": "moons", "n": 8000, "noise": 0.1, "seed": 1, "name": "big-moons"}
    assert client.post("/datasets/generate", json=body).status_code == 201
    return "big-moons"


def heartbeat_age_s(client: TestClient, run_id: int) -> float:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        beat = session.scalar(select(Run.heartbeat_at).where(Run.id == run_id))
    assert beat is not None
    age: float = (datetime.now(UTC) - beat).total_seconds()
    return age


@pytest.mark.slow
def test_epochs_longer_than_the_heartbeat_timeout_train_once_and_finish(
    stall_client: TestClient,
) -> None:
    dataset = slow_dataset(stall_client)
    run = stall_client.post("/runs", json={**SLOW, "dataset": dataset, "epochs": 3}).json()
    wait_for(lambda: run_status(stall_client, run["id"])["status"] == "running", 30)
    ages = []
    while run_status(stall_client, run["id"])["status"] == "running":
        ages.append(heartbeat_age_s(stall_client, run["id"]))
        time.sleep(0.1)
    ended = run_status(stall_client, run["id"])
    assert ended["status"] == "succeeded", ended
    assert ended["restarts"] == 0  # never taken for dead, never trained by a second worker
    assert stall_client.get(f"/runs/{run['id']}/history").json()["epoch"] == [0, 1, 2]
    assert max(ages) < 1.0, f"the heartbeat went {max(ages):.1f}s without a beat"


@pytest.mark.slow
def test_cancel_inside_a_long_epoch_takes_about_a_second(stall_client: TestClient) -> None:
    dataset = slow_dataset(stall_client)
    run = stall_client.post("/runs", json={**SLOW, "dataset": dataset, "epochs": 100}).json()
    # Into the second epoch, so the cancel lands inside an epoch, not at a report.
    wait_for(lambda: run_status(stall_client, run["id"])["epoch"] >= 1, 60, 0.02)
    asked = time.monotonic()
    answer = stall_client.post(f"/runs/{run['id']}/cancel").json()
    assert answer["cancel_requested"] is True
    ended = wait_ended(stall_client, run["id"], 30)
    took = time.monotonic() - asked
    assert ended["status"] == "cancelled"
    assert took < 2.0, f"took {took:.1f}s to stop inside an epoch"
    epochs = [c["epoch"] for c in stall_client.get(f"/runs/{run['id']}/checkpoints").json()]
    assert epochs == [0, ended["epoch"]]  # full batch: the stopped epoch left no half state


def hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    connection = sqlite3.connect(path, timeout=10)
    try:
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        connection.rollback()
    finally:
        connection.close()


@pytest.mark.slow
def test_a_held_write_lock_stalls_runs_without_restarting_or_failing_them(
    stall_client: TestClient, settings: Settings
) -> None:
    body: dict[str, Any] = {"architecture": "simple", "epochs": 120_000, "seed": 1}
    runs = [stall_client.post("/runs", json=body).json() for _ in range(2)]
    wait_for(lambda: all(run_status(stall_client, r["id"])["epoch"] > 100 for r in runs), 30)
    pids = {worker_pid_of(stall_client, run["id"]) for run in runs}
    held = threading.Event()
    # Past the busy timeout (0.3 s) and the heartbeat timeout (1 s), several times over.
    locker = threading.Thread(
        target=hold_write_lock, args=(settings.database_url.removeprefix("sqlite:///"), 4.0, held)
    )
    locker.start()
    held.wait(10)
    time.sleep(1.5)
    health = stall_client.get("/health").json()
    locker.join()
    assert health["status"] == "degraded"
    assert health["database_writes"].startswith("writes blocked")
    assert stall_client.get("/health").json()["database_writes"] == "ok"
    for run in runs:
        ended = wait_ended(stall_client, run["id"], 120)
        assert ended["status"] == "succeeded", ended
        assert ended["restarts"] == 0
        assert_history_continuous(stall_client, run["id"], 120_000)
    runner = stall_client.app.state.runner  # type: ignore[attr-defined]
    assert {process.pid for process in runner.processes} >= pids  # no worker died
