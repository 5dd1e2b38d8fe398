"""Runs as the API sees them: create, list, read, cancel, resume, delete, logs, checkpoints."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from app.core.db import after_commit
from app.core.errors import Conflict, InvalidInput, NotFound
from app.ml.architectures import InvalidArchitecture, network_spec, parameter_count
from app.ml.checkpoints import (
    CheckpointError,
    CheckpointRef,
    read_checkpoint_bytes,
    run_checkpoint_bytes,
    run_folder_name,
)
from app.ml.devices import DeviceUnavailable, resolve_device
from app.models import Checkpoint, Dataset, Run, RunHistory, RunStatus
from app.models.base import utcnow
from app.schemas.runs import (
    MAX_CHECKPOINTS,
    AnyRunCreate,
    CheckpointPublic,
    MlpRunCreate,
    RunPublic,
)
from app.services.datasets import dataset_name, get_dataset_id
from app.services.storage import remove_run_folder
from app.vocabulary import MAX_ID


def _public(run: Run, dataset_name: str) -> RunPublic:
    return RunPublic.model_validate(
        {
            **{
                column: getattr(run, column)
                for column in RunPublic.model_fields
                if hasattr(run, column)
            },
            "dataset": dataset_name,
        }
    )


def find_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id}")
    return run


def check_store_room(
    request: AnyRunCreate, parameters: int, checkpoint_every: int, max_store_bytes: int
) -> None:
    """Refuse a run whose checkpoints alone would take more than the whole store."""
    each = run_checkpoint_bytes(parameters, request.optimizer, request.momentum)
    count = request.epochs // checkpoint_every + 2  # and epoch 0, and the end
    if count * each <= max_store_bytes:
        return
    most = max_store_bytes // each
    hint = (
        f"checkpoint_every of at least {math.ceil(request.epochs / (most - 2))}"
        if most > 2
        else "a smaller network"
    )
    raise InvalidInput(
        f"this run's {count} checkpoints of about {each} bytes each would take about "
        f"{count * each} bytes, more than the models store's PC_MAX_STORE_BYTES="
        f"{max_store_bytes}; ask for {hint}"
    )


# Wakes a worker up for a queued run (id, device) once its row has committed.
Publish = Callable[[int, str], None]


def _publish_after_commit(session: Session, run: Run, publish: Publish | None) -> None:
    if publish is None:
        return
    run.published_at = utcnow()
    run_id, device = run.id, run.device
    after_commit(session, lambda: publish(run_id, device))


def create_run(
    session: Session,
    request: AnyRunCreate,
    max_store_bytes: int,
    publish: Publish | None = None,
    *,
    devices_here: bool = True,
    sweep_id: int | None = None,
    sweep_values: dict[str, Any] | None = None,
) -> RunPublic:
    """Queue a run (one of a sweep's, with `sweep_id` and the values its grid gave it). `devices_here`: the runs train on this machine, so a device it lacks is
    refused now; with workers elsewhere (PC_RUNNER=celery) a GPU run waits for a GPU worker,
    which fails it, saying why, if its machine lacks the device."""
    try:
        dataset_id = get_dataset_id(session, request.dataset)
    except NotFound as exc:
        raise NotFound(f"dataset: {exc.detail}") from None
    hidden_layers = request.hidden_layers if isinstance(request, MlpRunCreate) else None
    activation = request.activation if isinstance(request, MlpRunCreate) else None
    try:
        spec = network_spec(request.architecture, hidden_layers, activation)
        if devices_here:
            resolve_device(request.device)
    except (InvalidArchitecture, DeviceUnavailable) as exc:
        raise InvalidInput(str(exc)) from None
    # A run keeps at most MAX_CHECKPOINTS checkpoints: a smaller interval is raised.
    checkpoint_every = max(request.checkpoint_every, math.ceil(request.epochs / MAX_CHECKPOINTS))
    check_store_room(request, parameter_count(spec), checkpoint_every, max_store_bytes)
    run = Run(
        dataset_id=dataset_id,
        status=RunStatus.QUEUED,
        architecture=spec.architecture,
        hidden_layers=list(spec.hidden_layers),
        activation=spec.activation,
        parameter_count=parameter_count(spec),
        epochs=request.epochs,
        requested_epochs=request.epochs,
        learning_rate=request.learning_rate,
        optimizer=request.optimizer,
        momentum=request.momentum,
        loss_function=request.loss,
        batch_size=request.batch_size,
        seed=request.seed if request.seed is not None else secrets.randbelow(MAX_ID + 1),
        device=request.device,
        validation_split=request.validation_split,
        checkpoint_every=checkpoint_every,
        log_every=request.log_every,
        epoch=0,
        cancel_requested=False,
        restarts=0,
        sweep_id=sweep_id,
        sweep_values=sweep_values,
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError:
        # DELETE /datasets won the race: the dataset went between the lookup and the insert.
        raise NotFound(f"dataset: {request.dataset!r} was deleted meanwhile") from None
    _publish_after_commit(session, run, publish)
    return _public(run, dataset_name(session, dataset_id))


def get_run(session: Session, run_id: int) -> RunPublic:
    # One query, not two: this is what clients poll while a run trains.
    row = session.execute(
        select(Run, Dataset.name)
        .join(Dataset, Dataset.id == Run.dataset_id)
        .where(Run.id == run_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no run with id {run_id}")
    return _public(row[0], row[1])


def list_runs(
    session: Session,
    *,
    status: str | None,
    dataset: str | None,
    architecture: str | None,
    limit: int,
    offset: int,
) -> tuple[list[RunPublic], int]:
    query = select(Run, Dataset.name).join(Dataset, Dataset.id == Run.dataset_id)
    if status is not None:
        query = query.where(Run.status == status)
    if dataset is not None:
        query = query.where(Run.dataset_id == get_dataset_id(session, dataset))
    if architecture is not None:
        query = query.where(Run.architecture == architecture)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(Run.id.desc()).limit(limit).offset(offset)).all()
    return [_public(run, name) for run, name in rows], count


def cancel_run(session: Session, run_id: int) -> RunPublic:
    """A queued run is cancelled at once; a running one is flagged and its worker stops."""
    run = find_run(session, run_id)
    if run.status.ended:
        raise Conflict(f"run {run_id} has already ended ({run.status}); nothing to cancel")
    run.cancel_requested = True
    if run.status == RunStatus.QUEUED:
        run.status = RunStatus.CANCELLED
        run.finished_at = utcnow()
    _flush_or_gone(session, run_id)
    return _public(run, dataset_name(session, run.dataset_id))


def _flush_or_gone(session: Session, run_id: int) -> None:
    """Flush a change to a run that a concurrent DELETE may have removed meanwhile."""
    try:
        session.flush()
    except StaleDataError:
        raise NotFound(f"no run with id {run_id}: it was deleted meanwhile") from None


def latest_checkpoint(session: Session, run_id: int) -> CheckpointRef | None:
    row = session.execute(
        select(Checkpoint.epoch, Checkpoint.path, Checkpoint.sha256)
        .where(Checkpoint.run_id == run_id)
        .order_by(Checkpoint.epoch.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else CheckpointRef(run_id, row.epoch, row.path, row.sha256)


# (epoch, loss, val_loss) of one history row.
LossRow = tuple[int, float, float | None]


def last_losses(session: Session, run_id: int, at_most: int | None = None) -> LossRow | None:
    """The run's latest history row, or its latest at or before epoch `at_most`."""
    query = select(RunHistory.epoch, RunHistory.loss, RunHistory.val_loss).where(
        RunHistory.run_id == run_id
    )
    if at_most is not None:
        query = query.where(RunHistory.epoch <= at_most)
    row = session.execute(query.order_by(RunHistory.epoch.desc()).limit(1)).one_or_none()
    return None if row is None else (row.epoch, row.loss, row.val_loss)


def resume_run(
    session: Session, run_id: int, epochs: int, publish: Publish | None = None
) -> RunPublic:
    """Queue an ended run to continue from its last checkpoint for `epochs` more; a run that
    ended before its first checkpoint (cancelled while queued) starts from the beginning."""
    run = find_run(session, run_id)
    if not run.status.ended:
        raise Conflict(f"run {run_id} is {run.status}; only an ended run can be resumed")
    latest = latest_checkpoint(session, run_id)
    start = latest.epoch if latest is not None else 0
    run.epochs = start + epochs
    run.status = RunStatus.QUEUED
    run.cancel_requested = False
    run.restarts = 0  # a resume is asked for: the restarts of before are not held against it
    run.error = None
    run.final_loss = None
    run.accuracy = None
    run.finished_at = None
    _flush_or_gone(session, run_id)
    _publish_after_commit(session, run, publish)
    return _public(run, dataset_name(session, run.dataset_id))


def delete_run(session: Session, run_id: int, models_store: Path) -> None:
    """Remove the run and its history, then, once that has committed, its files. A worker still
    on it stops at its next report, since its guarded writes no longer match a row."""
    find_run(session, run_id)
    session.execute(delete(RunHistory).where(RunHistory.run_id == run_id))
    session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id))
    session.execute(delete(Run).where(Run.id == run_id))
    after_commit(session, lambda: remove_run_folder(models_store / run_folder_name(run_id)))


