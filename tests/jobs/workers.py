"""What the worker tests share: fixtures' settings, and reading what the workers did."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.models import Run
from tests.polling import run_status


def assert_history_continuous(
    client: TestClient | httpx.Client, run_id: int, epochs: int
) -> list[str]:
    """The log's epochs and the run's progress agree, with no gap and no repeat."""
    log = client.get(f"/runs/{run_id}/log").text.splitlines()
    run = run_status(client, run_id)
    assert run["epoch"] == epochs
    expected = [e for e in range(epochs) if e % run["log_every"] == 0 or e == epochs - 1]
    assert [int(line.split(",")[0].removeprefix("Epoch ")) for line in log] == expected
    return log


def worker_pid_of(client: TestClient, run_id: int) -> int:
    with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
        worker_id = session.scalar(select(Run.worker_id).where(Run.id == run_id))
    assert worker_id is not None
    return int(worker_id.rpartition(":")[2])


def all_workers_ready(client: TestClient) -> dict[str, int] | None:
    workers: dict[str, int] = client.get("/health").json()["workers"]
    return workers if workers["ready"] == workers["configured"] else None
