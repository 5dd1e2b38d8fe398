"""What workers and the runner do to runs: claim, report, checkpoint, finish, recover.

Every write a worker makes names the claim it holds (`Claim`: the run, the worker and the
claim's number, raised by every claim), so a worker that has lost its run (re-queued, cancelled,
deleted, or taken by another worker while it was paused) changes nothing and stops. Times that
decide whether a worker lives are the database's (`database_now`), never a worker's own clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from app.core.db import database_now
from app.ml.architectures import NetworkSpec
from app.ml.checkpoints import CheckpointRef
from app.ml.devices import DeviceUnavailable, resolve_device
from app.ml.engine import TrainConfig, group_key, most_runs_stacked
from app.models import Checkpoint, Dataset, Run, RunHistory, RunStatus
from app.models.base import utcnow
from app.services.datasets import dataset_points
from app.services.runs import last_losses, latest_checkpoint
from app.vocabulary import FailureReason


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a run: its number is the run's `claim` when this worker took it, and
    no other worker ever holds the same number."""

    run_id: int
    worker_id: str
    number: int


@dataclass(frozen=True)
class TrainingJob:
    """Everything a worker needs to train a claimed run, read in one transaction."""

    claim: Claim
    config: TrainConfig
    device: str
    points: Any  # NDArray[np.float64], (n, 3)
    resume_from: CheckpointRef | None

    @property
    def run_id(self) -> int:
        return self.claim.run_id


@dataclass(frozen=True)
class ProgressAck:
    owned: bool  # False: the run is no longer this worker's to train
    cancel_requested: bool


def _held(claim: Claim) -> Any:
    return (
        (Run.id == claim.run_id)
        & (Run.worker_id == claim.worker_id)
        & (Run.claim == claim.number)
        & (Run.status == RunStatus.RUNNING)
    )


def _held_all(claims: list[Claim]) -> Any:
    return or_(*(_held(claim) for claim in claims))


def _claiming(session: Session, which: Any, worker_id: str) -> Any:
    """The guarded UPDATE that takes the runs `which` picks if they are still queued: of two
    workers (or two deliveries of one message) at most one gets each. Returns (id, claim)."""
    now = database_now(session)
    return (
        update(Run)
        .where(which, Run.status == RunStatus.QUEUED)
        .values(
            status=RunStatus.RUNNING,
            worker_id=worker_id,
            claim=Run.claim + 1,
            heartbeat_at=now,
            started_at=func.coalesce(Run.started_at, now),
        )
        .returning(Run.id, Run.claim)
        .execution_options(synchronize_session=False)
    )


def _claim(session: Session, which: Any, worker_id: str) -> Claim | None:
    """Take the run if it is still queued."""
    row = session.execute(_claiming(session, which, worker_id)).first()
    return Claim(row[0], worker_id, row[1]) if row is not None else None