def run_log(session: Session, run_id: int) -> str:
    """The tutorial's output: `Epoch n, Loss: x` every log_every epochs and at the last."""
    run = find_run(session, run_id)
    rows = session.execute(
        select(RunHistory.epoch, RunHistory.loss)
        .where(RunHistory.run_id == run_id)
        .where((RunHistory.epoch % run.log_every == 0) | (RunHistory.epoch == run.epochs - 1))
        .order_by(RunHistory.epoch)
    ).all()
    return "".join(f"Epoch {epoch}, Loss: {loss!r}\n" for epoch, loss in rows)


def list_checkpoints(session: Session, run_id: int) -> list[CheckpointPublic]:
    find_run(session, run_id)
    rows = session.scalars(
        select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.epoch)
    ).all()
    return [
        CheckpointPublic(
            epoch=c.epoch, sha256=c.sha256, size_bytes=c.size_bytes, created_at=c.created_at
        )
        for c in rows
    ]


def describe_epochs(epochs: Sequence[int]) -> str:
    """Every epoch, shortly: '22 epochs: 0 to 20000 every 1000, 20001'."""
    if not epochs:
        return "none yet"
    if len(epochs) <= 12:
        return ", ".join(map(str, epochs))
    parts = []
    first = 0
    while first < len(epochs):
        last = first + 1
        step = epochs[last] - epochs[first] if last < len(epochs) else 0
        while last + 1 < len(epochs) and epochs[last + 1] - epochs[last] == step:
            last += 1
        if last - first >= 2:  # three or more evenly spaced
            parts.append(f"{epochs[first]} to {epochs[last]} every {step}")
            first = last + 1
        else:
            parts.append(str(epochs[first]))
            first += 1
    return f"{len(epochs)} epochs: {', '.join(parts)}"


