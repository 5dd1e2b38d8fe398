"""The Celery runner for real: two API processes and `python -m app worker` processes sharing one
PostgreSQL database, one Redis broker and one models store."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import expect

from app.core.config import Settings
from app.jobs.celery_app import TRAIN_TASK, make_celery, queue_for
from app.vocabulary import Queue
from tests.browser import chromium, watched_context
from tests.celery_cluster import Cluster, celery_cluster
from tests.images import decode_png
from tests.polling import run_status, wait_ended, wait_for

pytestmark = [pytest.mark.live, pytest.mark.cluster, pytest.mark.browser]

REDIS_DATABASE = 11  # a number of its own, so nothing else on the machine shares it


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with celery_cluster(tmp_path_factory.mktemp("celery"), REDIS_DATABASE) as found:
        yield found


def history_epochs(url: str, run_id: int) -> list[int]:
    epochs: list[int] = httpx.get(f"{url}/runs/{run_id}/history").json()["epoch"]
    return epochs


def test_runs_through_either_api_each_train_exactly_once(cluster: Cluster) -> None:
    health = httpx.get(f"{cluster.a.url}/health").json()
    assert health["runner"] == "celery"
    assert health["workers"] is None  # the API starts none of its own
    assert len(health["live_workers"]) == 2
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


def answered(response: httpx.Response) -> httpx.Response | None:
    """The response, unless it is a 503 (try again)."""
    return None if response.status_code == 503 else response


def test_a_sweeps_runs_train_together_on_a_celery_worker(cluster: Cluster) -> None:
    body = {
        "dataset": "curve",
        "base": {"architecture": "mlp", "hidden_layers": [16], "epochs": 200_000, "seed": 1},
        "grid": {"learning_rate": [0.001, 0.003, 0.01, 0.03]},
    }
    with (
        httpx.Client(base_url=cluster.a.url, timeout=30) as a,
        httpx.Client(base_url=cluster.b.url, timeout=30) as b,
    ):
        sweep = a.post("/sweeps", json=body).json()
        ids = [run["id"] for run in sweep["runs"]]
        wait_for(lambda: all(run_status(b, run)["epoch"] > 300 for run in ids), 120)
        # Both workers took a run's message at once; each took with it the others still queued
        # (the first one here took all it found, or half when the other was idle).
        # How the four split depends on which worker looks idle when the other claims (on a
        # busy machine, a worker still ending the last test's run takes none): at least one
        # group trains together.
        groups = re.findall(r"runs \[([\d, ]+)\] train together", cluster.worker_logs())
        grouped = [int(run) for group in groups for run in group.split(", ")]
        assert len(set(ids) & set(grouped)) >= 2, (groups, cluster.worker_logs()[-4000:])
        assert b.post(f"/runs/{ids[0]}/cancel").status_code == 200
        assert wait_ended(a, ids[0], 60)["status"] == "cancelled"
        assert {run_status(a, run)["status"] for run in ids[1:]} == {"running"}
        # A 503 says try again shortly (a lock held by the workers' writes): a client retries.
        cancelled = wait_for(lambda: answered(b.post(f"/sweeps/{sweep['id']}/cancel")), 30)
        assert cancelled.status_code == 200, cancelled.text
        for run_id in ids:
            run = wait_ended(a, run_id, 60)
            assert run["status"] == "cancelled"
            assert history_epochs(cluster.a.url, run_id) == list(range(run["epoch"]))
        assert a.get(f"/sweeps/{sweep['id']}").json()["counts"]["cancelled"] == 4


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


def long_run_in_training(
    cluster: Cluster, http: httpx.Client
) -> tuple[dict[str, Any], dict[str, Any], subprocess.Popen[bytes]]:
    """A 12,000-epoch run past its second checkpoint: the run, its worker's row and process."""
    cluster.wait_for_workers(2)
    run = http.post("/runs", json={"epochs": 12_000, "checkpoint_every": 1000}).json()
    wait_for(lambda: run_status(http, run["id"])["epoch"] > 2000, 120)
    trainer = wait_for(lambda: trainer_of(cluster, run["id"]), 10)
    worker = next(w for w in cluster.workers if w.poll() is None and _owns(w, trainer["pid"]))
    return run, trainer, worker


