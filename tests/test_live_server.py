"""The service as a user starts it: a real uvicorn process on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer
from tests.images import decode_png

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def small_limit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("small"), PC_MAX_UPLOAD_BYTES="65536") as server:
        yield server


def test_upload_fetch_back_and_picture_over_http(live_server: LiveServer) -> None:
    original = (PROJECT_ROOT / "data" / "curve.csv").read_bytes()
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        created = http.post(
            "/datasets",
            files={"file": ("curve.csv", original, "text/csv")},
            data={"name": "uploaded-curve"},
        )
        assert created.status_code == 201, created.text
        dataset_id = created.json()["id"]
        assert http.get(f"/datasets/{dataset_id}/csv").content == original
        picture = http.get("/datasets/uploaded-curve/plot.png")
        assert picture.headers["content-type"] == "image/png"
        assert decode_png(picture.content).size == (600, 640)
        assert http.get("/docs").status_code == 200
        assert "/datasets" in http.get("/openapi.json").json()["paths"]


def test_curl_multipart_upload(live_server: LiveServer, tmp_path: Path) -> None:
    curl = subprocess.run(["which", "curl"], capture_output=True, text=True)
    if curl.returncode != 0:
        pytest.skip("curl is not installed")
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "-F",
            f"file=@{PROJECT_ROOT / 'data' / 'linear.csv'}",
            "-F",
            "name=from-curl",
            "-w",
            "\n%{http_code}",
            f"{live_server.url}/datasets",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    body, status = result.stdout.rsplit("\n", 1)
    assert status == "201", body
    assert '"name":"from-curl"' in body


def count(server: LiveServer) -> int:
    total: int = httpx.get(f"{server.url}/datasets").json()["count"]
    return total


def test_chunked_upload_over_limit_is_413_and_stores_nothing(
    small_limit_server: LiveServer,
) -> None:
    before = count(small_limit_server)
    boundary = "xyzboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    rows = b"1.0e-01,2.0e-01,0.0e+00\n5.0e-01,6.0e-01,1.0e+00\n" * 2000

    def body() -> Iterator[bytes]:  # no Content-Length: httpx sends it chunked
        yield head
        for _ in range(20):
            yield rows
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(
        f"{small_limit_server.url}/datasets",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=30,
    )
    assert response.status_code == 413
    assert "65536 bytes" in response.json()["detail"]
    assert count(small_limit_server) == before


def test_content_length_over_limit_is_refused_before_reading(
    small_limit_server: LiveServer,
) -> None:
    with socket.create_connection(("127.0.0.1", small_limit_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 999999999\r\n\r\n"
        )
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413")


def test_lying_short_content_length_is_a_4xx_and_stores_nothing(
    small_limit_server: LiveServer,
) -> None:
    before = count(small_limit_server)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n\r\n'
        + b"0.1,0.2,0\n0.3,0.4,1\n" * 100
        + b"\r\n--b--\r\n"
    )
    with socket.create_connection(("127.0.0.1", small_limit_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
            b"boundary=b\r\nContent-Length: 120\r\nConnection: close\r\n\r\n" + body
        )
        answer = sock.recv(4096).decode()
    status = int(answer.split()[1])
    assert 400 <= status < 500
    assert count(small_limit_server) == before


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_multipart_abuse_is_refused_quickly_without_memory_growth(live_server: LiveServer) -> None:
    assert live_server.process is not None
    url = f"{live_server.url}/datasets"
    with httpx.Client(timeout=30) as http:
        http.post(url, files={"file": ("w.csv", b"0.1,0.2,0\n0.3,0.4,1\n")}, data={"name": "warm"})
        before = rss_kib(live_server.process.pid)
        started = time.monotonic()
        for _ in range(3):
            # Thousands of parts.
            parts = b"".join(
                b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i
                for i in range(5000)
            )
            response = http.post(
                url,
                content=parts + b"--b--\r\n",
                headers={"content-type": "multipart/form-data; boundary=b"},
            )
            assert 400 <= response.status_code < 500
            # A filename of a megabyte in a part's headers.
            huge = b"n" * 1_000_000
            body = (
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
                + huge
                + b'.csv"\r\n\r\n0.1,0.2,0\n0.3,0.4,1\n\r\n--b--\r\n'
            )
            response = http.post(
                url, content=body, headers={"content-type": "multipart/form-data; boundary=b"}
            )
            assert 400 <= response.status_code < 500
        elapsed = time.monotonic() - started
        after = rss_kib(live_server.process.pid)
    assert elapsed < 30
    assert after - before < 100 * 1024, f"server grew by {(after - before) // 1024} MiB"
