"""A Celery worker whose pool process dies comes back and trains, however slowly its new pool
process starts: on a busy machine, warming torch up can take longer than Celery's default wait
for a new pool process (4 s), and Celery then kills and forks it again, for ever. Scaled down:
the new pool process is stopped (SIGSTOP) for longer than that at its start, as a machine too
busy to run it would."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.celery_cluster import Cluster, one_api
from tests.polling import wait_ended, wait_for

pytestmark = [pytest.mark.live, pytest.mark.cluster]

REDIS_DATABASE = 14
SLOW_START_S = 8.0  # twice Celery's default worker_proc_alive_timeout


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(child) for child in text.split()}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def one_worker(tmp_path: Path) -> Iterator[Cluster]:
    with one_api(tmp_path, REDIS_DATABASE) as cluster:
        cluster.start_worker()
        cluster.wait_for_workers(1)
        yield cluster


def test_a_pool_process_slow_to_start_is_waited_for_and_trains(one_worker: Cluster) -> None:
    cluster = one_worker
    main = cluster.workers[0].pid
    [first] = children(main)
    os.kill(first, signal.SIGKILL)
    # Catch its replacement as it is forked, before it has warmed up, and hold it there.
    replacement = wait_for(lambda: next(iter(children(main) - {first}), None), 60, 0.002)
    os.kill(replacement, signal.SIGSTOP)
    time.sleep(SLOW_START_S)  # the slow start itself, not a wait for a condition
    with contextlib.suppress(ProcessLookupError):
        os.kill(replacement, signal.SIGCONT)
    assert alive(replacement), "Celery killed the pool process while it was starting"
    wait_for(lambda: [w["pid"] for w in cluster.live_workers()] == [replacement], 120)
    assert children(main) == {replacement}
    with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
        run_id = http.post("/runs", json={"architecture": "simple", "epochs": 100}).json()["id"]
        assert wait_ended(http, run_id, 120)["status"] == "succeeded"
