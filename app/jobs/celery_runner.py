"""The distributed runner's API side: publish a queued run's id, and reconcile.

The API process starts no workers. `POST /runs` commits the queued row, then publishes one
message carrying the run id to the queue its device names. The reconciler, a thread in each API
process, is where the database's truth is brought back to the broker: it re-queues runs whose
heartbeat stopped (their worker died), within PC_MAX_RESTARTS, and publishes again the queued
runs whose message may have been lost (a broker that restarted empty). Several reconcilers may
run at once: recovery locks the rows it changes, and a duplicate message is harmless.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import session_scope
from app.jobs.celery_app import TRAIN_TASK, make_celery, queue_for
from app.jobs.liveness import Liveness
from app.models.base import utcnow
from app.services.run_lifecycle import mark_published, queued_runs

log = logging.getLogger(__name__)


class CeleryRunner:
    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.celery = make_celery(settings)
        self.liveness = Liveness(settings.heartbeat_timeout_s)
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, run_id: int, device: str) -> None:
        """Publish the run's wake-up message; if the broker is down, the reconciler will."""
        queue = queue_for(device, self.settings.default_queue)
        try:
            self.celery.send_task(TRAIN_TASK, args=[run_id], queue=queue.value)
        except Exception as exc:  # kombu raises several kinds; none may fail the request
            log.warning("run %s: not published (%s); the reconciler will try again", run_id, exc)

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
        self._thread = threading.Thread(target=self._loop, name="pc-reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(10)

    def ready_count(self) -> int:
        return 0  # its workers are other processes: GET /health counts them from the table
