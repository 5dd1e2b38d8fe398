"""Shared fixtures: a fresh SQLite file per test, the app in-process, and a live uvicorn; and
the guard that keeps the quick lane's markers true."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import PROJECT_ROOT, Settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.core.migrate import upgrade_to_head
from app.jobs.runner import EmbeddedRunner
from app.main import create_app
from app.services.datasets import register_builtin_datasets
from app.testing.live_server import LiveServer
from tests import browser
from tests.celery_cluster import Cluster
from tests.services_needed import database

# `make test-fast` sets this and leaves out the tests marked live, browser or cluster.
FAST_LANE = os.environ.get("PC_TEST_LANE") == "fast"
# What each marker stands for: the things its tests start.
NEEDS: dict[str, list[tuple[object, str]]] = {
    "live": [(LiveServer, "start"), (EmbeddedRunner, "start")],
    "browser": [(browser, "chromium_or_skip")],
    "cluster": [(Cluster, "start_worker")],
}


def pytest_configure(config: pytest.Config) -> None:
    """In the quick lane, whatever starts a server, workers, a browser or a cluster fails the
    test (or the fixture) that calls it, saying which marker it needs: the lane stays quick and
    the markers true. Patched for the whole session: module-scoped fixtures start things too."""
    if not FAST_LANE:
        return
    for marker, targets in NEEDS.items():
        for owner, name in targets:

            def refuse(*_: Any, marker: str = marker, name: str = name, **__: Any) -> None:
                pytest.fail(f"this test calls {name}(): mark it @pytest.mark.{marker}")

            setattr(owner, name, refuse)


# Tests that start processes take seconds each; the others, milliseconds.
SLOW_MARKERS = ("live", "browser", "cluster", "slow")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with the most tests that start processes first: `make test` runs the modules on
    two workers (pytest-xdist, a module to a worker), each taking the next module as it ends,
    so the long ones go first and the short ones fill in at the end."""
    weight: dict[Path, int] = {}
    for item in items:
        slow = any(item.get_closest_marker(marker) for marker in SLOW_MARKERS)
        weight[item.path] = weight.get(item.path, 0) + (100 if slow else 1)
    items.sort(key=lambda item: -weight[item.path])  # stable: a module's order stays


TUTORIAL_DATA = PROJECT_ROOT.parent / "shared" / "tutorial-data"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file at the newest schema with the built-in datasets, made once a session: a
    test's database is a copy, not a migration of its own (about half a second each)."""
    path = tmp_path_factory.mktemp("template") / "pc.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade_to_head(engine)
        with session_scope(make_session_factory(engine)) as session:
            register_builtin_datasets(session, PROJECT_ROOT / "data", Settings().max_points)
    finally:
        engine.dispose()  # the last connection closed: the write-ahead log is folded in
    return path


@pytest.fixture
def database_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """SQLite by default; modules that hold the database-touching behaviour override this with
    `both_databases`, so they run against PostgreSQL too."""
    shutil.copyfile(migrated_sqlite, tmp_path / "pc.sqlite3")
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
