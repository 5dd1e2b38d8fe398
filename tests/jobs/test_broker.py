"""A broker that accepts connections and never answers (a hung Redis, a half-open network path)
costs queued runs a later wake-up, never the API: POST /runs answers at once, reads go on,
/health names the broker, and once it answers the reconciler hands the runs over."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.celery_cluster import Cluster
from tests.polling import wait_ended, wait_for
from tests.services_needed import fresh_postgres_database, fresh_redis_database
from tests.tcp_proxy import Mode, TcpProxy

pytestmark = [pytest.mark.live, pytest.mark.cluster]

REDIS_DATABASE = 13
REQUESTS = 48  # more than the API's thread pool holds at once (40)


@pytest.fixture
def silent_broker(tmp_path: Path) -> Iterator[tuple[Cluster, TcpProxy, str]]:
    with (
        fresh_postgres_database() as database_url,
        fresh_redis_database(REDIS_DATABASE) as broker,
        TcpProxy("127.0.0.1", 6379, Mode.SILENT) as proxy,
    ):
        env = {
            "PC_RUNNER": "celery",
            "PC_DATABASE_URL": database_url,
            "PC_BROKER_URL": f"redis://127.0.0.1:{proxy.port}/{REDIS_DATABASE}",
            "PC_MODELS_STORE": str(tmp_path / "store"),
            "PC_HEARTBEAT_TIMEOUT_S": "5",
            "PC_RECONCILE_INTERVAL_S": "0.5",
            "PC_REPUBLISH_AFTER_S": "2",
        }
        (tmp_path / "a").mkdir()
        cluster = Cluster(tmp_path, env)
        with cluster.a:
            try:
                yield cluster, proxy, broker
            finally:
                cluster.stop_workers()


def health(cluster: Cluster) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{cluster.a.url}/health", timeout=30).json()
    return body


def test_a_silent_broker_stalls_nothing_and_its_runs_train_once_it_answers(
    silent_broker: tuple[Cluster, TcpProxy, str],
) -> None:
    cluster, proxy, broker = silent_broker
    down = wait_for(lambda: (h := health(cluster))["broker"].startswith("unreachable") and h, 60)
    assert down["status"] == "degraded"
    assert down["database"] == "ok"

    def post(seed: int) -> httpx.Response:
        body = {"architecture": "simple", "epochs": 50, "seed": seed}
        return httpx.post(f"{cluster.a.url}/runs", json=body, timeout=30)

    with ThreadPoolExecutor(REQUESTS) as pool:
        answers = list(pool.map(post, range(REQUESTS)))
    assert [answer.status_code for answer in answers] == [202] * REQUESTS
    listed = httpx.get(f"{cluster.a.url}/runs", params={"limit": 100}, timeout=30)
    assert listed.status_code == 200
    assert listed.json()["count"] == REQUESTS
    assert {run["status"] for run in listed.json()["data"]} == {"queued"}

    proxy.set_mode(Mode.FORWARD)  # the broker answers again; a worker that reaches it starts
    cluster.start_worker(PC_BROKER_URL=broker)
    with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
        for answer in answers:
            run = wait_ended(http, answer.json()["id"], 240)
            assert (run["status"], run["restarts"]) == ("succeeded", 0), run
    up = wait_for(lambda: (h := health(cluster))["broker"] == "ok" and h, 60)
    assert up["status"] == "ok"
