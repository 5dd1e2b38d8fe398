"""The training task: a function of a run id that any runner can call.

Cancel requests and progress go through the database only, so the embedded runner and a
distributed one (Celery workers sharing the database and checkpoint store) can both call it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.core.db import session_scope
from app.ml.checkpoints import (
    CheckpointError,
    checkpoint_relpath,
    load_checkpoint,
    write_checkpoint,
)
from app.ml.devices import DeviceUnavailable, resolve_device
from app.ml.engine import train
from app.models import RunStatus
from app.services import run_lifecycle as lifecycle

log = logging.getLogger(__name__)


@dataclass
class TaskContext:
    session_factory: sessionmaker[Session]
    models_store: Path
    worker_id: str
    report_interval_s: float = 0.25
    # True when the worker must stop (graceful shutdown): the run is checkpointed and re-queued.
    should_release: Callable[[], bool] = lambda: False
    # Called at every report; a worker whose server died exits here, as a crash would.
    on_report: Callable[[], None] = lambda: None


@dataclass
class _DatabaseCallbacks:
    run_id: int
    ctx: TaskContext
    stop_reason: str | None = None
    checkpoints: list[int] = field(default_factory=list)

    def on_progress(
        self, first_epoch: int, losses: list[float], val_losses: list[float] | None
    ) -> bool:
        self.ctx.on_report()
        with session_scope(self.ctx.session_factory) as session:
            ack = lifecycle.record_progress(
                session, self.run_id, self.ctx.worker_id, first_epoch, losses, val_losses
            )
        if not ack.owned:
            self.stop_reason = "lost"
        elif ack.cancel_requested:
            self.stop_reason = "cancelled"
        elif self.ctx.should_release():
            self.stop_reason = "released"
        return self.stop_reason is None

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        relpath = checkpoint_relpath(self.run_id, epoch)
        sha256, size = write_checkpoint(self.ctx.models_store, relpath, state)
        with session_scope(self.ctx.session_factory) as session:
            kept = lifecycle.record_checkpoint(
                session, self.run_id, self.ctx.worker_id, epoch, relpath, sha256, size
            )
        if not kept:
            # The run was deleted or taken away meanwhile: leave no file the database lacks.
            path = self.ctx.models_store / relpath
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: the run's files are still wanted
                path.parent.rmdir()
            self.stop_reason = self.stop_reason or "lost"
        else:
            self.checkpoints.append(epoch)


def _finish(ctx: TaskContext, run_id: int, status: RunStatus, **values: Any) -> None:
    with session_scope(ctx.session_factory) as session:
        lifecycle.finish_run(session, run_id, ctx.worker_id, status, **values)


def execute_run(run_id: int, ctx: TaskContext) -> None:
    """Train a run this worker has claimed, from its last checkpoint if it has one."""
    with session_scope(ctx.session_factory) as session:
        job = lifecycle.prepare_job(session, run_id, ctx.worker_id)
    if job is None:
        return
    try:
        device = resolve_device(job.device)
    except DeviceUnavailable as exc:
        _finish(ctx, run_id, RunStatus.FAILED, error=str(exc))
        return
    resume = None
    if job.resume_from is not None:
        try:
            resume = load_checkpoint(ctx.models_store, job.resume_from.path, job.resume_from.sha256)
        except CheckpointError as exc:
            _finish(ctx, run_id, RunStatus.FAILED, error=f"cannot resume: {exc}")
            return
    with session_scope(ctx.session_factory) as session:
        lifecycle.set_device_used(session, run_id, ctx.worker_id, str(device))

    callbacks = _DatabaseCallbacks(run_id, ctx)
    try:
        result = train(
            job.config,
            job.points,
            device,
            callbacks,
            resume=resume,
            report_interval_s=ctx.report_interval_s,
        )
    except Exception as exc:
        log.exception("run %s failed", run_id)
        _finish(ctx, run_id, RunStatus.FAILED, error=f"training error: {type(exc).__name__}: {exc}")
        return

    if result.outcome == "completed":
        _finish(ctx, run_id, RunStatus.SUCCEEDED, accuracy=result.accuracy)
    elif result.outcome == "diverged":
        _finish(ctx, run_id, RunStatus.FAILED, error=f"loss diverged at epoch {result.diverged_at}")
    elif callbacks.stop_reason == "cancelled":
        _finish(ctx, run_id, RunStatus.CANCELLED)
    elif callbacks.stop_reason == "released":
        with session_scope(ctx.session_factory) as session:
            released = lifecycle.release_run(session, run_id, ctx.worker_id)
        if released:
            log.info(
                "run %s: checkpointed at epoch %s and put back in the queue; it resumes from "
                "there when the service starts again",
                run_id,
                result.epochs_done,
            )
