"""Whether a running run's worker is gone, for both runners' recovery passes.

A worker says it lives by its heartbeat, stamped and judged by the database's clock. A heartbeat
older than PC_HEARTBEAT_TIMEOUT_S means the worker is gone, but only once the database has been
taking writes for at least that long: while it could not (PostgreSQL down, an SQLite write lock
held), no live worker could beat either, and an outage is not a death. On the embedded runner's
own host, a worker whose process is gone is gone at once; one whose pid is alive is still judged
by its heartbeat, since after a restart another process may hold that pid.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.core.db import database_now, session_scope, writes_blocked
from app.core.processes import pid_alive
from app.services.run_lifecycle import recover_orphaned_runs

log = logging.getLogger(__name__)


class Liveness:
    """One recovery loop's judge: it remembers since when the database has taken writes."""

    def __init__(self, heartbeat_timeout_s: float, local_host: str | None = None) -> None:
        self.timeout_s = heartbeat_timeout_s
        self.local_host = local_host  # the embedded runner's host: its pids can be checked
        self._writable_since: float | None = None  # monotonic, this process's own

    def database_failed(self) -> None:
        if self._writable_since is not None:
            log.warning(
                "the database is not taking writes: no run is taken for orphaned until it has for %ss",
                self.timeout_s,
            )
        self._writable_since = None

    def database_writable(self) -> None:
        if self._writable_since is None:
            self._writable_since = time.monotonic()

    def _heartbeats_count(self) -> bool:
        """Whether the database has taken writes for a whole timeout: only then does a
        missing heartbeat say anything."""
        since = self._writable_since
        return since is not None and time.monotonic() - since >= self.timeout_s

    def is_orphaned(
        self, worker_id: str | None, heartbeat_at: datetime | None, now: datetime
    ) -> bool:
        if worker_id is None or heartbeat_at is None:
            return True
        host, _, pid = worker_id.rpartition(":")
        if host == self.local_host and pid.isascii() and pid.isdigit() and not pid_alive(int(pid)):
            return True
        return self._heartbeats_count() and heartbeat_at < now - timedelta(seconds=self.timeout_s)

    def recover(self, session_factory: sessionmaker[Session], max_restarts: int) -> list[int]:
        """One pass: re-queue (or fail, past `max_restarts`) the runs whose worker is gone."""
        blocked = writes_blocked(session_factory.kw["bind"])
        if blocked is not None:
            self.database_failed()
            return []
        try:
            with session_scope(session_factory) as session:
                now = database_now(session)
                self.database_writable()
                return recover_orphaned_runs(
                    session,
                    is_orphaned=lambda worker_id, beat: self.is_orphaned(worker_id, beat, now),
                    max_restarts=max_restarts,
                )
        except Exception:
            self.database_failed()
            raise
