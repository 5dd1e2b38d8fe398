"""Real worker processes on a real SQLite file: concurrency, cancel, crashes, restarts."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from app.testing.live_server import LiveServer
from tests.jobs.workers import all_workers_ready, assert_history_continuous, worker_pid_of
from tests.polling import run_status, wait_ended, wait_for

pytestmark = pytest.mark.live


@pytest.fixture
def runner_settings(settings: Settings) -> Settings:
    settings.runner_enabled = True
    settings.workers = 2
    settings.progress_interval_s = 0.1
    settings.heartbeat_timeout_s = 5.0
    return settings


@pytest.fixture
def runner_client(runner_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(runner_settings)) as client:
        yield client


def test_health_counts_workers_ready_once_they_have_warmed_up(runner_client: TestClient) -> None:
    def ready() -> dict[str, int] | None:
        return all_workers_ready(runner_client)

    assert wait_for(ready, 60) == {"configured": 2, "ready": 2}

    # Both runners' workers are in the workers table: GET /workers and the health count.
    # A worker says it is ready once warm, and registers in the table a moment later.
    def both_listed() -> list[dict[str, Any]] | None:
        data: list[dict[str, Any]] = runner_client.get("/workers").json()["data"]
        return data if len(data) == 2 else None

    listed = wait_for(both_listed, 10)
    assert [worker["runner"] for worker in listed] == ["embedded", "embedded"]
    runner = runner_client.app.state.runner  # type: ignore[attr-defined]
    assert {worker["pid"] for worker in listed} == {p.pid for p in runner.processes}
    assert len(runner_client.get("/health").json()["live_workers"]) == 2
    # A worker that dies is no longer counted, and its replacement is once it is warm.
    victim = runner.processes[0]
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(lambda: runner_client.get("/health").json()["workers"]["ready"] < 2, 10, 0.02)
    wait_for(ready, 60)
    assert runner.processes[0].pid != victim.pid


def test_two_runs_train_at_once_and_both_finish(runner_client: TestClient) -> None:
    # Both workers warm, and runs long enough (seconds with the fast engine) to overlap: else
    # one worker can finish its run before the other has warmed up to take the second.
    wait_for(lambda: all_workers_ready(runner_client), 60)
    ids = [
        runner_client.post(
            "/runs", json={"architecture": "complex", "epochs": 4500, "seed": s}
        ).json()["id"]
        for s in (1, 2)
    ]
    wait_for(lambda: all(run_status(runner_client, i)["status"] == "running" for i in ids), 60)
    runs = [wait_ended(runner_client, i) for i in ids]
    for run in runs:
        assert run["status"] == "succeeded", run
        assert run["epoch"] == 4500
        assert run["device_used"] == "cpu"
        assert run["final_loss"] is not None
        assert 0 < run["accuracy"] <= 1
        assert run["final_loss"] == run["loss"]
    assert_history_continuous(runner_client, ids[0], 4500)
    checkpoints = runner_client.get(f"/runs/{ids[0]}/checkpoints").json()
    assert [c["epoch"] for c in checkpoints] == [0, 1000, 2000, 3000, 4000, 4500]
    download = runner_client.get(f"/runs/{ids[0]}/checkpoints/4500")
    assert download.status_code == 200
    assert len(download.content) == checkpoints[-1]["size_bytes"]
    assert runner_client.get(f"/runs/{ids[0]}/checkpoints/1234").status_code == 404


def test_cancel_a_running_run_keeps_history_and_checkpoint(runner_client: TestClient) -> None:
    run_id = runner_client.post(
        "/runs", json={"epochs": 200_000, "checkpoint_every": 100_000}
    ).json()["id"]
    wait_for(lambda: run_status(runner_client, run_id)["epoch"] > 50, 60)
    asked = time.monotonic()
    response = runner_client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 200
    # The answer says a cancel is pending while the worker is still stopping.
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)
    run = wait_ended(runner_client, run_id, 30)
    stopped_after = time.monotonic() - asked
    assert run["status"] == "cancelled"
    assert stopped_after < 10, f"took {stopped_after:.1f}s to stop"
    epoch = run["epoch"]
    assert 0 < epoch < 200_000
    assert [c["epoch"] for c in runner_client.get(f"/runs/{run_id}/checkpoints").json()] == [
        0,
        epoch,
    ]
    assert runner_client.get(f"/runs/{run_id}/log").text.startswith("Epoch 0, Loss: ")
    assert runner_client.post(f"/runs/{run_id}/cancel").status_code == 409

    # Resume continues the same history for the epochs asked.
    response = runner_client.post(f"/runs/{run_id}/resume", json={"epochs": 300})
    assert response.status_code == 202
    assert response.json()["epochs"] == epoch + 300
    run = wait_ended(runner_client, run_id)
    assert run["status"] == "succeeded"
    assert_history_continuous(runner_client, run_id, epoch + 300)


def test_killed_worker_run_resumes_from_its_last_checkpoint(runner_client: TestClient) -> None:
    run_id = runner_client.post(
        "/runs", json={"epochs": 3000, "checkpoint_every": 200, "seed": 9}
    ).json()["id"]
    wait_for(lambda: run_status(runner_client, run_id)["epoch"] > 500, 60)
    os.kill(worker_pid_of(runner_client, run_id), signal.SIGKILL)
    wait_for(lambda: run_status(runner_client, run_id)["restarts"] == 1, 30)
    run = wait_ended(runner_client, run_id)
    assert run["status"] == "succeeded", run
    assert run["restarts"] == 1
    assert_history_continuous(runner_client, run_id, 3000)
    epochs = [c["epoch"] for c in runner_client.get(f"/runs/{run_id}/checkpoints").json()]
    assert epochs == list(range(0, 3001, 200))


def test_deleting_a_running_run_stops_it_and_removes_its_files(
    runner_client: TestClient, runner_settings: Settings
) -> None:
    run_id = runner_client.post("/runs", json={"epochs": 100_000, "checkpoint_every": 100}).json()[
        "id"
    ]
    wait_for(lambda: runner_client.get(f"/runs/{run_id}/checkpoints").json(), 60)
    assert runner_client.delete(f"/runs/{run_id}").status_code == 204
    assert runner_client.get(f"/runs/{run_id}").status_code == 404
    time.sleep(1.0)  # the worker notices at its next report and leaves nothing behind
    assert not (runner_settings.models_store / f"run-{run_id}").exists()
    assert runner_client.get("/health").json()["queue"] == {"queued": 0, "running": 0}


def test_a_diverging_run_fails_with_the_epoch(runner_client: TestClient) -> None:
    content = b"1e30,1e30,0\n-1e30,2e30,1\n3e30,-1e30,1\n"
    runner_client.post("/datasets", files={"file": ("huge.csv", content)}, data={"name": "huge"})
    run_id = runner_client.post(
        "/runs",
        json={
            "dataset": "huge",
            "architecture": "simple",
            "epochs": 500,
            "optimizer": "sgd",
            "learning_rate": 1.0,
        },
    ).json()["id"]
    run = wait_ended(runner_client, run_id)
    assert run["status"] == "failed"
    assert run["error"].startswith("loss diverged at epoch ")
    assert "NaN" not in runner_client.get(f"/runs/{run_id}").text


def kill_mid_run(
    tmp_path: Path, env: dict[str, str], body: dict[str, Any], past_epoch: int
) -> tuple[LiveServer, int]:
    """Start a server and a run, SIGKILL the server once the run is past `past_epoch`, and start
    a new server on the same folder: (the new server, the run's id)."""
    server = LiveServer(tmp_path, **env)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            run_id: int = http.post("/runs", json=body).json()["id"]
            wait_for(lambda: run_status(http, run_id)["epoch"] > past_epoch, 90)
    finally:
        server.kill()
    restarted = LiveServer(tmp_path, **env)
    try:
        restarted.start()
    except BaseException:
        restarted.stop()
        raise
    return restarted, run_id


def test_orphaned_run_fails_with_a_reason_after_max_restarts(tmp_path: Path) -> None:
    env = {"PC_WORKERS": "1", "PC_PROGRESS_INTERVAL_S": "0.1", "PC_MAX_RESTARTS": "0"}
    server, run_id = kill_mid_run(tmp_path, env, {"epochs": 100_000}, past_epoch=10)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            run = wait_ended(http, run_id, 60)
        assert run["status"] == "failed"
        assert "PC_MAX_RESTARTS=0" in run["error"]
    finally:
        server.stop()


def test_sigterm_checkpoints_running_runs_and_the_next_start_resumes_them(tmp_path: Path) -> None:
    env = {"PC_WORKERS": "1", "PC_PROGRESS_INTERVAL_S": "0.1"}
    server = LiveServer(tmp_path, **env)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            run_id = http.post("/runs", json={"epochs": 3000, "seed": 2}).json()["id"]
            wait_for(lambda: run_status(http, run_id)["epoch"] > 300, 90)
        # uvicorn re-raises the signal after its graceful shutdown: -15 is a clean exit here.
        assert server.terminate_group() in (0, -signal.SIGTERM)
        log = server.log()
        assert "Application shutdown complete" in log
        handed_back = re.search(
            rf"run {run_id}: checkpointed at epoch (\d+) and put back in the queue", log
        )
        assert handed_back is not None, log
        assert "leaked semaphore" not in log
        server = LiveServer(tmp_path, **env)
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            checkpoints = [c["epoch"] for c in http.get(f"/runs/{run_id}/checkpoints").json()]
            assert checkpoints
            assert checkpoints[-1] > 300  # written at shutdown, not only at 1000
            assert checkpoints[-1] == int(handed_back.group(1))  # the log line says where
            run = wait_ended(http, run_id, 120)
            assert run["status"] == "succeeded", run
            assert run["restarts"] == 0  # handed back on purpose, not lost
            assert_history_continuous(http, run_id, 3000)
    finally:
        server.stop()


def test_ctrl_c_stops_an_idle_server_whose_workers_stop_on_their_own(tmp_path: Path) -> None:
    # Ctrl+C in a terminal sends SIGINT to the whole process group: the server, its workers
    # (which ignore it and wait for the server's SIGTERM) and multiprocessing's helper. The
    # time it takes is measured apart (it varies with the machine's load); this holds the way
    # it stops: each worker says it stopped, none is killed, nothing is left running.
    server = LiveServer(tmp_path, PC_WORKERS="2")
    server.start()
    try:
        server.wait_for_workers()

        def both_listed() -> list[dict[str, Any]] | None:
            data: list[dict[str, Any]] = httpx.get(f"{server.url}/workers").json()["data"]
            return data if len(data) == 2 else None

        workers = wait_for(both_listed, 10)
        assert server.process is not None
        group = os.getpgid(server.process.pid)
        os.killpg(group, signal.SIGINT)
        returncode = server.process.wait(30)
    finally:
        server.stop()
    assert returncode in (0, -signal.SIGINT), returncode
    log = server.log()
    for worker in workers:
        assert f"worker {worker['id']} stopped" in log, log
    assert "did not stop within" not in log  # no worker was killed
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
    assert "leaked semaphore" not in log
    still_there = [pid for pid in group_members(group) if pid != os.getpid()]
    assert still_there == [], still_there


def group_members(group: int) -> list[int]:
    """Processes of a process group that are alive (not zombies)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_a_worker_process_imports_nothing_of_the_web_framework() -> None:
    # A worker is a fresh interpreter (spawn) that imports everything worker_main needs before
    # it is ready; FastAPI and Starlette, which it never uses, cost it a fifth of a second and
    # more on a busy machine. Run as spawn runs it under `python -m app`: the parent's main
    # module again as __mp_main__, then the worker's.
    code = (
        "import runpy, sys; runpy.run_module('app.__main__', run_name='__mp_main__'); "
        "import app.jobs.worker; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[:2000] + done.stderr[-2000:]


def test_events_stream_progress_until_the_run_ends(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        # Seconds of training even with the fast engine, so the twice-a-second events see it run.
        body = {"architecture": "simple", "epochs": 60_000}
        run_id = http.post("/runs", json=body).json()["id"]
        events: list[tuple[str, dict[str, Any]]] = []
        with http.stream("GET", f"/runs/{run_id}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name is not None:
                    events.append((name, json.loads(line.removeprefix("data: "))))
        # The stream ended by itself, when the run did.
        statuses = [data["status"] for kind, data in events if kind == "status"]
        assert statuses[-1] == "succeeded"
        assert "running" in statuses
        progress = [data for kind, data in events if kind == "progress"]
        assert len(progress) >= 2
        epochs = [data["epoch"] for data in progress]
        assert epochs == sorted(epochs)
        assert events[-1][1]["final_loss"] == run_status(http, run_id)["final_loss"]


def test_deleting_training_runs_logs_no_error(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        live_server.wait_for_workers()
        # A checkpoint every epoch, so deletes land while files are being written.
        body = {"architecture": "simple", "epochs": 100_000, "checkpoint_every": 100}
        for _ in range(4):
            ids = [http.post("/runs", json=body).json()["id"] for _ in range(2)]

            def all_training(ids: list[int] = ids) -> bool:
                return all(run_status(http, run_id)["epoch"] > 0 for run_id in ids)

            wait_for(all_training, 30, 0.02)
            for run_id in ids:
                assert http.delete(f"/runs/{run_id}").status_code == 204
        time.sleep(1.0)  # the workers notice at their next beat or report
        assert http.get("/health").json()["workers"]["ready"] == 2
    log = live_server.log()
    assert "Traceback" not in log
    assert "ERROR" not in log
    assert "training run" in log  # the workers' own lines do reach the server's log


def test_a_run_trained_on_mse_keeps_it_through_the_worker_and_its_checkpoints(
    runner_client: TestClient,
) -> None:
    body = {"dataset": "linear", "architecture": "simple", "epochs": 300, "loss": "mse"}
    run = wait_ended(runner_client, runner_client.post("/runs", json=body).json()["id"])
    assert (run["status"], run["loss_function"]) == ("succeeded", "mse")
    history = runner_client.get(f"/runs/{run['id']}/history").json()["loss"]
    assert history[-1] < history[0] <= 1.0  # squared errors of probabilities
    checkpoint = runner_client.get(f"/runs/{run['id']}/checkpoints/300").content
    state = torch.load(io.BytesIO(checkpoint), weights_only=True)
    assert state["config"]["loss"] == "mse"
    assert runner_client.get(f"/runs/{run['id']}/boundary.png").status_code == 200


def test_runs_alone_and_together_resume_when_the_server_is_killed(tmp_path: Path) -> None:
    env = {"PC_WORKERS": "2", "PC_PROGRESS_INTERVAL_S": "0.1", "PC_HEARTBEAT_TIMEOUT_S": "5"}
    base: dict[str, Any] = {
        "architecture": "mlp",
        "hidden_layers": [16],
        "activation": "tanh",
        "epochs": 20000,
        "checkpoint_every": 1000,
        "seed": 3,
    }
    body = {"dataset": "curve", "base": base, "grid": {"learning_rate": [0.003, 0.01, 0.03]}}
    server = LiveServer(tmp_path, **env)
    server.start()
    try:
        server.wait_for_workers()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            # One worker busy with a run alone, then the other takes the sweep's three.
            lone = {**base, "dataset": "curve", "epochs": 60000, "seed": 4}
            alone = http.post("/runs", json=lone).json()["id"]
            wait_for(lambda: run_status(http, alone)["epoch"] > 0, 60)
            sweep = http.post("/sweeps", json=body).json()
            together = [run["id"] for run in sweep["runs"]]
            ids = [alone, *together]
            wait_for(lambda: all(run_status(http, run)["epoch"] > 400 for run in ids), 90)
    finally:
        server.kill()
    # The next start finds all four orphaned and resumes each from its last checkpoint: the
    # sweep's three together again, the other alone.
    server = LiveServer(tmp_path, **env)
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for run_id, epochs in zip(ids, (60000, 20000, 20000, 20000), strict=True):
                run = wait_ended(http, run_id, 180)
                assert (run["status"], run["restarts"]) == ("succeeded", 1), run
                assert_history_continuous(http, run_id, epochs)
            counts = http.get(f"/sweeps/{sweep['id']}").json()["counts"]
            assert counts["succeeded"] == 3
        assert re.search(r"runs \[\d+(, \d+)+\] train together", server.log())
    finally:
        server.stop()
