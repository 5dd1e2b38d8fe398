"""The database and its models store know each other: a start (API or `python -m app migrate`)
claims the store or refuses one that is another's, and a worker's check refuses and never
writes. On SQLite and PostgreSQL, with real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from app.core.config import PROJECT_ROOT, Settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.core.migrate import upgrade_to_head
from app.main import create_app, prepare_database
from app.ml.checkpoints import checkpoint_relpath, write_checkpoint_bytes
from app.models import Checkpoint, Installation
from app.services.store_identity import MARKER, StoreUnusable, check_store, read_marker
from app.testing.live_server import LiveServer

OTHER_ID = "0123456789abcdef0123456789abcdef"  # another database's store id


@pytest.fixture
def database_url(both_databases: str) -> str:
    return both_databases  # these run on SQLite and on PostgreSQL


def start(settings: Settings, store: Path | None = None) -> None:
    """What every API start and `python -m app migrate` do first."""
    if store is not None:
        settings = settings.model_copy(update={"models_store": store})
    engine = make_engine(settings.database_url)
    try:
        prepare_database(settings, engine, make_session_factory(engine))
    finally:
        engine.dispose()


def recorded_id(settings: Settings) -> str | None:
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            installation = session.get(Installation, 1)
            return installation.store_id if installation is not None else None
    finally:
        engine.dispose()


def check(settings: Settings, store: Path) -> None:
    """A worker's check at its start."""
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            check_store(session, store)
    finally:
        engine.dispose()


def add_checkpoint(settings: Settings) -> tuple[int, str]:
    """A run with one checkpoint file in the store and its row: the run's id, the file's path."""
    with TestClient(create_app(settings)) as client:
        run_id = client.post("/runs", json={"architecture": "simple", "epochs": 20}).json()["id"]
        relpath = checkpoint_relpath(run_id, 20)
        sha256, size = write_checkpoint_bytes(settings.models_store, relpath, b"weights")
        with client.app.state.session_factory() as session:  # type: ignore[attr-defined]
            session.add(
                Checkpoint(run_id=run_id, epoch=20, path=relpath, sha256=sha256, size_bytes=size)
            )
            session.commit()
    return run_id, relpath


def mark(store: Path, store_id: str) -> None:
    store.mkdir(parents=True, exist_ok=True)
    (store / MARKER).write_text(f"{store_id}\n")


def test_the_first_start_marks_the_store_and_later_starts_and_workers_accept_it(
    settings: Settings,
) -> None:
    start(settings)
    store_id = recorded_id(settings)
    assert store_id is not None
    assert len(store_id) == 32
    assert read_marker(settings.models_store) == store_id
    start(settings)
    assert recorded_id(settings) == store_id  # the same store keeps its id
    assert read_marker(settings.models_store) == store_id
    check(settings, settings.models_store)
    assert [p.name for p in settings.models_store.iterdir()] == [MARKER]  # no temporary file


def test_the_marker_is_never_committed() -> None:
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"models_store/{MARKER}"], cwd=PROJECT_ROOT, check=False
    )
    assert ignored.returncode == 0, "models_store/.pc-store-id is not git-ignored"


def test_a_database_from_before_stores_were_marked_claims_the_store_it_has(
    settings: Settings,
) -> None:
    run_id, relpath = add_checkpoint(settings)
    # As a database migrated before this change: no installation row, and an unmarked store.
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        session.execute(delete(Installation))
    engine.dispose()
    (settings.models_store / MARKER).unlink()
    with TestClient(create_app(settings)) as client:
        [listed] = client.get(f"/runs/{run_id}/checkpoints").json()
    assert listed["epoch"] == 20
    assert (settings.models_store / relpath).read_bytes() == b"weights"  # kept, not swept
    assert read_marker(settings.models_store) == recorded_id(settings) is not None
    check(settings, settings.models_store)


def test_an_emptied_store_is_marked_again_while_no_checkpoint_is_recorded(
    settings: Settings, tmp_path: Path
) -> None:
    start(settings)
    old_id = recorded_id(settings)
    shutil.copytree(settings.models_store, tmp_path / "copy")  # as a store on another host
    shutil.rmtree(settings.models_store)
    with TestClient(create_app(settings)):
        pass  # `make serve` after deleting models_store/ before any checkpoint: it starts
    new_id = recorded_id(settings)
    assert read_marker(settings.models_store) == new_id != old_id
    # A new id, so a folder that kept the old one is not taken for the database's store.
    with pytest.raises(StoreUnusable, match=f"says {old_id}"):
        check(settings, tmp_path / "copy")


