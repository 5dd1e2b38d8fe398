"""Alembic: a fresh file upgrades to head, downgrades to nothing, and upgrades again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import inspect, text

from alembic import command
from app.core.config import PROJECT_ROOT
from app.core.db import make_engine
from app.core.migrate import alembic_config, current_revision, head_revision, upgrade_to_head
from tests.services_needed import fresh_postgres_database


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_an_empty_database(both_databases: str) -> None:
    url = both_databases
    config = alembic_config(url)
    command.upgrade(config, "head")
    assert tables(url) == {
        "datasets",
        "runs",
        "run_history",
        "checkpoints",
        "workers",
        "sweeps",
        "installation",
    }
    command.downgrade(config, "base")
    assert tables(url) == set()
    command.upgrade(config, "head")
    assert "datasets" in tables(url)


def test_app_migration_is_idempotent_and_reaches_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite_is_set_up_for_several_processes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() >= 5000
    finally:
        engine.dispose()


def test_migrations_match_the_models(both_databases: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from app.models import Base

    engine = make_engine(both_databases)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_an_old_database_is_upgraded_keeping_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    command.upgrade(alembic_config(url), "0001")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO datasets (name, source, n_points, count_0, count_1, x_min, x_max,"
                    " y_min, y_max, sha256, points, created_at) VALUES ('old', 'upload', 1, 1, 0,"
                    " 0, 0, 0, 0, 'x', x'00', '2026-01-01 00:00:00')"
                )
            )
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT name FROM datasets")).scalar() == "old"
            assert connection.execute(text("SELECT count(*) FROM runs")).scalar() == 0
    finally:
        engine.dispose()


def test_replicas_migrating_one_postgres_database_at_once_do_not_race(tmp_path: Path) -> None:
    # Several API replicas (or `python -m app migrate` runs) starting together: the advisory
    # lock lets one migrate and register the built-ins while the others wait, then find it done.
    with fresh_postgres_database() as url:
        env = {**os.environ, "PC_DATABASE_URL": url, "PC_MODELS_STORE": str(tmp_path)}
        migrations = [
            subprocess.Popen(
                [sys.executable, "-m", "app", "migrate"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in migrations]
        assert [process.returncode for process in migrations] == [0, 0, 0], outputs
        engine = make_engine(url)
        try:
            assert current_revision(engine) == head_revision()
            with engine.connect() as connection:
                names = connection.execute(text("SELECT name FROM datasets ORDER BY id"))
                assert [row[0] for row in names] == ["linear", "curve", "random"]
        finally:
            engine.dispose()
