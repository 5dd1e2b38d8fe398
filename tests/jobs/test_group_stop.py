"""A sweep's runs training together with mini-batches stop within about a second, as a run alone
does, however long their epoch: a cancel stops the one run inside the epoch, and a shutdown hands
every run of the group back to the queue before the server's stop times out. Scaled down: 100,000
points in batches of one, an epoch of many seconds here (minutes on a busy machine)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from app.testing.live_server import LiveServer
from tests.polling import run_status, wait_for

pytestmark = pytest.mark.live

BIG = {"kind": "moons", "n": 100_000, "noise": 0.1, "seed": 3, "name": "moons-100k"}
SWEEP = {
    "dataset": "moons-100k",
    "base": {"architecture": "mlp", "hidden_layers": [8], "batch_size": 1, "epochs": 5},
    "grid": {"learning_rate": [0.001, 0.01, 0.1]},
}


def test_a_mini_batch_group_stops_inside_its_first_epoch(tmp_path: Path) -> None:
    env = {"PC_WORKERS": "1", "PC_PROGRESS_INTERVAL_S": "0.2"}
    server = LiveServer(tmp_path, **env)
    server.start()
    try:
        server.wait_for_workers()
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.post("/datasets/generate", json=BIG).status_code == 201
            sweep = http.post("/sweeps", json=SWEEP).json()
            ids = [run["id"] for run in sweep["runs"]]
            # One worker: the three train together, as one stacked model.
            wait_for(lambda: all(run_status(http, i)["status"] == "running" for i in ids), 120)
            assert http.post(f"/runs/{ids[0]}/cancel").status_code == 200
            cancelled = wait_for(
                lambda: (run := run_status(http, ids[0]))["status"] == "cancelled" and run, 60
            )
            others = [run_status(http, i) for i in ids[1:]]
        assert cancelled["epoch"] == 0, "it ran to its epoch's end before it stopped"
        assert [run["status"] for run in others] == ["running", "running"]
        assert [run["epoch"] for run in others] == [0, 0]  # still inside the first epoch
        # uvicorn re-raises the signal after its graceful shutdown: -15 is a clean exit here.
        assert server.terminate_group(60) in (0, -signal.SIGTERM)
        log = server.log()
        for run_id in ids[1:]:
            assert re.search(rf"run {run_id}: checkpointed at epoch 0 and put back", log), log
        assert "did not stop within" not in log  # no worker was killed
    finally:
        server.stop()
    again = LiveServer(tmp_path, **env, PC_RUNNER_ENABLED="false")
    with again, httpx.Client(base_url=again.url, timeout=30) as http:
        assert [run_status(http, i)["status"] for i in ids[1:]] == ["queued", "queued"]
