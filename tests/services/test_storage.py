"""The start-up sweep removes what a crash left in the models store, and nothing else."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.services.storage import sweep_models_store


def test_sweep_removes_crash_leftovers_only(client: TestClient, settings: Settings) -> None:
    run_id = client.post("/runs", json={"epochs": 5}).json()["id"]
    store = settings.models_store
    own = store / f"run-{run_id}"
    own.mkdir(parents=True)
    (own / "epoch-000000001.pt.999999.tmp").write_bytes(b"half")  # its writer is gone
    (own / "epoch-000000002.pt").write_bytes(b"never recorded")  # written, row never inserted
    (store / "run-424242").mkdir()  # a deleted run's folder
    (store / "run-424242" / "epoch-000000001.pt").write_bytes(b"x")
    (store / ".gitkeep").write_bytes(b"")
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        removed = sweep_models_store(session, store)
    assert sorted(removed) == sorted(
        [
            f"run-{run_id}/epoch-000000001.pt.999999.tmp",
            f"run-{run_id}/epoch-000000002.pt",
            "run-424242/",
        ]
    )
    assert own.is_dir()
    assert (store / ".gitkeep").exists()
    assert not (store / "run-424242").exists()


def test_sweep_of_a_missing_store_is_a_no_op(settings: Settings, tmp_path: Path) -> None:
    factory = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}"))
    with session_scope(factory) as session:
        assert sweep_models_store(session, tmp_path / "absent") == []
