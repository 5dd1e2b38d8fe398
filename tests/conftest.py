"""Shared fixtures: a fresh SQLite file per test, the app in-process, and a live uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from scripts.live_server import LiveServer
from tests.services_needed import database

TUTORIAL_DATA = PROJECT_ROOT.parent / "shared" / "tutorial-data"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite by default; modules that hold the database-touching behaviour override this with
    `both_databases`, so they run against PostgreSQL too."""
    return f"sqlite:///{tmp_path / 'pc.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def both_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        models_store=tmp_path / "models_store",
        builtin_data_dir=PROJECT_ROOT / "data",
        runner_enabled=False,
        allowed_hosts=["testserver"],  # the Host that Starlette's TestClient sends
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path) as server:
        yield server


@pytest.fixture
def tutorial_data() -> Path:
    if not (TUTORIAL_DATA / "curve.csv").exists():
        pytest.skip(f"the tutorial's original files are not at {TUTORIAL_DATA}")
    return TUTORIAL_DATA
