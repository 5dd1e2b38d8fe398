"""The distributed runner's worker side: a Celery app whose one task trains a run by its id.

`python -m app worker` (or `celery -A app.jobs.celery_app worker`) runs it. The broker only
wakes workers up; the run's row is the truth. A task claims its run with the same guarded
UPDATE as the embedded workers, so a message delivered twice trains the run once, and trains it
through `execute_run`, as the embedded runner does: heartbeat, progress, loss batches,
checkpoints, the cancel flag, all through the database.

Celery's known traps, and what is done about each:
- A worker lost mid-task: `task_acks_late` and `task_reject_on_worker_lost` put the message back,
  but the redelivery finds the run `running` and does nothing; the API's reconciler re-queues
  the run once its heartbeat stops, and it resumes from its last checkpoint elsewhere.
- Prefetching: one message per worker process (`worker_prefetch_multiplier=1`), so a long run
  never holds messages that idle workers could take.
- Redis redelivers a message not acknowledged within its visibility timeout: set above the
  longest run, and a redelivery would do nothing anyway.
- No result backend: results live in our tables. Cancel is the database flag, never
  `revoke(terminate=True)`, which would kill a run between a checkpoint and its row.
- Forking: the worker's parent process never touches CUDA, and the database only once, before
  it forks, through an engine it disposes of; each child makes its own engine, warms torch up
  and registers itself in the workers table.
- A worker given another models store than the API's would train runs nobody can use: the
  parent checks the store's marker against the database before its pool starts, and refuses to
  start (exit status 1, the reason on stderr). Its pool processes inherit its settings, so they
  are not checked again: a refusal there would only have Celery fork them again and again.
- A new pool process must say it is up within `worker_proc_alive_timeout` (4 s by default) or
  Celery kills it and forks another; warming torch up takes longer than that on a busy machine,
  and the worker then never trains again. Set to PROC_ALIVE_TIMEOUT_S: a slow start is waited
  for.
- Warm shutdown (SIGTERM) waits for the tasks in hand, however long: instead, the parent marks
  itself stopping (a flag file its pool processes look at every report), and the run in hand is
  checkpointed and handed back to the queue, as the embedded workers do; the reconciler
  publishes it again.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from celery import Celery
from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
    worker_shutting_down,
)
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_session_factory
from app.jobs.presence import Presence, make_worker_id
from app.jobs.task import TaskContext, execute_run, write
from app.ml.devices import training_device_name
from app.ml.engine import warm_up
from app.services.run_lifecycle import claim_run
from app.services.store_identity import StoreUnusable, check_store
from app.vocabulary import Queue, RunnerKind

log = logging.getLogger(__name__)

TRAIN_TASK = "pc.train_run"
# Longer than any run may take: Redis hands an unacknowledged message to another worker after
# this long (harmless, the run cannot be claimed twice, but wasteful).
VISIBILITY_TIMEOUT_S = 7 * 24 * 3600
# How long a new pool process may take to start (imports, torch's warm-up, the database).
PROC_ALIVE_TIMEOUT_S = 600.0


def queue_for(device: str, default: Queue) -> Queue:
    """The queue a run's device sends it to: cuda and cuda:N to cuda, cpu to cpu."""
    if device == "cpu":
        return Queue.CPU
    if device.startswith("cuda"):
        return Queue.CUDA
    return default


def make_celery(settings: Settings, publish_timeout_s: float | None = None) -> Celery:
    """The Celery app; with `publish_timeout_s` (the API's), every wait on the broker's socket is
    bounded and a publish that fails is not retried: the reconciler sends it again."""
    celery = Celery("point_classifier", broker=settings.broker_url, set_as_current=False)
    transport: dict[str, float] = {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    if publish_timeout_s is not None:
        transport |= {
            "socket_timeout": publish_timeout_s,
            "socket_connect_timeout": publish_timeout_s,
        }
        celery.conf.update(
            task_publish_retry=False,
            broker_connection_timeout=publish_timeout_s,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
        )
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=settings.default_queue.value,
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_proc_alive_timeout=PROC_ALIVE_TIMEOUT_S,
    )
    return celery


