"""Waiting in tests: the one polling helper, and the waits built on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from fastapi.testclient import TestClient

from app.vocabulary import RunStatus

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.1) -> T:
    """The first truthy value `check` returns, asked every `interval` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s; last: {value!r}")
        time.sleep(interval)


def run_status(client: TestClient | httpx.Client, run_id: int) -> dict[str, Any]:
    response = client.get(f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_ended(
    client: TestClient | httpx.Client, run_id: int, timeout: float = 120
) -> dict[str, Any]:
    """The run once it has ended (succeeded, failed or cancelled)."""

    def ended() -> dict[str, Any] | None:
        run = run_status(client, run_id)
        return run if RunStatus(run["status"]).ended else None

    return wait_for(ended, timeout, 0.2)
