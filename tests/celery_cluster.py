"""A Celery deployment on this machine, for tests: two API processes and `python -m app
worker` processes sharing a fresh PostgreSQL database, a Redis database and a models store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer
from tests.polling import wait_for
from tests.services_needed import fresh_postgres_database, fresh_redis_database


class Cluster:
    """Two APIs (a, b) and the workers, all on one database, broker and store."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.a = LiveServer(folder / "a", **env)
        self.b = LiveServer(folder / "b", **env)
        self.workers: list[subprocess.Popen[bytes]] = []

    def start_worker(self, *command: str, **env: str) -> subprocess.Popen[bytes]:
        """`python -m app worker` (or `command`), with the cluster's settings and `env`'s."""
        log = (self.folder / f"worker-{len(self.workers)}.log").open("ab")
        worker = subprocess.Popen(
            list(command) or [sys.executable, "-m", "app", "worker", "--concurrency", "1"],
            cwd=PROJECT_ROOT,
            env={**os.environ, **self.env, **env, "PYTHONUNBUFFERED": "1"},
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


@contextmanager
def celery_cluster(folder: Path, redis_database: int) -> Iterator[Cluster]:
    """Two APIs and two workers, started; everything stopped and dropped afterwards."""
    with fresh_postgres_database() as database_url, fresh_redis_database(redis_database) as broker:
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


# PC_HEARTBEAT_TIMEOUT_S of `one_api`'s deployments: seconds, so liveness is judged quickly.
ONE_API_HEARTBEAT_TIMEOUT_S = 4.0


def celery_env(database_url: str, broker_url: str, folder: Path) -> dict[str, str]:
    """The settings of a one-API Celery deployment on these databases, its store in `folder`."""
    return {
        "PC_RUNNER": "celery",
        "PC_DATABASE_URL": database_url,
        "PC_BROKER_URL": broker_url,
        "PC_MODELS_STORE": str(folder / "store"),
        "PC_HEARTBEAT_TIMEOUT_S": str(ONE_API_HEARTBEAT_TIMEOUT_S),
        "PC_RECONCILE_INTERVAL_S": "0.5",
        "PC_PROGRESS_INTERVAL_S": "0.1",
    }


@contextmanager
def one_api(folder: Path, redis_database: int) -> Iterator[Cluster]:
    """One API (`a`) on a fresh PostgreSQL database and Redis database, no worker yet; the
    workers the test starts are stopped afterwards."""
    with fresh_postgres_database() as url, fresh_redis_database(redis_database) as broker:
        cluster = Cluster(folder, celery_env(url, broker, folder))
        (folder / "a").mkdir()
        with cluster.a:
            try:
                yield cluster
            finally:
                cluster.stop_workers()
