"""The distributed runner's API side: publish a queued run's id, and reconcile.

The API process starts no workers. `POST /runs` commits the queued row, then publishes one
message carrying the run id to the queue its device names. The reconciler, a thread in each API
process, is where the database's truth is brought back to the broker: it re-queues runs whose
heartbeat stopped (their worker died), within PC_MAX_RESTARTS, and publishes again the queued
runs whose message may have been lost (a broker that restarted empty). Several reconcilers may
run at once: recovery locks the rows it changes, and a duplicate message is harmless.

Nothing here waits on the broker in a request's thread or in the reconciler: one publisher
thread sends every message, each with a short socket timeout, so a broker that is down or
accepts connections and never answers costs a queued run a later wake-up, never a hung request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import timedelta

from celery import Celery
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import session_scope
from app.jobs.celery_app import TRAIN_TASK, make_celery, queue_for
from app.jobs.liveness import Liveness
from app.models.base import utcnow
from app.services.run_lifecycle import mark_published, mark_unpublished, queued_runs
from app.vocabulary import Queue

log = logging.getLogger(__name__)

# Longest a publish (or the broker check behind GET /health) waits on the broker's socket.
BROKER_TIMEOUT_S = 3.0
UNREACHABLE = "unreachable"


class Publisher:
    """Sends the wake-up messages from a thread of its own, and knows whether the broker answers.

    A message that cannot be sent marks its run unpublished: it is still queued (the database is
    the truth) and the reconciler hands it over again. While nothing is to be sent, the broker
    is checked every `check_every_s`, so GET /health can say whether it answers.
    """

    def __init__(
        self,
        celery: Celery,
        session_factory: sessionmaker[Session],
        default_queue: Queue,
        check_every_s: float,
    ) -> None:
        self.celery, self.session_factory = celery, session_factory
        self.default_queue, self.check_every_s = default_queue, check_every_s
        self.status = "unknown"  # "ok", or why the broker could not be reached
        self._waiting: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self._pending: set[int] = set()  # in `_waiting`: a run is queued for sending once
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="pc-publisher", daemon=True)

    def submit(self, run_id: int, device: str) -> None:
        with self._lock:
            if run_id in self._pending:
                return
            self._pending.add(run_id)
        self._waiting.put((run_id, device))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._waiting.put(None)
        self._thread.join(2 * BROKER_TIMEOUT_S)

    def _loop(self) -> None:
        next_check = 0.0
        while True:
            if time.monotonic() >= next_check:
                self._check()
                next_check = time.monotonic() + self.check_every_s
            try:
                item = self._waiting.get(timeout=max(0.0, next_check - time.monotonic()))
            except queue.Empty:
                continue
            if item is None:
                return
            run_id, device = item
            with self._lock:
                self._pending.discard(run_id)
            if self.status.startswith(UNREACHABLE):
                # Known down: no wait of BROKER_TIMEOUT_S per message; once a check finds it
                # answering, the reconciler's next pass sends these again.
                self._leave_unpublished(run_id)
            else:
                self._publish(run_id, device)

    def _failed(self, exc: Exception) -> None:
        self.status = f"{UNREACHABLE}: {type(exc).__name__}: {exc}"

    def _leave_unpublished(self, run_id: int) -> None:
        try:
            with session_scope(self.session_factory) as session:
                mark_unpublished(session, run_id)
        except OperationalError:
            pass  # then it is published again once PC_REPUBLISH_AFTER_S has passed

    def _publish(self, run_id: int, device: str) -> None:
        queue_name = queue_for(device, self.default_queue).value
        try:
            self.celery.send_task(TRAIN_TASK, args=[run_id], queue=queue_name)
        except Exception as exc:  # kombu raises several kinds; each leaves the run queued
            self._failed(exc)
            log.warning("run %s: not published (%s); the reconciler will try again", run_id, exc)
            self._leave_unpublished(run_id)
            return
        self.status = "ok"

    def _check(self) -> None:
        try:
            with self.celery.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_S)
                client = getattr(connection.default_channel, "client", None)
                if client is not None:  # Redis: a connection alone proves nothing
                    client.ping()
        except Exception as exc:
            self._failed(exc)
            return
        self.status = "ok"


class CeleryRunner:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.celery = make_celery(settings, publish_timeout_s=BROKER_TIMEOUT_S)
        self.publisher = Publisher(
            self.celery, session_factory, settings.default_queue, settings.reconcile_interval_s
        )
        self.liveness = Liveness(settings.heartbeat_timeout_s)
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, run_id: int, device: str) -> None:
        """Have the run's wake-up message sent, without waiting for the broker."""
        self.publisher.submit(run_id, device)

    def broker_status(self) -> str | None:
        return self.publisher.status

    def reconcile(self) -> list[int]:
        """One pass: re-queue the runs of dead workers, publish what may have been lost;
        returns the runs re-queued."""
        # Workers live on other machines: only their heartbeats say whether they live.
        recovered = self.liveness.recover(self.session_factory, self.settings.max_restarts)
        if recovered:
            log.warning("re-queued runs whose worker stopped: %s", recovered)
        cutoff = utcnow() - timedelta(seconds=self.settings.republish_after_s)
        with session_scope(self.session_factory) as session:
            due = queued_runs(session, published_before=cutoff)
            mark_published(session, [run_id for run_id, _ in due])
        for run_id, device in due:
            self.submit(run_id, device)
        return recovered

    def _loop(self) -> None:
        while not self._halt.wait(self.settings.reconcile_interval_s):
            try:
                self.reconcile()
            except OperationalError as exc:
                log.warning("reconciler pass skipped, the database is not answering: %s", exc.orig)
            except Exception:
                log.exception("reconciler pass failed; retrying")

    def recover(self) -> list[int]:
        return self.reconcile()

    def start(self) -> None:
        self.publisher.start()
        self._thread = threading.Thread(target=self._loop, name="pc-reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(10)
        self.publisher.stop()

    def ready_count(self) -> int:
        return 0  # its workers are other processes: GET /health counts them from the table
