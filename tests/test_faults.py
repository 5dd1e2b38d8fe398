"""Faults and load, bounded: the kill loop, readers beside busy writers, the load script."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from app.testing.live_server import LiveServer
from scripts import kill_loop, load
from tests.polling import run_status, wait_for

pytestmark = pytest.mark.live


def test_kill_loop_loses_nothing(tmp_path: Path) -> None:
    # docs/robustness.md's figures come from `python -m scripts.kill_loop --kills 10`; two here.
    report = kill_loop.run_loop(kills=2, seed=7, folder=tmp_path, finish_timeout=300)
    assert report.kills == 2
    assert report.checks > 50
    assert report.problems == []


def test_readers_never_see_a_locked_database_while_workers_write(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, PC_WORKERS="2", PC_PROGRESS_INTERVAL_S="0.02")
    server.start()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            ids = [
                http.post("/runs", json={"epochs": 100_000, "seed": s}).json()["id"] for s in (1, 2)
            ]
            wait_for(lambda: min(run_status(http, i)["epoch"] for i in ids) > 0)
            before = [http.get(f"/runs/{i}").json()["epoch"] for i in ids]
        stop_at = time.monotonic() + 4.0

        def reader(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while time.monotonic() < stop_at:
                    for path in (
                        f"/runs/{ids[n % 2]}",
                        f"/runs/{ids[n % 2]}/history?every=100",
                        "/health",
                    ):
                        response = http.get(path)
                        statuses[response.status_code] += 1
                        if response.status_code != 200:
                            failures.append(f"{path}: {response.status_code} {response.text[:200]}")

        # Sixteen readers, and a writer through the API at the same time.
        threads = [threading.Thread(target=reader, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            while time.monotonic() < stop_at:
                response = http.post(
                    "/datasets/generate", json={"kind": "xor", "name": f"w{time.monotonic_ns()}"}
                )
                statuses[response.status_code] += 1
                if response.status_code != 201:
                    failures.append(f"generate: {response.status_code} {response.text[:200]}")
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            progressed = [http.get(f"/runs/{i}").json()["epoch"] for i in ids]
            for run_id in ids:
                http.post(f"/runs/{run_id}/cancel")
    finally:
        server.stop()
    assert failures == []
    assert sum(statuses.values()) > 100
    # The workers kept writing their loss batches all along.
    assert all(after > start for after, start in zip(progressed, before, strict=True))
    assert "database is locked" not in server.log()


def test_load_script_serves_every_request(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, PC_WORKERS="2")
    server.start()
    try:
        figures = asyncio.run(load.drive(server, clients=10, seconds=3.0, seed=1))
    finally:
        server.stop()
    assert figures["errors"] == 0, figures["error_samples"]
    assert isinstance(figures["requests"], int)
    assert figures["requests"] > 20
    assert figures["runs_training_throughout"] == ["running", "running"]