app = make_celery(get_settings())
celery = app  # `celery -A app.jobs.celery_app` finds either name


def stopping_flag(main_pid: int) -> Path:
    """The file that says the worker whose main process is `main_pid` is shutting down."""
    return Path(tempfile.gettempdir()) / f"pc-celery-worker-{main_pid}.stopping"


class _Stopping:
    """Whether this pool process's worker is shutting down. The engine asks between layers,
    thousands of times a second: the file is looked at no more than every CHECK_S."""

    CHECK_S = 0.2

    def __init__(self, flag: Path) -> None:
        self.flag, self.seen, self.next_check = flag, False, 0.0

    def __call__(self) -> bool:
        if not self.seen and (now := time.monotonic()) >= self.next_check:
            self.seen, self.next_check = self.flag.exists(), now + self.CHECK_S
        return self.seen


@worker_init.connect
def _refuse_a_store_not_shared(**_: Any) -> None:
    """In the worker's main process, before its pool starts (`python -m app worker` and
    `celery -A app.jobs.celery_app worker` alike). SystemExit, not another exception: Celery
    logs those and starts anyway."""
    settings = get_settings()
    engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_ms)
    try:
        with make_session_factory(engine)() as session:
            check_store(session, settings.models_store)
    except StoreUnusable as exc:
        raise SystemExit(f"error: the worker cannot start: {exc}") from None
    except DBAPIError as exc:
        raise SystemExit(
            f"error: the worker cannot start: cannot read the database at "
            f"PC_DATABASE_URL={engine.url!r} to check its models store: {exc.orig}"
        ) from None
    finally:
        engine.dispose()


@worker_shutting_down.connect
def _mark_stopping(**_: Any) -> None:
    stopping_flag(os.getpid()).touch()


@worker_shutdown.connect
def _clear_stopping(**_: Any) -> None:
    stopping_flag(os.getpid()).unlink(missing_ok=True)


class _Child:
    """What one worker child process holds: its engine, its presence and its task context."""

    def __init__(self, settings: Settings, main_pid: int) -> None:
        torch.set_num_threads(settings.worker_threads or 1)
        torch.set_num_interop_threads(1)
        warm_up()
        self.engine = make_engine(settings.database_url, settings.sqlite_busy_timeout_ms)
        factory = make_session_factory(self.engine)
        self.worker_id = make_worker_id()
        queues = [queue for queue in settings.worker_queues.split(",") if queue]
        self.presence = Presence(
            factory,
            self.worker_id,
            settings.heartbeat_interval_s,
            runner=RunnerKind.CELERY,
            queues=queues or [settings.default_queue.value],
            device=training_device_name(),
        ).__enter__()
        self.ctx = TaskContext.from_settings(
            settings, factory, self.worker_id, should_release=_Stopping(stopping_flag(main_pid))
        )

    def close(self) -> None:
        self.presence.__exit__()
        self.engine.dispose()


_child: _Child | None = None


@worker_process_init.connect
def _start_child(**_: Any) -> None:
    global _child
    _child = _Child(get_settings(), main_pid=os.getppid())


@worker_process_shutdown.connect
def _stop_child(**_: Any) -> None:
    if _child is not None:
        _child.close()


@app.task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True)
def train_run(run_id: int) -> None:
    """Train the run if it is still queued; a duplicate or late message does nothing."""
    child = _child if _child is not None else _start_solo()
    claim = write(child.ctx, lambda session: claim_run(session, run_id, child.worker_id))
    if claim is None:
        log.info("run %s is not queued (taken, ended or deleted); nothing to do", run_id)
        return
    log.info("worker %s training run %s", child.worker_id, run_id)
    child.presence.training(run_id)
    try:
        execute_run(claim, child.ctx)
    finally:
        child.presence.training(None)


def _start_solo() -> _Child:
    """A worker with `--pool solo` runs tasks in its main process: no child to set up first."""
    global _child
    _child = _Child(get_settings(), main_pid=os.getpid())
    return _child
