"""The start-up sweep removes what a crash left in the models store, and nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory, session_scope
from app.main import create_app
from app.ml.checkpoints import host_tag
from app.services.storage import ABANDONED_TMP_S, sweep_models_store

GONE_PID = 999999  # no process has it here


def test_sweep_removes_crash_leftovers_only(client: TestClient, settings: Settings) -> None:
    run_id = client.post("/runs", json={"epochs": 5}).json()["id"]
    store = settings.models_store
    own = store / f"run-{run_id}"
    own.mkdir(parents=True)
    (own / f"epoch-000000001.pt.{host_tag()}-{GONE_PID}.tmp").write_bytes(b"half")  # writer gone
    (own / "epoch-000000002.pt").write_bytes(b"never recorded")  # written, row never inserted
    (store / "run-424242").mkdir()  # a deleted run's folder
    (store / "run-424242" / "epoch-000000001.pt").write_bytes(b"x")
    (store / ".gitkeep").write_bytes(b"")
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        removed = sweep_models_store(session, store)
    assert sorted(removed) == sorted(
        [
            f"run-{run_id}/epoch-000000001.pt.{host_tag()}-{GONE_PID}.tmp",
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


def test_a_replica_starting_keeps_other_hosts_temporary_files(settings: Settings) -> None:
    """Another API replica's start-up sweep must not delete a checkpoint another host's worker
    is writing: that pid means nothing here. Only what is provably abandoned goes."""
    with TestClient(create_app(settings)) as first:
        run_id = first.post("/runs", json={"epochs": 5}).json()["id"]
    folder = settings.models_store / f"run-{run_id}"
    folder.mkdir(parents=True)
    in_flight = folder / f"epoch-000000001.pt.other_host-{GONE_PID}.tmp"
    in_flight.write_bytes(b"being written on another machine")
    unnamed = folder / f"epoch-000000002.pt.{GONE_PID}.tmp"  # an older writer named no host
    unnamed.write_bytes(b"recent")
    stale = folder / f"epoch-000000003.pt.other_host-{GONE_PID}.tmp"
    stale.write_bytes(b"its host died an hour ago")
    old = time.time() - ABANDONED_TMP_S - 60
    os.utime(stale, (old, old))
    with TestClient(create_app(settings)):  # a second replica starts: its sweep runs
        pass
    assert in_flight.exists()
    assert unnamed.exists()
    assert not stale.exists()
