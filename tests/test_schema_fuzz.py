"""Property-based fuzzing of the whole API from its own OpenAPI schema, with schemathesis's
default checks, against a live uvicorn that requires an API key for writes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer

pytestmark = pytest.mark.live

KEY = "fuzz-key"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # No runner: fuzzed runs stay queued instead of training random networks for minutes.
    with LiveServer(
        tmp_path_factory.mktemp("schema-fuzz"), PC_RUNNER_ENABLED="false", PC_API_KEY=KEY
    ) as server:
        yield server


def test_schemathesis_finds_no_failure(fuzz_server: LiveServer, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{fuzz_server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        "15",
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--header",
        f"Authorization: Bearer {KEY}",
        "--seed",
        "1",
    ]
    if shutil.which(command[0]) is None:
        pytest.fail("schemathesis is not installed; it is in requirements.lock")
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "Traceback" not in fuzz_server.log(), fuzz_server.log()[-4000:]
    # The server is still healthy afterwards.
    assert httpx.get(f"{fuzz_server.url}/health").json()["status"] == "ok"
