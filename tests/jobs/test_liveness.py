"""Whether a worker lives is judged by its heartbeat, by the database's clock, and only while the
database takes writes: a worker's clock that is off, a database outage and a reused pid, each
with real processes, scaled down (heartbeat timeouts of a few seconds)."""

from __future__ import annotations

import glob
import os
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.main import create_app
from app.models import Run
from app.models.base import utcnow
from app.vocabulary import RunStatus
from tests.celery_cluster import ONE_API_HEARTBEAT_TIMEOUT_S, Cluster, celery_env, one_api
from tests.polling import run_status, wait_ended, wait_for
from tests.services_needed import fresh_postgres_database, fresh_redis_database
from tests.tcp_proxy import Mode, TcpProxy

REDIS_DATABASE = 12
TIMEOUT_S = ONE_API_HEARTBEAT_TIMEOUT_S
# Trains for minutes on one thread: it is still running whenever the test looks.
LONG_RUN = {"architecture": "mlp", "hidden_layers": [64, 64], "epochs": 1_000_000}


@pytest.fixture
def postgres_and_redis() -> Iterator[tuple[str, str]]:
    with fresh_postgres_database() as url, fresh_redis_database(REDIS_DATABASE) as broker:
        yield url, broker


def via(proxy: TcpProxy, database_url: str) -> str:
    return make_url(database_url).set(port=proxy.port).render_as_string(hide_password=False)


@pytest.mark.live
@pytest.mark.cluster
def test_a_database_outage_longer_than_the_heartbeat_timeout_takes_no_run_from_a_live_worker(
    postgres_and_redis: tuple[str, str], tmp_path: Path
) -> None:
    """PostgreSQL goes away for over twice the heartbeat timeout and comes back, for the API a
    second before the worker: the worker lives, so it keeps its run, and no restart is counted."""
    database_url, broker = postgres_and_redis
    with TcpProxy("127.0.0.1", 5432) as api_link, TcpProxy("127.0.0.1", 5432) as worker_link:
        cluster = Cluster(tmp_path, celery_env(via(api_link, database_url), broker, tmp_path))
        (tmp_path / "a").mkdir()
        with cluster.a:
            cluster.start_worker(PC_DATABASE_URL=via(worker_link, database_url))
            try:
                cluster.wait_for_workers(1)
                http = httpx.Client(base_url=cluster.a.url, timeout=30)
                posted = http.post("/runs", json=LONG_RUN)
                assert posted.status_code == 202, posted.text
                run_id = posted.json()["id"]
                wait_for(lambda: run_status(http, run_id)["epoch"] > 0, 120)
                [worker] = cluster.live_workers()
                api_link.set_mode(Mode.REFUSE)
                worker_link.set_mode(Mode.REFUSE)
                time.sleep(2.5 * TIMEOUT_S)  # the outage itself, not a wait for a condition
                api_link.set_mode(Mode.FORWARD)
                time.sleep(1.0)  # the worker's connection comes back a moment later
                worker_link.set_mode(Mode.FORWARD)
                # Long enough for any reconciler pass to have judged the run.
                time.sleep(2 * TIMEOUT_S)
                run = run_status(http, run_id)
                assert (run["status"], run["restarts"]) == ("running", 0), run
                [still] = cluster.live_workers()
                assert (still["id"], still["run_id"]) == (worker["id"], run_id)
                epoch = run["epoch"]
                wait_for(lambda: run_status(http, run_id)["epoch"] > epoch, 60)  # trains on
                assert http.post(f"/runs/{run_id}/cancel").status_code == 200
                assert wait_ended(http, run_id, 60)["status"] == "cancelled"
            finally:
                cluster.stop_workers()


def libfaketime() -> str:
    found = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not found:
        message = "libfaketime is not installed (apt-get install faketime)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run this test")
        pytest.skip(message)
    return found[0]


@pytest.mark.live
@pytest.mark.cluster
def test_a_worker_whose_clock_is_behind_stays_visible_and_keeps_its_run(tmp_path: Path) -> None:
    """A worker 20 s behind the database (libfaketime) is listed in /workers and trains its run
    to the end with no restart: heartbeats are stamped and judged by the database's clock."""
    with one_api(tmp_path, REDIS_DATABASE) as cluster:
        cluster.start_worker(
            LD_PRELOAD=libfaketime(), FAKETIME="-20s", FAKETIME_DONT_FAKE_MONOTONIC="1"
        )
        cluster.wait_for_workers(1)
        slow = {"architecture": "mlp", "hidden_layers": [256, 256], "epochs": 3000}
        run_id = httpx.post(f"{cluster.a.url}/runs", json=slow).json()["id"]
        with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
            wait_for(lambda: run_status(http, run_id)["status"] == "running", 60)
            time.sleep(2 * TIMEOUT_S)  # past the timeout: a skewed beat would be stale now
            assert len(cluster.live_workers()) == 1
            run = wait_ended(http, run_id, 300)
        assert (run["status"], run["restarts"]) == ("succeeded", 0), run


@pytest.fixture
def restarted(settings: Settings) -> Iterator[tuple[TestClient, int]]:
    """A run left `running` by a worker whose pid now belongs to another live process (this
    test's own), as after a container restart; then the server starts again."""
    with TestClient(create_app(settings)) as before:
        run_id = before.post("/runs", json={"architecture": "simple", "epochs": 300}).json()["id"]
        with before.app.state.session_factory() as session:  # type: ignore[attr-defined]
            session.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status=RunStatus.RUNNING,
                    worker_id=f"{socket.gethostname()}:{os.getpid()}",
                    claim=1,
                    heartbeat_at=utcnow() - timedelta(minutes=5),
                )
            )
            session.commit()
    settings.runner_enabled = True
    settings.workers = 1
    settings.heartbeat_timeout_s = 2.0
    with TestClient(create_app(settings)) as after:
        yield after, run_id


@pytest.mark.live
def test_a_run_whose_worker_pid_was_reused_is_recovered(
    restarted: tuple[TestClient, int],
) -> None:
    client, run_id = restarted
    run = wait_ended(client, run_id, 120)
    assert (run["status"], run["restarts"], run["epoch"]) == ("succeeded", 1, 300), run