def test_a_worker_killed_mid_run_loses_nothing(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
        run, trainer, victim = long_run_in_training(cluster, http)
        cluster.kill_worker(victim)
        # It could not say goodbye: it drops out of /workers once its beat is stale.
        wait_for(lambda: trainer["id"] not in {w["id"] for w in cluster.live_workers()}, 30)
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
    with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
        run, _, worker = long_run_in_training(cluster, http)
        os.kill(worker.pid, signal.SIGTERM)  # Celery's warm shutdown, as `docker stop` sends
        assert worker.wait(60) == 0  # within about a report, not after the whole run
        cluster.start_worker()
        done = wait_ended(http, run["id"], 180)
        assert done["status"] == "succeeded", done
        assert done["restarts"] == 0  # handed back, not lost
        assert history_epochs(cluster.a.url, run["id"]) == list(range(12_000))
    assert f"run {run['id']}: checkpointed at epoch" in cluster.worker_logs()


def test_gpu_runs_go_to_the_cuda_queue_and_only_a_cuda_worker_takes_them(
    cluster: Cluster,
) -> None:
    # The API machine has no GPU, and needs none: the run waits for a worker of the cuda queue.
    with httpx.Client(base_url=cluster.a.url, timeout=30) as http:
        response = http.post("/runs", json={"architecture": "simple", "device": "cuda"})
        assert response.status_code == 202, response.text
        run_id = response.json()["id"]
        broker = redis.Redis.from_url(cluster.env["PC_BROKER_URL"])
        wait_for(lambda: broker.llen("cuda") >= 1, 10)
        assert run_status(http, run_id)["status"] == "queued"  # the cpu workers left it
        cluster.start_worker(
            sys.executable, "-m", "app", "worker", "--queues", "cuda", "--concurrency", "1"
        )
        wait_for(lambda: any(w["queues"] == ["cuda"] for w in cluster.live_workers()), 120)
        done = wait_ended(http, run_id, 120)
    # This machine has no GPU either: the cuda worker took the run and says why it failed.
    assert done["status"] == "failed", done
    assert "CUDA is not available" in done["error"]


def trainer_of(cluster: Cluster, run_id: int) -> dict[str, Any] | None:
    """The live worker that says it trains the run."""
    return next((w for w in cluster.live_workers() if w["run_id"] == run_id), None)


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


@pytest.mark.parametrize(
    ("device", "default", "queue"),
    [
        ("cpu", Queue.CUDA, Queue.CPU),
        ("cuda", Queue.CPU, Queue.CUDA),
        ("cuda:1", Queue.CPU, Queue.CUDA),
        ("auto", Queue.CPU, Queue.CPU),
        ("auto", Queue.CUDA, Queue.CUDA),
    ],
)
def test_a_runs_device_names_its_queue(device: str, default: Queue, queue: Queue) -> None:
    assert queue_for(device, default) == queue


def test_the_dashboard_on_two_apis_follows_a_run(cluster: Cluster) -> None:
    """Started from one API's form, watched on the other's run page: every read goes through
    the database both APIs share, whichever worker trains it."""
    with chromium() as browser, watched_context(browser) as (context, watched):
        page = context.new_page()
        page.goto(f"{cluster.a.url}/ui/new")
        expect(page.locator('input[name="dataset"][value="curve"]')).to_be_checked()
        page.fill("#f-epochs", "3000")
        page.click("#start-run")
        page.wait_for_url(re.compile(r"/ui/runs/\d+$"))
        run_id = page.url.rsplit("/", 1)[1]
        other = context.new_page()
        other.goto(f"{cluster.b.url}/ui/runs/{run_id}")
        for seen in (page, other):
            expect(seen.locator("#run-badge")).to_have_text("succeeded", timeout=120_000)
            expect(seen.locator("#checkpoint-slider")).to_have_attribute("max", "3")
            # 3000 epochs, downsampled by the server: each bucket's lowest and highest loss,
            # and epoch 0 and the last (which may be neither).
            served = httpx.get(f"{cluster.b.url}/runs/{run_id}/history?max_points=2000").json()
            assert 1000 < len(served["epoch"]) <= 2000 + 2
            expect(seen.locator("#loss-chart")).to_have_attribute(
                "data-points", str(len(served["epoch"]))
            )
        other.locator("#checkpoint-slider").focus()
        other.keyboard.press("Home")
        expect(other.locator("#plane")).to_have_attribute("data-epoch", "0")
        other.goto(f"{cluster.b.url}/")
        expect(other.locator(f'tr[data-run="{run_id}"]')).to_have_attribute(
            "data-status", "succeeded"
        )
        watched.assert_clean()
