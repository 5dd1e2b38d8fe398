"""The Celery runner for real: two API processes and `python -m app worker` processes sharing one
PostgreSQL database, one Redis broker and one models store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.core.config import PROJECT_ROOT, Settings
from app.jobs.celery_app import TRAIN_TASK, make_celery
from scripts.live_server import LiveServer
from tests.images import decode_png
from tests.polling import run_status, wait_ended, wait_for
from tests.services_needed import fresh_postgres_database, fresh_redis_database

REDIS_DATABASE = 11  # a number of its own, so nothing else on the machine shares it


class Cluster:
    """Two APIs (a, b) and the workers, all on one database, broker and store."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.a = LiveServer(folder / "a", **env)
        self.b = LiveServer(folder / "b", **env)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, *command: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"worker-{len(self.workers)}.log").open("ab")
        worker = subprocess.Popen(
            list(command) or [sys.executable, "-m", "app", "worker", "--concurrency", "1"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = httpx.get(f"{self.a.url}/workers").json()["data"]
        return data

    def wait_for_workers(self, count: int) -> None:
        wait_for(lambda: len(self.live_workers()) >= count, 120, 0.5)

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool processes at once, as a lost machine would."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)

    def worker_logs(self) -> str:
        return "".join(path.read_text() for path in sorted(self.folder.glob("worker-*.log")))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("celery")
    with fresh_postgres_database() as database_url, fresh_redis_database(REDIS_DATABASE) as broker:
        env = {
            "PC_RUNNER": "celery",
            "PC_DATABASE_URL": database_url,
            "PC_BROKER_URL": broker,
            "PC_MODELS_STORE": str(folder / "store"),
            "PC_HEARTBEAT_TIMEOUT_S": "5",
            "PC_RECONCILE_INTERVAL_S": "0.5",
            "PC_REPUBLISH_AFTER_S": "2",
            "PC_PROGRESS_INTERVAL_S": "0.1",
        }
        for name in ("a", "b"):
            (folder / name).mkdir()
        found = Cluster(folder, env)
        with found.a, found.b:
            found.start_worker()
            found.start_worker()
            try:
                found.wait_for_workers(2)
                yield found
            finally:
                found.stop_workers()


def history_epochs(url: str, run_id: int) -> list[int]:
    epochs: list[int] = httpx.get(f"{url}/runs/{run_id}/history").json()["epoch"]
    return epochs


def test_runs_through_either_api_each_train_exactly_once(cluster: Cluster) -> None:
    health = httpx.get(f"{cluster.a.url}/health").json()
    assert health["runner"] == "celery"
    assert health["workers"] is None  # the API starts none of its own
    assert health["live_workers"] == 2
    assert {worker["queues"][0] for worker in cluster.live_workers()} == {"cpu"}
    ids = []
    for index in range(12):
        api = cluster.a if index % 2 else cluster.b
        body = {"architecture": "simple", "epochs": 1500 + index, "seed": index}
        response = httpx.post(f"{api.url}/runs", json=body)
        assert response.status_code == 202, response.text
        ids.append((response.json()["id"], 1500 + index))
    with httpx.Client(base_url=cluster.b.url, timeout=30) as http:
        for run_id, epochs in ids:
            run = wait_ended(http, run_id, 120)
            assert run["status"] == "succeeded", run
            assert run["restarts"] == 0
            # One loss per epoch: a run trained twice would have gaps, repeats or a restart.
            assert history_epochs(cluster.a.url, run_id) == list(range(epochs))


def test_predictions_and_pictures_answer_from_the_api_that_did_not_create_the_run(
    cluster: Cluster,
) -> None:
    run_id = httpx.post(f"{cluster.a.url}/runs", json={"architecture": "simple", "epochs": 800})
    run = wait_ended(httpx.Client(base_url=cluster.a.url), run_id.json()["id"], 120)
    assert run["status"] == "succeeded", run
    answer = httpx.post(
        f"{cluster.b.url}/predict", json={"run_id": run["id"], "points": [[0.2, 0.9], [0.8, 0.1]]}
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["probabilities"]) == 2
    picture = httpx.get(f"{cluster.b.url}/runs/{run['id']}/boundary.png", timeout=60)
    assert picture.status_code == 200
    assert decode_png(picture.content).size == (800, 760)


def test_cancel_and_resume_work_through_either_api(cluster: Cluster) -> None:
    with (
        httpx.Client(base_url=cluster.a.url, timeout=30) as a,
        httpx.Client(base_url=cluster.b.url, timeout=30) as b,
    ):
        run = a.post("/runs", json={"epochs": 300_000, "checkpoint_every": 500}).json()
        wait_for(lambda: run_status(b, run["id"])["epoch"] > 500, 120)
        assert b.post(f"/runs/{run['id']}/cancel").status_code == 200
        cancelled = wait_ended(a, run["id"], 60)
        assert cancelled["status"] == "cancelled", cancelled
        resumed = b.post(f"/runs/{run['id']}/resume", json={"epochs": 300})
        assert resumed.status_code == 202, resumed.text
        done = wait_ended(a, run["id"], 120)
        assert done["status"] == "succeeded", done
        assert history_epochs(cluster.a.url, run["id"]) == list(range(done["epochs"]))


def test_the_same_task_published_twice_trains_the_run_once(cluster: Cluster) -> None:
    run = httpx.post(
        f"{cluster.a.url}/runs", json={"architecture": "simple", "epochs": 3000}
    ).json()
    sender = make_celery(Settings(broker_url=cluster.env["PC_BROKER_URL"]))
    for _ in range(3):
        sender.send_task(TRAIN_TASK, args=[run["id"]], queue="cpu")
    done = wait_ended(httpx.Client(base_url=cluster.a.url), run["id"], 120)
    assert done["status"] == "succeeded", done
    assert history_epochs(cluster.a.url, run["id"]) == list(range(3000))
    wait_for(lambda: f"run {run['id']} is not queued" in cluster.worker_logs(), 30, 0.5)


def test_runs_queued_while_the_broker_is_emptied_still_finish(cluster: Cluster) -> None:
    cluster.stop_workers()
    ids = [
        httpx.post(f"{cluster.a.url}/runs", json={"architecture": "simple", "epochs": 1000}).json()[
            "id"
        ]
        for _ in range(3)
    ]
    redis.Redis.from_url(cluster.env["PC_BROKER_URL"]).flushall()  # the broker restarts empty
    cluster.start_worker()
    cluster.start_worker()
    with httpx.Client(base_url=cluster.b.url, timeout=30) as http:
        for run_id in ids:
            run = wait_ended(http, run_id, 120)
            assert run["status"] == "succeeded", run
            assert history_epochs(cluster.b.url, run_id) == list(range(1000))


def test_a_worker_killed_mid_run_loses_nothing(cluster: Cluster) -> None:
    cluster.wait_for_workers(2)
    with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
        run = http.post("/runs", json={"epochs": 12_000, "checkpoint_every": 1000}).json()
        wait_for(lambda: run_status(http, run["id"])["epoch"] > 2000, 120)
        trainer = next(w for w in cluster.live_workers() if w["run_id"] == run["id"])
        victim = next(w for w in cluster.workers if w.poll() is None and _owns(w, trainer["pid"]))
        cluster.kill_worker(victim)
        cluster.start_worker()
        done = wait_ended(http, run["id"], 180)
        assert done["status"] == "succeeded", done
        assert done["restarts"] >= 1  # once, unless a loaded machine delayed a heartbeat
        # Resumed from its last checkpoint: the history has every epoch once.
        assert history_epochs(cluster.a.url, run["id"]) == list(range(12_000))
        log = http.get(f"/runs/{run['id']}/log").text.splitlines()
        assert log[-1].startswith("Epoch 11999, Loss: ")


def test_a_worker_stopped_with_sigterm_hands_its_run_back_and_another_finishes_it(
    cluster: Cluster,
) -> None:
    cluster.wait_for_workers(2)
    with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
        run = http.post("/runs", json={"epochs": 12_000, "checkpoint_every": 1000}).json()
        wait_for(lambda: run_status(http, run["id"])["epoch"] > 1500, 120)
        trainer = next(w for w in cluster.live_workers() if w["run_id"] == run["id"])
        worker = next(w for w in cluster.workers if w.poll() is None and _owns(w, trainer["pid"]))
        os.kill(worker.pid, signal.SIGTERM)  # Celery's warm shutdown, as `docker stop` sends
        assert worker.wait(60) == 0  # within about a report, not after the whole run
        cluster.start_worker()
        done = wait_ended(http, run["id"], 180)
        assert done["status"] == "succeeded", done
        assert done["restarts"] == 0  # handed back, not lost
        assert history_epochs(cluster.a.url, run["id"]) == list(range(12_000))
    assert f"run {run['id']}: checkpointed at epoch" in cluster.worker_logs()


def _owns(worker: subprocess.Popen[bytes], pid: int) -> bool:
    """Whether `pid` is the worker's main process or one of its pool's."""
    return pid == worker.pid or os.getpgid(pid) == worker.pid


def test_celerys_own_command_starts_a_worker_with_the_same_settings(cluster: Cluster) -> None:
    cluster.stop_workers()
    wait_for(lambda: not cluster.live_workers(), 30, 0.5)
    cluster.start_worker(
        *[sys.executable, "-m", "celery", "-A", "app.jobs.celery_app", "worker"],
        *["--queues", "cpu", "--concurrency", "1", "--without-gossip", "--without-mingle"],
    )
    cluster.wait_for_workers(1)
    with httpx.Client(base_url=cluster.b.url, timeout=30) as http:
        run = http.post("/runs", json={"architecture": "simple", "epochs": 500}).json()
        done = wait_ended(http, run["id"], 120)
    assert done["status"] == "succeeded", done
    assert history_epochs(cluster.a.url, run["id"]) == list(range(500))
