"""Ordinary requests racing each other on a live server, from threads: each answers what
happened (404, 409), never a 500, and the database holds no run without its dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.testing.live_server import LiveServer

pytestmark = pytest.mark.live

PAIRS = 25


@pytest.fixture(scope="module")
def race_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # No workers: the runs stay queued, so every race is between the two requests alone.
    with LiveServer(tmp_path_factory.mktemp("races"), PC_RUNNER_ENABLED="false") as server:
        yield server


def race(
    server: LiveServer,
    first: Callable[[httpx.Client], httpx.Response],
    second: Callable[[httpx.Client], httpx.Response],
) -> tuple[httpx.Response, httpx.Response]:
    with (
        httpx.Client(base_url=server.url, timeout=60) as a,
        httpx.Client(base_url=server.url, timeout=60) as b,
        ThreadPoolExecutor(2) as pool,
    ):
        left, right = pool.submit(first, a), pool.submit(second, b)
        return left.result(), right.result()


def test_post_runs_racing_delete_dataset_answers_404_or_409(race_server: LiveServer) -> None:
    with httpx.Client(base_url=race_server.url, timeout=60) as http:
        for index in range(PAIRS):
            name = f"race-{index}"
            body = {"kind": "xor", "n": 50, "name": name}
            assert http.post("/datasets/generate", json=body).status_code == 201

            def start(client: httpx.Client, name: str = name) -> httpx.Response:
                return client.post("/runs", json={"dataset": name, "epochs": 5})

            def delete(client: httpx.Client, name: str = name) -> httpx.Response:
                return client.delete(f"/datasets/{name}")

            started, deleted = race(race_server, start, delete)
            pair = (started.status_code, deleted.status_code)
            assert pair in {(202, 409), (404, 204)}, (pair, started.text, deleted.text)
            dataset = http.get(f"/datasets/{name}")
            runs = http.get("/runs", params={"dataset": name})
            if pair == (202, 409):
                assert dataset.status_code == 200
                assert runs.json()["count"] == 1
            else:
                assert dataset.status_code == 404
    assert "Traceback" not in race_server.log()


@pytest.mark.parametrize("action", ["cancel", "resume"])
def test_cancel_or_resume_racing_delete_run_answers_404_or_409(
    race_server: LiveServer, action: str
) -> None:
    allowed = {"cancel": {200, 404, 409}, "resume": {202, 404, 409}}[action]
    with httpx.Client(base_url=race_server.url, timeout=60) as http:
        for _ in range(PAIRS):
            run_id = http.post("/runs", json={"epochs": 5}).json()["id"]
            if action == "resume":
                assert http.post(f"/runs/{run_id}/cancel").status_code == 200

            def act(client: httpx.Client, run_id: int = run_id) -> httpx.Response:
                body = {"epochs": 5} if action == "resume" else None
                return client.post(f"/runs/{run_id}/{action}", json=body)

            def delete(client: httpx.Client, run_id: int = run_id) -> httpx.Response:
                return client.delete(f"/runs/{run_id}")

            acted, deleted = race(race_server, act, delete)
            assert acted.status_code in allowed, acted.text
            assert deleted.status_code in {204, 404}, deleted.text
            assert http.get(f"/runs/{run_id}").status_code == 404
    assert "Traceback" not in race_server.log()
