"""A worker process's row in the workers table, kept fresh from a thread of its own."""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import session_scope
from app.services.workers import register_worker, remove_worker, worker_beat
from app.vocabulary import RunnerKind

log = logging.getLogger(__name__)


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Presence:
    """Says every `interval_s` that this worker lives and which run it trains (`run_id`)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        worker_id: str,
        interval_s: float,
        *,
        runner: RunnerKind,
        queues: list[str],
        device: str,
    ) -> None:
        self.session_factory, self.worker_id, self.interval_s = (
            session_factory,
            worker_id,
            interval_s,
        )
        self.runner, self.queues, self.device = runner, queues, device
        self.run_id: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="presence", daemon=True)

    def __enter__(self) -> Presence:
        try:
            self._register()
        except OperationalError as exc:  # a locked database: the first beat registers it
            log.warning("worker %s: not registered yet: %s", self.worker_id, exc.orig)
        self._thread.start()
        return self

    def _register(self) -> None:
        host, _, pid = self.worker_id.rpartition(":")
        with session_scope(self.session_factory) as session:
            register_worker(
                session,
                self.worker_id,
                runner=self.runner,
                host=host,
                pid=int(pid),
                queues=self.queues,
                device=self.device,
            )

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        try:
            with session_scope(self.session_factory) as session:
                remove_worker(session, self.worker_id)
        except OperationalError:
            pass  # it drops out of the count once its beat is stale

    def training(self, run_id: int | None) -> None:
        """The run this worker trains now (None: none), said at once, not at the next beat."""
        self.run_id = run_id
        self._write()

    def _beat(self) -> None:
        while not self._done.wait(self.interval_s):
            self._write()

    def _write(self) -> None:
        try:
            with session_scope(self.session_factory) as session:
                known = worker_beat(session, self.worker_id, self.run_id)
            if not known:  # never registered, or dropped from the table
                self._register()
        except OperationalError as exc:
            log.warning("worker %s: heartbeat not written: %s", self.worker_id, exc.orig)