def checkpoint_refs(session: Session, run_id: int) -> list[CheckpointRef]:
    """The run's checkpoints, oldest first."""
    rows = session.execute(
        select(Checkpoint.epoch, Checkpoint.path, Checkpoint.sha256)
        .where(Checkpoint.run_id == run_id)
        .order_by(Checkpoint.epoch)
    ).all()
    return [CheckpointRef(run_id, row.epoch, row.path, row.sha256) for row in rows]


def find_checkpoint(session: Session, run_id: int, epoch: int | None) -> CheckpointRef:
    """The checkpoint at `epoch`, or the latest one: 404 for an epoch with none, 409 if the
    run has none yet."""
    # Columns, not ORM objects, and the run looked up only when no checkpoint is found: this
    # query is on the path of every prediction.
    if epoch is None:
        latest = latest_checkpoint(session, run_id)
        if latest is None:
            find_run(session, run_id)
            raise Conflict(f"run {run_id} has no checkpoint yet; try again once it has trained")
        return latest
    row = session.execute(
        select(Checkpoint.path, Checkpoint.sha256).where(
            Checkpoint.run_id == run_id, Checkpoint.epoch == epoch
        )
    ).one_or_none()
    if row is None:
        find_run(session, run_id)
        epochs = [ref.epoch for ref in checkpoint_refs(session, run_id)]
        raise NotFound(
            f"run {run_id} has no checkpoint at epoch {epoch}; its checkpoints: "
            f"{describe_epochs(epochs)}"
        )
    return CheckpointRef(run_id, epoch, row.path, row.sha256)


def checkpoint_bytes(session: Session, run_id: int, epoch: int, models_store: Path) -> bytes:
    """One checkpoint file, found through the database and checked against its sha256."""
    ref = find_checkpoint(session, run_id, epoch)
    try:
        return read_checkpoint_bytes(models_store, ref.path, ref.sha256)
    except CheckpointError as exc:
        raise Conflict(str(exc)) from None


def queue_depth(session: Session) -> dict[str, int]:
    counts = dict(
        session.execute(
            select(Run.status, func.count())
            .where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
            .group_by(Run.status)
        ).all()
    )
    return {status: counts.get(status, 0) for status in (RunStatus.QUEUED, RunStatus.RUNNING)}
