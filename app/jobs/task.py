"""The training task: a function of a run id that any runner can call.

Cancel requests and progress go through the database only, so the embedded runner and a
distributed one (Celery workers sharing the database and checkpoint store) can both call it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from app.core.config import Settings
from app.core.db import session_scope
from app.ml.checkpoints import (
    CheckpointError,
    checkpoint_relpath,
    load_checkpoint,
    serialize_checkpoint,
    write_checkpoint_bytes,
)
from app.ml.devices import DeviceUnavailable, resolve_device
from app.ml.engine import train
from app.services import run_lifecycle as lifecycle
from app.vocabulary import FailureReason, RunStatus, StopReason, TrainOutcome

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class TaskContext:
    session_factory: sessionmaker[Session]
    models_store: Path
    worker_id: str
    # From the settings (PC_*), with no second default here.
    heartbeat_interval_s: float
    write_patience_s: float
    max_store_bytes: int
    report_interval_s: float
    # True when the worker must stop (graceful shutdown): the run is checkpointed and re-queued.
    should_release: Callable[[], bool] = lambda: False
    # Called at every report; a worker whose server died exits here, as a crash would.
    on_report: Callable[[], None] = lambda: None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        session_factory: sessionmaker[Session],
        worker_id: str,
        **hooks: Callable[[], Any],
    ) -> TaskContext:
        """A worker's context: the settings' values, and its `should_release`/`on_report`."""
        return cls(
            session_factory=session_factory,
            models_store=settings.models_store,
            worker_id=worker_id,
            heartbeat_interval_s=settings.heartbeat_interval_s,
            write_patience_s=settings.write_patience_s,
            max_store_bytes=settings.max_store_bytes,
            report_interval_s=settings.progress_interval_s,
            **hooks,
        )


def write(ctx: TaskContext, action: Callable[[Session], T]) -> T:
    """One short transaction of the worker's, retried with backoff while the database refuses
    it (a lock held past busy_timeout), for up to `write_patience_s`: the worker waits out a
    stalled database and goes on training."""
    retrying = Retrying(
        retry=retry_if_exception_type(OperationalError),
        wait=wait_exponential(multiplier=0.1, max=5.0),
        stop=stop_after_delay(ctx.write_patience_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    for attempt in retrying:
        with attempt, session_scope(ctx.session_factory) as session:
            return action(session)
    raise AssertionError("unreachable: tenacity re-raises the last error")


class Heartbeat:
    """Says, from a thread of its own, that the worker is alive, however long an epoch takes;
    and notices between reports that the run was cancelled or taken away."""

    def __init__(self, ctx: TaskContext, run_id: int) -> None:
        self.ctx, self.run_id = ctx, run_id
        self.reason: StopReason | None = None  # cancelled or lost, once seen
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def should_stop(self) -> bool:
        return self.reason is not None or self.ctx.should_release()

    def _beat(self) -> None:
        while not self._done.wait(self.ctx.heartbeat_interval_s):
            self.ctx.on_report()
            try:
                with session_scope(self.ctx.session_factory) as session:
                    ack = lifecycle.record_progress(
                        session, self.run_id, self.ctx.worker_id, 0, [], None
                    )
            except OperationalError:
                continue  # a locked database: the next beat tries again
            if not ack.owned:
                self.reason = StopReason.LOST
            elif ack.cancel_requested:
                self.reason = StopReason.CANCELLED


class StoreFull(Exception):
    """No room for a checkpoint under PC_MAX_STORE_BYTES, even after thinning."""


@dataclass
class _DatabaseCallbacks:
    run_id: int
    ctx: TaskContext
    stop_reason: StopReason | None = None
    checkpoints: list[int] = field(default_factory=list)

    def on_progress(
        self, first_epoch: int, losses: list[float], val_losses: list[float] | None
    ) -> bool:
        self.ctx.on_report()
        ack = write(
            self.ctx,
            lambda session: lifecycle.record_progress(
                session, self.run_id, self.ctx.worker_id, first_epoch, losses, val_losses
            ),
        )
        if not ack.owned:
            self.stop_reason = StopReason.LOST
        elif ack.cancel_requested:
            self.stop_reason = StopReason.CANCELLED
        elif self.ctx.should_release():
            self.stop_reason = StopReason.RELEASED
        return self.stop_reason is None

    def lost_meanwhile(self) -> bool:
        """Whether the run went away (deleted, taken back): a DELETE /runs commits before it
        removes the run's files, so an error that removal caused finds the row gone."""
        return not write(
            self.ctx,
            lambda session: lifecycle.still_owned(session, self.run_id, self.ctx.worker_id),
        )

    def _make_room(self, size: int) -> None:
        fits, dropped = write(
            self.ctx,
            lambda session: lifecycle.make_room(
                session, self.run_id, self.ctx.worker_id, size, self.ctx.max_store_bytes
            ),
        )
        for relpath in dropped:
            (self.ctx.models_store / relpath).unlink(missing_ok=True)
        if dropped:
            log.info(
                "run %s: thinned %d older checkpoint(s) to stay under PC_MAX_STORE_BYTES",
                self.run_id,
                len(dropped),
            )
        if not fits:
            raise StoreFull(
                f"the models store is full: a checkpoint of {size} bytes would take it past "
                f"PC_MAX_STORE_BYTES={self.ctx.max_store_bytes}, and this run has no older "
                "checkpoints left to thin; free space (delete runs) or raise the limit"
            )

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        relpath = checkpoint_relpath(self.run_id, epoch)
        data = serialize_checkpoint(state)
        self._make_room(len(data))
        try:
            sha256, size = write_checkpoint_bytes(self.ctx.models_store, relpath, data)
        except OSError:
            if self.lost_meanwhile():  # its folder went with a DELETE /runs: nothing to keep
                self.stop_reason = StopReason.LOST
                return
            raise
        kept = write(
            self.ctx,
            lambda session: lifecycle.record_checkpoint(
                session, self.run_id, self.ctx.worker_id, epoch, relpath, sha256, size
            ),
        )
        if not kept:
            # The run was deleted or taken away meanwhile: leave no file the database lacks.
            path = self.ctx.models_store / relpath
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: the run's files are still wanted
                path.parent.rmdir()
            self.stop_reason = self.stop_reason or StopReason.LOST
        else:
            self.checkpoints.append(epoch)