def test_a_deleted_store_with_checkpoints_recorded_is_refused_with_the_way_out(
    settings: Settings,
) -> None:
    add_checkpoint(settings)
    store_id = recorded_id(settings)
    shutil.rmtree(settings.models_store)
    with pytest.raises(StoreUnusable) as refused, TestClient(create_app(settings)):
        pass
    message = str(refused.value)
    assert f"PC_MODELS_STORE={settings.models_store} is not the one this database uses" in message
    assert f"no marker {MARKER}, yet the database records 1 checkpoint(s)" in message
    assert f"the one whose {MARKER} says {store_id}" in message
    assert "If that folder was deleted on purpose, restore it, or start afresh" in message
    assert "PC_DATABASE_URL" in message
    assert not (settings.models_store / MARKER).exists()  # nothing claimed
    assert recorded_id(settings) == store_id


def test_an_api_given_another_databases_store_refuses_to_start_and_sweeps_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    start(settings)
    store_id = recorded_id(settings)
    other = tmp_path / "other"
    mark(other, OTHER_ID)
    (other / "run-7").mkdir()
    (other / "run-7" / "epoch-000000010.pt").write_bytes(b"another database's run")
    settings.models_store = other
    with (
        pytest.raises(StoreUnusable, match="PC_MODELS_STORE") as refused,
        TestClient(create_app(settings)),
    ):
        pass
    message = str(refused.value)
    assert f"PC_MODELS_STORE={other} is not the one this database uses" in message
    assert f"its marker {MARKER} says {OTHER_ID}" in message
    assert f"the folder the API uses (the one whose {MARKER} says {store_id})" in message
    # Its start-up sweep would have deleted the run folder this database does not know.
    assert (other / "run-7" / "epoch-000000010.pt").exists()
    assert (read_marker(other), recorded_id(settings)) == (OTHER_ID, store_id)


def test_a_new_database_refuses_a_store_another_database_marked(
    settings: Settings,
) -> None:
    mark(settings.models_store, OTHER_ID)
    (settings.models_store / "run-3").mkdir()
    with pytest.raises(StoreUnusable) as refused:
        start(settings)
    message = str(refused.value)
    assert f"PC_MODELS_STORE={settings.models_store} is another database's" in message
    assert f"says {OTHER_ID}" in message
    assert "a new, empty one will do" in message
    assert "If you replaced the database on purpose, empty that folder first" in message
    assert recorded_id(settings) is None
    assert read_marker(settings.models_store) == OTHER_ID
    assert (settings.models_store / "run-3").is_dir()


def test_a_store_that_cannot_be_written_is_refused_naming_it_and_nothing_is_claimed(
    settings: Settings,
) -> None:
    settings.models_store.parent.mkdir(parents=True, exist_ok=True)
    settings.models_store.write_text("a file where the folder should be")
    with pytest.raises(StoreUnusable) as refused:
        start(settings)
    assert f"cannot use the models store at PC_MODELS_STORE={settings.models_store}" in str(
        refused.value
    )
    assert recorded_id(settings) is None  # the row went back with the marker's failed write


def test_a_workers_check_refuses_until_the_store_is_claimed_and_never_writes(
    settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(StoreUnusable, match="has not been migrated to this version"):
        check(settings, settings.models_store)
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    engine.dispose()
    with pytest.raises(StoreUnusable, match="has not claimed a models store yet"):
        check(settings, settings.models_store)
    start(settings)
    empty = tmp_path / "empty"
    with pytest.raises(StoreUnusable) as refused:
        check(settings, empty)
    assert f"PC_MODELS_STORE={empty} is not the one this database uses" in str(refused.value)
    assert "start the API once: it marks an empty store again" in str(refused.value)
    assert not empty.exists()


def migrate(settings: Settings, store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PC_DATABASE_URL": settings.database_url, "PC_MODELS_STORE": str(store)}
    return subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.live
def test_migrate_twice_on_one_store_then_refuses_another(
    settings: Settings, tmp_path: Path
) -> None:
    for _ in range(2):
        done = migrate(settings, settings.models_store)
        assert done.returncode == 0, done.stderr
    store_id = recorded_id(settings)
    assert read_marker(settings.models_store) == store_id is not None
    other = tmp_path / "other"
    mark(other, OTHER_ID)
    refused = migrate(settings, other)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: the models store at PC_MODELS_STORE={other} ")
    assert "Traceback" not in refused.stderr


@pytest.mark.live
def test_the_server_refuses_to_start_on_another_store_and_says_what_to_fix(
    settings: Settings, tmp_path: Path
) -> None:
    """`python -m app` as a user runs it: the message reaches the terminal."""
    start(settings)
    other = tmp_path / "other"
    mark(other, OTHER_ID)
    server = LiveServer(tmp_path, PC_DATABASE_URL=settings.database_url)
    server.env["PC_MODELS_STORE"] = str(other)
    with pytest.raises(RuntimeError, match="server exited early"):
        server.start()
    assert f"PC_MODELS_STORE={other} is not the one this database uses" in server.log()
    assert "Application startup failed" in server.log()
