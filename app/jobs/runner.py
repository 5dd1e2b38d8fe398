"""The runner interface and its embedded implementation: worker processes on this machine.

The embedded runner starts `PC_WORKERS` worker processes and a supervisor thread in the web
process. The supervisor replaces workers that die and hands their runs back to the queue, and
re-queues runs whose heartbeat stopped (a server that was killed, on this host or another).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import socket
import threading
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as EventType
from typing import Protocol

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.processes import pid_alive
from app.jobs.liveness import Liveness
from app.jobs.worker import worker_main

log = logging.getLogger(__name__)


class Runner(Protocol):
    """What the app needs from whatever executes runs."""

    def submit(self, run_id: int, device: str) -> None:
        """A run was queued (its row committed): wake a worker up."""
        ...

    def recover(self) -> list[int]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def ready_count(self) -> int: ...

    def broker_status(self) -> str | None:
        """'ok', 'unknown' or why the broker is unreachable; None where there is none."""
        ...


class EmbeddedRunner:
    def submit(self, run_id: int, device: str) -> None:
        pass  # the workers poll the runs table for queued runs

    def broker_status(self) -> str | None:
        return None

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[SpawnProcess | None] = [None] * settings.worker_count
        # Made with each worker: every event holds semaphores that must be released.
        self.ready: list[EventType | None] = [None] * settings.worker_count
        self.threads = max(1, (os.cpu_count() or 1) // settings.worker_count)
        self.liveness = Liveness(settings.heartbeat_timeout_s, local_host=socket.gethostname())
        self._supervisor: threading.Thread | None = None
        self._halt = threading.Event()

    def recover(self) -> list[int]:
        recovered = self.liveness.recover(self.session_factory, self.settings.max_restarts)
        if recovered:
            log.warning("recovered orphaned runs %s", recovered)
        return recovered

    def _spawn(self, slot: int) -> None:
        ready = self.ready[slot] = self.context.Event()
        process = self.context.Process(
            target=worker_main,
            args=(self.settings, os.getpid(), self.threads, ready),
            name=f"pc-worker-{slot}",
            daemon=True,
        )
        process.start()
        self.processes[slot] = process

    def ready_count(self) -> int:
        """Workers alive and warmed up, ready to take a run."""
        return sum(
            1
            for process, ready in zip(self.processes, self.ready, strict=True)
            # pid_alive, not is_alive(): that reaps, which is the supervisor thread's job.
            if process is not None
            and process.pid is not None
            and pid_alive(process.pid)
            and ready is not None
            and ready.is_set()
        )

    def start(self) -> None:
        """Start the workers and the supervisor; the app recovers orphaned runs just before."""
        for slot in range(len(self.processes)):
            self._spawn(slot)
        self._supervisor = threading.Thread(
            target=self._supervise, name="pc-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._halt.wait(0.5):
            try:
                for slot, process in enumerate(self.processes):
                    if process is not None and not process.is_alive():  # is_alive() reaps it
                        log.warning(
                            "worker %s exited with %s; replacing it", process.pid, process.exitcode
                        )
                        if not self._halt.is_set():
                            self._spawn(slot)
                # Runs of the worker that died, and of servers that were killed.
                self.recover()
            except OperationalError as exc:
                log.warning("supervisor pass skipped, the database is not answering: %s", exc.orig)
            except Exception:
                log.exception("supervisor pass failed; retrying")

    def stop(self, timeout_s: float = 30.0) -> None:
        """Workers checkpoint their runs and hand them back to the queue, then exit."""
        self._halt.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout_s)
        running = [p for p in self.processes if p is not None and p.is_alive()]
        for process in running:
            process.terminate()  # SIGTERM: the worker's graceful stop (it logs its hand-back)
        for process in running:
            process.join(timeout_s)
            if process.is_alive():
                log.warning("worker %s did not stop within %ss; killing it", process.pid, timeout_s)
                process.kill()
                process.join(5)
        self._release_semaphores()

    def _release_semaphores(self) -> None:
        """Free the workers' ready events now. uvicorn ends the process by re-raising the
        signal that stopped it, so no exit handler would unlink their semaphores, and
        Python's resource tracker would warn of them as leaked."""
        for process in self.processes:
            if process is not None and not process.is_alive():
                process.close()
        self.processes = [None] * len(self.processes)
        self.ready = [None] * len(self.ready)
        gc.collect()  # the events' finalizers unlink their semaphores
