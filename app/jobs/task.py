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
from app.ml.engine import Member, Report, TrainResult, train_group
from app.services import run_lifecycle as lifecycle
from app.services.workers import idle_workers
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
    heartbeat_timeout_s: float
    max_group_runs: int
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
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
            max_group_runs=settings.max_group_runs,
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
    """Says, from a thread of its own, that the worker is alive and holds its runs, however long
    an epoch takes; and notices between reports that a run was cancelled or taken away."""

    def __init__(self, ctx: TaskContext, claims: list[lifecycle.Claim]) -> None:
        self.ctx, self.claims = ctx, list(claims)
        self.reasons: dict[int, StopReason] = {}  # cancelled or lost, once seen
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{claims[0].run_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def should_stop(self) -> bool:
        return bool(self.reasons) or self.ctx.should_release()

    def forget(self, claim: lifecycle.Claim) -> None:
        """Beat no more for a run that has ended."""
        self.claims.remove(claim)

    def _beat(self) -> None:
        while not self._done.wait(self.ctx.heartbeat_interval_s):
            self.ctx.on_report()
            claims = list(self.claims)
            if not claims:
                continue
            try:
                with session_scope(self.ctx.session_factory) as session:
                    acks = lifecycle.beat_runs(session, claims)
            except OperationalError:
                continue  # a locked database: the next beat tries again
            for run_id, ack in acks.items():
                if not ack.owned:
                    self.reasons[run_id] = StopReason.LOST
                elif ack.cancel_requested:
                    self.reasons[run_id] = StopReason.CANCELLED


class StoreFull(Exception):
    """No room for a checkpoint under PC_MAX_STORE_BYTES, even after thinning."""


@dataclass
class _RunWrites:
    """What training one claimed run writes: its checkpoints, under its claim; and why it
    stops, once the database says."""

    claim: lifecycle.Claim
    ctx: TaskContext
    stop_reason: StopReason | None = None
    checkpoints: list[int] = field(default_factory=list)

    @property
    def run_id(self) -> int:
        return self.claim.run_id

    def note(self, ack: lifecycle.ProgressAck) -> bool:
        """Take the database's answer to a report; False means stop."""
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
            lambda session: lifecycle.still_owned(session, self.claim),
        )

    def _make_room(self, size: int) -> None:
        fits, dropped = write(
            self.ctx,
            lambda session: lifecycle.make_room(
                session, self.claim, size, self.ctx.max_store_bytes
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

    def checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        # Named with the claim's number: a worker that lost the run while paused writes (and
        # then removes) its own file, never its new owner's.
        relpath = checkpoint_relpath(self.run_id, epoch, self.claim.number)
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
                session, self.claim, epoch, relpath, sha256, size
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


def _finish(ctx: TaskContext, claim: lifecycle.Claim, status: RunStatus, **values: Any) -> None:
    write(ctx, lambda session: lifecycle.finish_run(session, claim, status, **values))


def execute_run(claim: lifecycle.Claim, ctx: TaskContext) -> None:
    """Train a run this worker has claimed, from its last checkpoint if it has one, together
    with the queued runs of its sweep that can train with it (claimed here too)."""
    claims = write(
        ctx,
        lambda session: lifecycle.claim_group(
            session,
            claim,
            most=ctx.max_group_runs,
            idle_workers=idle_workers(session, ctx.heartbeat_timeout_s, ctx.worker_id),
        ),
    )
    jobs = write(
        ctx,
        lambda session: [
            job
            for claimed in claims
            if (job := lifecycle.prepare_job(session, claimed)) is not None
        ],
    )
    if not jobs:
        return
    try:
        device = resolve_device(jobs[0].device)  # a group shares its device
    except DeviceUnavailable as exc:
        for job in jobs:
            _finish(ctx, job.claim, RunStatus.FAILED, error=str(exc), failure=FailureReason.DEVICE)
        return
    members = []
    for job in jobs:
        resume = None
        if job.resume_from is not None:
            try:
                resume = load_checkpoint(
                    ctx.models_store, job.resume_from.path, job.resume_from.sha256
                )
            except CheckpointError as exc:
                _finish(
                    ctx,
                    job.claim,
                    RunStatus.FAILED,
                    error=f"cannot resume: {exc}",
                    failure=FailureReason.CHECKPOINT,
                )
                continue
        members.append((job, resume))
    if not members:
        return
    trained = [job.claim for job, _ in members]
    write(ctx, lambda session: lifecycle.set_device_used(session, trained, str(device)))
    _train(ctx, members, device)


@dataclass
class _DatabaseCallbacks:
    """The engine's callbacks for the claimed runs: every report goes to the database in one
    transaction, each run's checkpoints under its claim, and each run ends as it ends."""

    ctx: TaskContext
    runs: list[_RunWrites]
    heartbeat: Heartbeat
    ended: set[int] = field(default_factory=set)

    def on_progress(self, reports: list[Report]) -> list[int]:
        self.ctx.on_report()

        def record(session: Session) -> list[lifecycle.ProgressAck]:
            return [
                lifecycle.record_progress(
                    session,
                    self.runs[report.member].claim,
                    report.first_epoch,
                    report.losses,
                    report.val_losses,
                )
                for report in reports
            ]

        acks = write(self.ctx, record)
        return [
            report.member
            for report, ack in zip(reports, acks, strict=True)
            if not self.runs[report.member].note(ack)
        ]

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        self.runs[member].checkpoint(epoch, state)

    def on_end(self, member: int, result: TrainResult) -> None:
        run = self.runs[member]
        self.heartbeat.forget(run.claim)
        _conclude(self.ctx, run, result, self.heartbeat)
        self.ended.add(member)  # only once concluded: a failed write leaves it to `_failed`


def _train(
    ctx: TaskContext,
    members: list[tuple[lifecycle.TrainingJob, dict[str, Any] | None]],
    device: Any,
) -> None:
    """Train the claimed runs: one, or a sweep's group together as one stacked model."""
    claims = [job.claim for job, _ in members]
    run_ids = [claim.run_id for claim in claims]
    if len(run_ids) > 1:
        log.info("runs %s train together as one stacked model", run_ids)
    with Heartbeat(ctx, claims) as heartbeat:
        callbacks = _DatabaseCallbacks(ctx, [_RunWrites(c, ctx) for c in claims], heartbeat)

        def stop_requests() -> list[int]:
            if ctx.should_release():
                return list(range(len(run_ids)))
            return [run_ids.index(run_id) for run_id in list(heartbeat.reasons)]

        try:
            train_group(
                [Member(job.config, resume) for job, resume in members],
                members[0][0].points,
                device,
                callbacks,
                report_interval_s=ctx.report_interval_s,
                stop_requests=stop_requests,
            )
        except Exception as exc:
            for member, run in enumerate(callbacks.runs):
                if member not in callbacks.ended:
                    _failed(ctx, run, exc)


def _failed(ctx: TaskContext, run: _RunWrites, exc: Exception) -> None:
    """A run whose training raised: failed, unless it was deleted or taken back meanwhile."""
    run_id = run.run_id
    if isinstance(exc, StoreFull):
        log.warning("run %s failed: %s", run_id, exc)
        _finish(ctx, run.claim, RunStatus.FAILED, error=str(exc), failure=FailureReason.STORE_FULL)
        return
    if run.lost_meanwhile():
        log.info("run %s was deleted or taken back while training; stopped", run_id)
        return
    log.error("run %s failed", run_id, exc_info=exc)
    _finish(
        ctx,
        run.claim,
        RunStatus.FAILED,
        error=f"training error: {type(exc).__name__}: {exc}",
        failure=FailureReason.ERROR,
    )


def _conclude(ctx: TaskContext, run: _RunWrites, result: TrainResult, heartbeat: Heartbeat) -> None:
    """Record how a run's training ended."""
    run_id, claim, stop_reason = run.run_id, run.claim, run.stop_reason
    if stop_reason is None and result.outcome == TrainOutcome.STOPPED:
        # Stopped inside an epoch, by what the heartbeat saw or by a shutdown.
        stop_reason = heartbeat.reasons.get(run_id) or StopReason.RELEASED
    if result.outcome == TrainOutcome.COMPLETED:
        _finish(ctx, claim, RunStatus.SUCCEEDED, accuracy=result.accuracy)
    elif result.outcome == TrainOutcome.DIVERGED:
        _finish(
            ctx,
            claim,
            RunStatus.FAILED,
            error=f"loss diverged at epoch {result.diverged_at}",
            failure=FailureReason.DIVERGED,
        )
    elif stop_reason == StopReason.CANCELLED:
        _finish(ctx, claim, RunStatus.CANCELLED)
    elif stop_reason == StopReason.RELEASED:
        released = write(ctx, lambda session: lifecycle.release_run(session, claim))
        if released:
            log.info(
                "run %s: checkpointed at epoch %s and put back in the queue; it resumes from "
                "there when a worker takes it again",
                run_id,
                result.epochs_done,
            )