def _finish(ctx: TaskContext, run_id: int, status: RunStatus, **values: Any) -> None:
    write(
        ctx, lambda session: lifecycle.finish_run(session, run_id, ctx.worker_id, status, **values)
    )


def execute_run(run_id: int, ctx: TaskContext) -> None:
    """Train a run this worker has claimed, from its last checkpoint if it has one."""
    job = write(ctx, lambda session: lifecycle.prepare_job(session, run_id, ctx.worker_id))
    if job is None:
        return
    try:
        device = resolve_device(job.device)
    except DeviceUnavailable as exc:
        _finish(ctx, run_id, RunStatus.FAILED, error=str(exc), failure=FailureReason.DEVICE)
        return
    resume = None
    if job.resume_from is not None:
        try:
            resume = load_checkpoint(ctx.models_store, job.resume_from.path, job.resume_from.sha256)
        except CheckpointError as exc:
            _finish(
                ctx,
                run_id,
                RunStatus.FAILED,
                error=f"cannot resume: {exc}",
                failure=FailureReason.CHECKPOINT,
            )
            return
    write(
        ctx, lambda session: lifecycle.set_device_used(session, run_id, ctx.worker_id, str(device))
    )

    callbacks = _DatabaseCallbacks(run_id, ctx)
    try:
        with Heartbeat(ctx, run_id) as heartbeat:
            result = train(
                job.config,
                job.points,
                device,
                callbacks,
                resume=resume,
                report_interval_s=ctx.report_interval_s,
                should_stop=heartbeat.should_stop,
            )
    except StoreFull as exc:
        log.warning("run %s failed: %s", run_id, exc)
        _finish(ctx, run_id, RunStatus.FAILED, error=str(exc), failure=FailureReason.STORE_FULL)
        return
    except Exception as exc:
        if callbacks.lost_meanwhile():
            log.info("run %s was deleted or taken back while training; stopped", run_id)
            return
        log.exception("run %s failed", run_id)
        _finish(
            ctx,
            run_id,
            RunStatus.FAILED,
            error=f"training error: {type(exc).__name__}: {exc}",
            failure=FailureReason.ERROR,
        )
        return
    if callbacks.stop_reason is None and result.outcome == TrainOutcome.STOPPED:
        # Stopped inside an epoch, by what the heartbeat saw or by a shutdown.
        callbacks.stop_reason = heartbeat.reason or StopReason.RELEASED

    if result.outcome == TrainOutcome.COMPLETED:
        _finish(ctx, run_id, RunStatus.SUCCEEDED, accuracy=result.accuracy)
    elif result.outcome == TrainOutcome.DIVERGED:
        _finish(
            ctx,
            run_id,
            RunStatus.FAILED,
            error=f"loss diverged at epoch {result.diverged_at}",
            failure=FailureReason.DIVERGED,
        )
    elif callbacks.stop_reason == StopReason.CANCELLED:
        _finish(ctx, run_id, RunStatus.CANCELLED)
    elif callbacks.stop_reason == StopReason.RELEASED:
        released = write(ctx, lambda session: lifecycle.release_run(session, run_id, ctx.worker_id))
        if released:
            log.info(
                "run %s: checkpointed at epoch %s and put back in the queue; it resumes from "
                "there when a worker takes it again",
                run_id,
                result.epochs_done,
            )
