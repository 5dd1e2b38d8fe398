"""Who may call, what a path can reach, and what a checkpoint file may contain."""

from __future__ import annotations

import hashlib
import pickle
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from app.ml.architectures import build_network, network_spec
from app.ml.checkpoints import checkpoint_relpath, write_checkpoint

KEY = "s3cret-key"


@pytest.fixture
def keyed(settings: Settings) -> Iterator[TestClient]:
    settings.api_key = SecretStr(KEY)
    with TestClient(create_app(settings)) as client:
        yield client


def test_writes_need_the_bearer_key(keyed: TestClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": KEY},
    ):
        response = keyed.post("/runs", json={"epochs": 5}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "PC_API_KEY" in response.json()["detail"]
        assert keyed.delete("/datasets/x", headers=headers).status_code == 401
    response = keyed.post("/runs", json={"epochs": 5}, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 202
    assert keyed.get("/runs").status_code == 200  # reads stay open by default
    assert keyed.get("/health").status_code == 200


def test_reads_can_be_closed_too(settings: Settings) -> None:
    settings.api_key = SecretStr(KEY)
    settings.protect_reads = True
    with TestClient(create_app(settings)) as client:
        assert client.get("/datasets").status_code == 401
        assert (
            client.get("/datasets", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        )
        assert client.get("/health").status_code == 200


def test_swagger_ui_offers_the_bearer_scheme(keyed: TestClient) -> None:
    schema = keyed.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in schema["paths"]["/runs"]["post"]["security"]


def _filled(path: str) -> str:
    """An operation's path with its parameters filled in: a dataset's name, or id 1."""
    return re.sub(r"\{[^}]+\}", lambda m: "curve" if m.group(0) == "{ref}" else "1", path)


@pytest.mark.parametrize(
    ("protect_reads", "metrics_open"), [(False, False), (True, False), (True, True)]
)
def test_the_schema_declares_the_key_on_exactly_the_operations_that_refuse_without_it(
    settings: Settings, protect_reads: bool, metrics_open: bool
) -> None:
    # SECURITY.md and docs/configuration.md: with PC_API_KEY every POST and DELETE needs the
    # key; PC_PROTECT_READS closes the reads but /health and /workers; PC_METRICS_OPEN opens
    # /metrics again. The schema declares the bearer scheme on exactly those operations.
    settings.api_key = SecretStr(KEY)
    settings.protect_reads, settings.metrics_open = protect_reads, metrics_open
    open_reads = {"/health", "/workers"} | ({"/metrics"} if metrics_open else set())
    with TestClient(create_app(settings)) as client:
        schema = client.get("/openapi.json").json()
        operations = [
            (method, path, operation)
            for path, item in schema["paths"].items()
            for method, operation in item.items()
        ]
        assert {method for method, _, _ in operations} == {"get", "post", "delete"}
        for method, path, operation in operations:
            needs_key = method != "get" or (protect_reads and path not in open_reads)
            answer = client.request(method.upper(), _filled(path), json={})
            assert answer.status_code == 401 if needs_key else answer.status_code != 401, (
                method,
                path,
                answer.text,
            )
            assert ("security" in operation) == needs_key, (method, path)


def test_an_empty_key_setting_means_no_key(settings: Settings) -> None:
    assert Settings(api_key="  ").api_key is None


@pytest.mark.parametrize(
    "path",
    [
        "/datasets/..%2F..%2Fetc%2Fpasswd/csv",
        "/datasets/%2Fetc%2Fpasswd",
        "/datasets/../../etc/passwd",
        "/runs/1/checkpoints/..%2F..%2Fpc.sqlite3",
        "/runs/..%2F1/boundary.png",
        "/runs/1/checkpoints/%2Fetc%2Fpasswd",
        "/models_store/run-1/epoch-000000010.pt",
        "/data/pc.sqlite3",
    ],
)
def test_traversal_attempts_never_reach_the_disk(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422)
    assert b"root:" not in response.content
    assert b"SQLite format" not in response.content


def _plant_checkpoint(settings: Settings, client: TestClient, payload: bytes, sha: str) -> int:
    """A run whose only checkpoint row points at `payload`, with the recorded sha256 `sha`."""
    run_id: int = client.post("/runs", json={"architecture": "simple", "epochs": 10}).json()["id"]
    relpath = checkpoint_relpath(run_id, 10)
    (settings.models_store / relpath).parent.mkdir(parents=True, exist_ok=True)
    (settings.models_store / relpath).write_bytes(payload)
    database = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO checkpoints (run_id, epoch, path, sha256, size_bytes, created_at)"
            " VALUES (?, 10, ?, ?, ?, '2026-01-01 00:00:00')",
            (run_id, relpath, sha, len(payload)),
        )
    return run_id


def _state() -> dict[str, Any]:
    spec = network_spec("simple")
    return {
        "epoch": 10,
        "config": {"network": spec.as_dict()},
        "model": build_network(spec).state_dict(),
    }


def test_a_tampered_checkpoint_is_refused_with_a_clear_error(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    sha, _ = write_checkpoint(tmp_path, "good.pt", _state())
    good = (tmp_path / "good.pt").read_bytes()
    run_id = _plant_checkpoint(settings, client, good, sha)
    assert (
        client.post("/predict", json={"run_id": run_id, "points": [[0.1, 0.2]]}).status_code == 200
    )
    path = settings.models_store / checkpoint_relpath(run_id, 10)
    path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    client.app.state.result_caches.models.clear()  # type: ignore[attr-defined]
    for response in (
        client.post("/predict", json={"run_id": run_id, "points": [[0.1, 0.2]]}),
        client.get(f"/runs/{run_id}/boundary.png"),
        client.get(f"/runs/{run_id}/checkpoints/10"),
    ):
        assert response.status_code == 409
        assert "does not match its recorded sha256" in response.json()["detail"]


def test_a_malicious_pickle_with_a_matching_hash_runs_nothing(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    payload = pickle.dumps({"format": 1, "epoch": 10, "model": Exploit()}, protocol=2)
    run_id = _plant_checkpoint(settings, client, payload, hashlib.sha256(payload).hexdigest())
    response = client.post("/predict", json={"run_id": run_id, "points": [[0.1, 0.2]]})
    assert response.status_code == 409
    assert "cannot be read" in response.json()["detail"]
    assert not marker.exists()


def test_a_locked_database_is_503_with_retry_after(settings: Settings) -> None:
    settings.sqlite_busy_timeout_ms = 200
    with TestClient(create_app(settings)) as client:
        database = settings.database_url.removeprefix("sqlite:///")
        holder = sqlite3.connect(database, timeout=1)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            response = client.post("/datasets/generate", json={"kind": "xor", "name": "locked"})
        finally:
            holder.rollback()
            holder.close()
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "busy" in response.json()["detail"]
        assert (
            client.post("/datasets/generate", json={"kind": "xor", "name": "locked"}).status_code
            == 201
        )
