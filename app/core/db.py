"""Engine and session handling. SQLite is set up for several processes sharing one file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from app.models.base import utcnow
from app.vocabulary import SQLITE_BUSY_TIMEOUT_MS


def make_engine(database_url: str, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        )

        def configure(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the web process read while workers write; busy_timeout makes a writer
            # wait for the lock instead of failing at once; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        event.listen(engine, "connect", configure)
        return engine
    return create_engine(database_url, pool_pre_ping=True)


def database_now(session: Session) -> datetime:
    """The database's clock: heartbeats are stamped and judged by it alone, so a worker whose
    own clock is off is neither hidden from /workers nor taken for dead. An SQLite file is on
    this machine, and so is every process that writes it: its clock is this machine's."""
    if session.get_bind().dialect.name == "sqlite":
        return utcnow()
    now = session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return now.astimezone(UTC)


def database_time_ago(session: Session, seconds: float) -> datetime:
    """That many seconds before now, by the database's clock."""
    return database_now(session) - timedelta(seconds=seconds)


# How long the health check waits for the write lock before it calls writes blocked.
WRITE_PROBE_TIMEOUT_S = 0.5


def writes_blocked(engine: Engine) -> str | None:
    """Why the database is not taking writes now (a lock held by another connection), or None.

    SQLite: a connection of its own asks for the write lock and gives it straight back, waiting
    at most WRITE_PROBE_TIMEOUT_S, so reads that still work do not hide a stall of writes.
    """
    if engine.url.get_backend_name() != "sqlite" or not engine.url.database:
        return None
    try:
        probe = sqlite3.connect(engine.url.database, timeout=WRITE_PROBE_TIMEOUT_S)
    except sqlite3.Error as exc:
        return f"cannot open the file: {exc}"
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
    except sqlite3.OperationalError as exc:
        return f"writes blocked for over {WRITE_PROBE_TIMEOUT_S} s: {exc}"
    finally:
        probe.close()
    return None


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    event.listen(factory, "after_flush", _mark_written)
    event.listen(factory, "do_orm_execute", _mark_written_by_statement)
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_rollback", _forget_after_commit)
    return factory


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed, and never if it rolls back:
    for what cannot be rolled back, such as removing files."""
    session.info.setdefault("after_commit", []).append(action)


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop("after_commit", []):
        action()


def _forget_after_commit(session: Session) -> None:
    session.info.pop("after_commit", None)


def _mark_written(session: Session, _context: Any) -> None:
    session.info["written"] = True


def _mark_written_by_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["written"] = True


def has_writes(session: Session) -> bool:
    """Whether the session wrote, or holds changes to write: only then is a commit needed.

    ORM flushes and Core insert, update and delete statements count; a raw `text()` statement
    does not, so services write through those.
    """
    return bool(session.info.get("written") or session.new or session.dirty or session.deleted)


def end_session(session: Session, *, commit: bool) -> None:
    """Commit or roll back, then give the connection back: how every session ends."""
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The one place background code commits: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
    except BaseException:
        end_session(session, commit=False)
        raise
    end_session(session, commit=True)
