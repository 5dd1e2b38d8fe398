"""A Celery worker given another models store than the API's refuses to start, saying what to
fix, instead of training runs whose checkpoints the API cannot read: real API, workers,
PostgreSQL and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.config import PROJECT_ROOT
from tests.celery_cluster import Cluster, one_api
from tests.polling import run_status, wait_ended

pytestmark = [pytest.mark.live, pytest.mark.cluster]

REDIS_DATABASE = 15
START_DEADLINE_S = 60  # a refusal comes before the pool starts: seconds, on a busy machine


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Cluster]:
    """One API on a fresh PostgreSQL database and Redis database; no workers yet."""
    with one_api(tmp_path, REDIS_DATABASE) as cluster:
        yield cluster


def test_a_worker_on_another_store_refuses_to_start_and_one_on_the_apis_trains(
    api: Cluster, tmp_path: Path
) -> None:
    with httpx.Client(base_url=api.a.url, timeout=30) as http:
        posted = http.post("/runs", json={"architecture": "simple", "epochs": 50})
        assert posted.status_code == 202, posted.text
        run_id = posted.json()["id"]
        other = tmp_path / "other-store"
        strays = [
            api.start_worker(PC_MODELS_STORE=str(other)),
            api.start_worker(
                *[sys.executable, "-m", "celery", "-A", "app.jobs.celery_app", "worker"],
                *["--queues", "cpu", "--concurrency", "1", "--without-gossip", "--without-mingle"],
                PC_MODELS_STORE=str(other),
            ),
        ]
        for index, stray in enumerate(strays):
            # It exits before its pool starts, so it never takes the run.
            assert stray.wait(START_DEADLINE_S) == 1
            log = (tmp_path / f"worker-{index}.log").read_text()
            stated = f"error: the worker cannot start: the models store at PC_MODELS_STORE={other} "
            assert stated + "is not the one this database uses" in log, log
            assert "point PC_MODELS_STORE at the folder the API uses" in log, log
            assert "Traceback" not in log, log
        assert run_status(http, run_id)["status"] == "queued"  # trained nowhere
        assert not other.exists()  # and nothing written there
        api.start_worker()  # the API's store, from the cluster's settings
        done = wait_ended(http, run_id, 120)
        assert done["status"] == "succeeded", done
        predicted = http.post("/predict", json={"run_id": run_id, "points": [[0.5, 0.5]]})
        assert predicted.status_code == 200, predicted.text
        assert len(predicted.json()["probabilities"]) == 1


def test_a_worker_that_cannot_read_the_database_refuses_to_start_naming_it(
    tmp_path: Path,
) -> None:
    """It cannot tell whether its store is the API's: it says so instead of starting."""
    missing = tmp_path / "no-such-folder" / "pc.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--concurrency", "1"],
        cwd=PROJECT_ROOT,
        env={
            **os.environ,
            "PC_DATABASE_URL": f"sqlite:///{missing}",
            "PC_MODELS_STORE": str(tmp_path / "store"),
            "PC_BROKER_URL": "redis://127.0.0.1:1/0",  # never reached: it stops before
        },
        capture_output=True,
        text=True,
        timeout=START_DEADLINE_S,
    )
    assert done.returncode == 1, done.stderr
    assert "error: the worker cannot start: cannot read the database at " in done.stderr
    assert f"PC_DATABASE_URL=sqlite:///{missing}" in done.stderr
    assert "Traceback" not in done.stderr
