"""A worker process: claims queued runs one at a time and trains them."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from multiprocessing.synchronize import Event as EventType

import torch
from uvicorn.logging import DefaultFormatter

from app.core.config import Settings
from app.core.db import make_engine, make_session_factory
from app.jobs.presence import Presence, make_worker_id
from app.jobs.task import TaskContext, execute_run, write
from app.ml.devices import training_device_name
from app.ml.engine import warm_up
from app.services.run_lifecycle import claim_next_run
from app.vocabulary import RunnerKind

log = logging.getLogger(__name__)


class _StopFlag:
    """Set from a signal handler, so it must take no lock: a plain attribute."""

    requested = False

    def request(self, _signum: int, _frame: object) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested


def worker_main(settings: Settings, parent_pid: int, threads: int, ready: EventType) -> None:
    """Entry point of a worker process started by the embedded runner.

    `ready` is set once the worker has warmed up and can take a run. SIGTERM asks for a graceful
    stop: the run in hand is checkpointed and handed back to the queue. Ctrl+C in a terminal
    reaches the whole process group, so SIGINT is ignored here and the server decides when its
    workers stop.
    """
    _work(settings, parent_pid, threads, ready)
    # Everything is handed back, closed and logged. What is left is the interpreter's teardown
    # of torch and its thousands of modules, which nothing needs and which takes seconds on a
    # busy machine, while the server's Ctrl+C waits for its workers. A forked multiprocessing
    # child ends this way too.
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def _work(settings: Settings, parent_pid: int, threads: int, ready: EventType) -> None:
    # What this process logs (a run handed back at shutdown) reaches the server's terminal, in
    # uvicorn's format.
    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    stop = _StopFlag()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop.request)
    # Concurrent runs must not fight for cores: each worker gets its share.
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    warm_up()
    ready.set()
    engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_ms)
    factory = make_session_factory(engine)
    worker_id = make_worker_id()

    def exit_if_orphaned() -> None:
        # The server died (SIGKILL, OOM): vanish as it did, leaving recovery to its next start.
        if os.getppid() != parent_pid:
            os._exit(1)

    ctx = TaskContext.from_settings(
        settings, factory, worker_id, should_release=stop.is_set, on_report=exit_if_orphaned
    )
    device = training_device_name()
    presence = Presence(
        factory,
        worker_id,
        settings.heartbeat_interval_s,
        runner=RunnerKind.EMBEDDED,
        queues=[],
        device=device,
    )
    try:
        with presence:
            while not stop.is_set():
                exit_if_orphaned()
                claim = write(ctx, lambda session: claim_next_run(session, worker_id))
                if claim is None:
                    time.sleep(settings.poll_interval_s)
                    continue
                log.info("worker %s training run %s", worker_id, claim.run_id)
                presence.training(claim.run_id)
                execute_run(claim, ctx)
                presence.training(None)
    finally:
        engine.dispose()
    log.info("worker %s stopped", worker_id)
