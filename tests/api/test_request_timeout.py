"""A request body that arrives too slowly (a byte at a time) is cut off at PC_REQUEST_TIMEOUT_S
with a 408 and a closed connection, and nothing is stored; one that arrives in time is served.
Against a real uvicorn, whose sockets are what a slow client holds."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer

pytestmark = pytest.mark.live

TIMEOUT_S = 2
TRICKLE_INTERVAL_S = 0.2
# Far past the timeout: the machine is shared and slow, and only "it ends" is the point here.
DEADLINE_S = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(
        tmp_path_factory.mktemp("timeout"),
        PC_REQUEST_TIMEOUT_S=str(TIMEOUT_S),
        PC_RUNNER_ENABLED="false",  # no training here: no worker processes to start
    ) as live:
        yield live


def dataset_count(server: LiveServer) -> int:
    total: int = httpx.get(f"{server.url}/datasets", timeout=30).json()["count"]
    return total


def trickle(server: LiveServer, head: bytes, body: bytes, at_once: int = 0) -> tuple[bytes, float]:
    """Send `head` and the first `at_once` bytes of `body`, then the rest a byte every 0.2 s
    until the server answers. Returns all it sent back before it closed the connection, and
    the seconds from the first byte sent to that close."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(head + body[:at_once])
        sent, answer = at_once, b""
        while time.monotonic() < started + DEADLINE_S:
            readable, _, _ = select.select([sock], [], [], TRICKLE_INTERVAL_S)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""  # closed while a byte was on its way: what came first counts
                if not chunk:
                    return answer, time.monotonic() - started
                answer += chunk
            elif not answer and sent < len(body):
                sock.sendall(body[sent : sent + 1])
                sent += 1
        raise AssertionError(
            f"the connection was still open {DEADLINE_S} s after the headers, with {sent} of "
            f"{len(body)} body bytes sent; the server had answered {answer!r}"
        )


def expect_408(answer: bytes, elapsed: float) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    assert status_line.startswith("HTTP/1.1 408"), answer
    headers = {name.lower(): value for name, value in (h.split(": ", 1) for h in header_lines)}
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    detail = json.loads(body)["detail"]
    assert f"PC_REQUEST_TIMEOUT_S={TIMEOUT_S}" in detail, detail
    assert "did not arrive" in detail, detail
    # The timeout, not some other refusal, ended it (less a little: the server's event loop
    # reads its clock once an iteration, so its deadline may fall a few ms early).
    assert elapsed > TIMEOUT_S - 0.5


def test_a_json_body_sent_a_byte_at_a_time_is_408_and_the_connection_closed(
    server: LiveServer,
) -> None:
    body = json.dumps({"name": "slow", "kind": "moons", "n": 50}).encode().ljust(200)
    head = (
        b"POST /datasets/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    )
    expect_408(*trickle(server, head, body))
    fine = httpx.post(
        f"{server.url}/datasets/generate",
        json={"name": "generated-in-time", "kind": "moons", "n": 50},
        timeout=30,
    )
    assert fine.status_code == 201, fine.text
    assert "slow" not in [d["name"] for d in httpx.get(f"{server.url}/datasets").json()["data"]]


def test_an_upload_trickled_in_is_408_and_stores_nothing(server: LiveServer) -> None:
    before = dataset_count(server)
    csv = (PROJECT_ROOT / "data" / "linear.csv").read_bytes()
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="slow.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + csv + b"\r\n--b--\r\n"
    )
    head = (
        b"POST /datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    # The whole file but its last 40 bytes at once: the parser holds nearly all of it, and
    # still nothing may be stored from a body that never arrived.
    expect_408(*trickle(server, head, body, at_once=len(body) - 40))
    assert dataset_count(server) == before
    fine = httpx.post(
        f"{server.url}/datasets",
        files={"file": ("uploaded-in-time.csv", csv, "text/csv")},
        timeout=30,
    )
    assert fine.status_code == 201, fine.text
    assert dataset_count(server) == before + 1


def test_an_event_stream_outlasting_the_timeout_goes_on(server: LiveServer) -> None:
    # The timeout bounds how long a request takes to arrive, not how long its answer lasts: a
    # run's events stream for as long as it trains (no runner here: it stays queued).
    run = httpx.post(f"{server.url}/runs", json={"architecture": "simple", "epochs": 5})
    assert run.status_code == 202, run.text
    started = time.monotonic()
    with httpx.stream("GET", f"{server.url}/runs/{run.json()['id']}/events", timeout=10) as events:
        assert events.status_code == 200
        for line in events.iter_lines():
            if line == "event: progress" and time.monotonic() - started > TIMEOUT_S + 1:
                break
        else:
            raise AssertionError(f"the stream ended after {time.monotonic() - started:.1f} s")