def claim_next_run(session: Session, worker_id: str) -> Claim | None:
    """Take the oldest queued run (the embedded runner's workers poll with this). On
    PostgreSQL, a run another claimer has locked is skipped, not waited for and lost."""
    oldest = (
        select(Run.id)
        .where(Run.status == RunStatus.QUEUED)
        .order_by(Run.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return _claim(session, Run.id == oldest, worker_id)


def claim_run(session: Session, run_id: int, worker_id: str) -> Claim | None:
    """Take this run if it is still queued (a Celery task names its run)."""
    return _claim(session, Run.id == run_id, worker_id)


def queued_runs(session: Session, published_before: datetime) -> list[tuple[int, str]]:
    """(id, device) of queued runs whose wake-up message was last published before then."""
    rows = session.execute(
        select(Run.id, Run.device)
        .where(Run.status == RunStatus.QUEUED)
        .where((Run.published_at.is_(None)) | (Run.published_at < published_before))
        .order_by(Run.id)
    ).all()
    return [(row.id, row.device) for row in rows]


def mark_published(session: Session, run_ids: list[int]) -> None:
    if run_ids:
        session.execute(
            update(Run)
            .where(Run.id.in_(run_ids))
            .values(published_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def mark_unpublished(session: Session, run_id: int) -> None:
    """Its wake-up message did not reach the broker: the reconciler's next pass sends it."""
    session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == RunStatus.QUEUED)
        .values(published_at=None)
        .execution_options(synchronize_session=False)
    )


def prepare_job(session: Session, claim: Claim) -> TrainingJob | None:
    """Read the claimed run; drop history past the checkpoint it resumes from."""
    if not still_owned(session, claim):
        return None
    run_id = claim.run_id
    run = session.get(Run, run_id)
    assert run is not None
    resume_from = latest_checkpoint(session, run_id)
    resume_epoch = resume_from.epoch if resume_from is not None else 0
    session.execute(
        delete(RunHistory).where(RunHistory.run_id == run_id, RunHistory.epoch >= resume_epoch)
    )
    last = last_losses(session, run_id)
    run.epoch = resume_epoch
    run.loss, run.val_loss = (last[1], last[2]) if last is not None else (None, None)
    _, points = dataset_points(session, run.dataset_id)
    return TrainingJob(claim, run_config(run), run.device, points, resume_from)


def run_config(run: Run) -> TrainConfig:
    return TrainConfig(
        network=NetworkSpec(run.architecture, tuple(run.hidden_layers), run.activation),
        epochs=run.epochs,
        learning_rate=run.learning_rate,
        optimizer=run.optimizer,
        momentum=run.momentum,
        batch_size=run.batch_size,
        seed=run.seed,
        validation_split=run.validation_split,
        checkpoint_every=run.checkpoint_every,
        loss=run.loss_function,
    )


def claim_group(session: Session, claim: Claim, *, most: int, idle_workers: int) -> list[Claim]:
    """The claimed run, and the queued runs of its sweep this worker takes to train with it
    as one stacked model: those that can (`engine.group_key`), oldest first, at most `most`
    in all, and no more than a fair share when idle workers have nothing else to take.
    """
    run = session.get(Run, claim.run_id)
    if run is None or run.sweep_id is None or most < 2:
        return [claim]
    config = run_config(run)
    key = group_key(config)
    candidates = session.scalars(
        select(Run)
        .where(
            Run.sweep_id == run.sweep_id,
            Run.status == RunStatus.QUEUED,
            Run.dataset_id == run.dataset_id,
            Run.device == run.device,
        )
        .order_by(Run.id)
    ).all()
    fellows = [other.id for other in candidates if group_key(run_config(other)) == key]
    n_points = session.scalar(select(Dataset.n_points).where(Dataset.id == run.dataset_id)) or 1
    # Idle workers with other queued runs to take need none of these; the rest get a share.
    queued = session.scalar(select(func.count()).where(Run.status == RunStatus.QUEUED)) or 0
    wanting = max(0, idle_workers - (queued - len(fellows)))
    share = -(-(len(fellows) + 1) // (wanting + 1))
    try:
        on_cpu = resolve_device(run.device).type == "cpu"
    except DeviceUnavailable:  # the worker fails the run, alone
        return [claim]
    limit = min(most, share, most_runs_stacked(config.network, n_points, on_cpu=on_cpu))
    wanted = fellows[: limit - 1]
    if not wanted:
        return [claim]
    taken = session.execute(_claiming(session, Run.id.in_(wanted), claim.worker_id)).all()
    return [claim, *(Claim(run_id, claim.worker_id, number) for run_id, number in sorted(taken))]


def set_device_used(session: Session, claims: list[Claim], device: str) -> None:
    session.execute(
        update(Run)
        .where(_held_all(claims))
        .values(device_used=device)
        .execution_options(synchronize_session=False)
    )


def beat_runs(session: Session, claims: list[Claim]) -> dict[int, ProgressAck]:
    """A heartbeat for each run, in one statement; a run missing from the answer is no
    longer this worker's."""
    rows = session.execute(
        update(Run)
        .where(_held_all(claims))
        .values(heartbeat_at=database_now(session))
        .returning(Run.id, Run.cancel_requested)
        .execution_options(synchronize_session=False)
    ).all()
    owned = {row[0]: ProgressAck(owned=True, cancel_requested=bool(row[1])) for row in rows}
    lost = ProgressAck(owned=False, cancel_requested=False)
    return {claim.run_id: owned.get(claim.run_id, lost) for claim in claims}


def record_progress(
    session: Session,
    claim: Claim,
    first_epoch: int,
    losses: list[float],
    val_losses: list[float] | None,
) -> ProgressAck:
    """Heartbeat, progress and a batch of per-epoch losses, in one short transaction."""
    values: dict[str, Any] = {"heartbeat_at": database_now(session)}
    if losses:
        values |= {"epoch": first_epoch + len(losses), "loss": losses[-1]}
        if val_losses:
            values["val_loss"] = val_losses[-1]
    result = session.execute(
        update(Run)
        .where(_held(claim))
        .values(**values)
        .returning(Run.cancel_requested)
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        return ProgressAck(owned=False, cancel_requested=False)
    if losses:
        # The table, not the ORM class: a Core executemany, 2.5x faster for thousands of rows.
        session.execute(
            insert(cast(Table, RunHistory.__table__)),
            [
                {
                    "run_id": claim.run_id,
                    "epoch": first_epoch + offset,
                    "loss": loss,
                    "val_loss": val_losses[offset] if val_losses else None,
                }
                for offset, loss in enumerate(losses)
            ],
        )
    return ProgressAck(owned=True, cancel_requested=bool(result[0]))


def make_room(
    session: Session, claim: Claim, size: int, max_store_bytes: int
) -> tuple[bool, list[str]]:
    """Room in the store for a checkpoint of `size` bytes: thin this run's own checkpoints,
    keeping its first and last and every other one between, until the store's total fits.
    Returns (whether it fits, the paths of the checkpoints dropped, for the caller to unlink
    once this is committed)."""
    run_id = claim.run_id
    used = session.scalar(select(func.coalesce(func.sum(Checkpoint.size_bytes), 0))) or 0
    dropped: list[str] = []
    while used + size > max_store_bytes:
        rows = session.execute(
            select(Checkpoint.epoch, Checkpoint.path, Checkpoint.size_bytes)
            .where(Checkpoint.run_id == run_id)
            .order_by(Checkpoint.epoch)
        ).all()
        between = rows[1:-1]
        if not between or not still_owned(session, claim):
            return False, dropped
        thinned = between[::2]  # every other one, from the oldest
        session.execute(
            delete(Checkpoint).where(
                Checkpoint.run_id == run_id, Checkpoint.epoch.in_([row[0] for row in thinned])
            )
        )
        dropped += [row[1] for row in thinned]
        used -= sum(row[2] for row in thinned)
    return True, dropped


def still_owned(session: Session, claim: Claim) -> bool:
    """Whether this worker still holds the run (not deleted, cancelled or taken back)."""
    return session.scalar(select(Run.id).where(_held(claim))) is not None


def record_checkpoint(
    session: Session, claim: Claim, epoch: int, path: str, sha256: str, size: int
) -> bool:
    """Record a checkpoint file this claim wrote (`checkpoint_relpath` with its number) in
    place of any earlier one at that epoch; False, recording nothing, if the claim is lost."""
    if not still_owned(session, claim):
        return False
    run_id = claim.run_id
    session.execute(
        delete(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.epoch == epoch)
    )
    session.add(Checkpoint(run_id=run_id, epoch=epoch, path=path, sha256=sha256, size_bytes=size))
    session.flush()
    return True


def finish_run(
    session: Session,
    claim: Claim,
    status: RunStatus,
    *,
    accuracy: float | None = None,
    error: str | None = None,
    failure: FailureReason | None = None,
) -> bool:
    """End a run this worker holds; its final loss is the last recorded one."""
    last = last_losses(session, claim.run_id)
    result = session.execute(
        update(Run)
        .where(_held(claim))
        .values(
            status=status,
            final_loss=last[1] if last is not None else None,
            accuracy=accuracy,
            error=error,
            failure_reason=failure,
            worker_id=None,
            cancel_requested=False,
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_run(session: Session, claim: Claim) -> bool:
    """Hand a run back to the queue on a graceful shutdown; it resumes from its checkpoint."""
    result = session.execute(
        update(Run)
        .where(_held(claim))
        # published_at cleared: with PC_RUNNER=celery the reconciler publishes it at once.
        .values(status=RunStatus.QUEUED, worker_id=None, published_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def recover_orphaned_runs(
    session: Session,
    *,
    is_orphaned: Callable[[str | None, datetime | None], bool],
    max_restarts: int,
) -> list[int]:
    """Re-queue running runs whose worker is gone, or fail them after too many restarts."""
    recovered = []
    # Row locks where the database has them (PostgreSQL), skipping rows another reconciler
    # holds: several API processes may recover at once, and each run is recovered once.
    running = select(Run).where(Run.status == RunStatus.RUNNING).with_for_update(skip_locked=True)
    for run in session.scalars(running):
        if not is_orphaned(run.worker_id, run.heartbeat_at):
            continue
        recovered.append(run.id)
        lost = f"its worker ({run.worker_id}) stopped"
        if run.restarts >= max_restarts:
            run.status = RunStatus.FAILED
            run.error = (
                f"{lost} and it was already restarted {run.restarts} time(s); "
                f"giving up after PC_MAX_RESTARTS={max_restarts}"
            )
            run.failure_reason = FailureReason.WORKER_LOST
            run.finished_at = utcnow()
            run.final_loss = run.loss
        elif run.cancel_requested:
            run.status = RunStatus.CANCELLED
            run.finished_at = utcnow()
            run.final_loss = run.loss
        else:
            run.status = RunStatus.QUEUED
            run.restarts += 1
            run.published_at = None  # to be published again at once (PC_RUNNER=celery)
        run.worker_id = None
    session.flush()
    return recovered
