"""Training runs, their per-epoch loss history, and their checkpoint files."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, NameColumn, UTCDateTime, utcnow
from app.vocabulary import (
    Activation,
    Architecture,
    FailureReason,
    LossFunction,
    Optimizer,
    RunStatus,
    sql_values,
)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN {sql_values(RunStatus)}", name="status"),
        CheckConstraint("epochs > 0", name="epochs_positive"),
        CheckConstraint("epoch >= 0", name="epoch_not_negative"),
        CheckConstraint(f"failure_reason IN {sql_values(FailureReason)}", name="failure_reason"),
        CheckConstraint(f"loss_function IN {sql_values(LossFunction)}", name="loss_function"),
        Index("ix_runs_status_id", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[RunStatus] = mapped_column(NameColumn(RunStatus), default=RunStatus.QUEUED)
    # The configuration, as asked for (with the drawn seed filled in).
    architecture: Mapped[Architecture] = mapped_column(NameColumn(Architecture))
    hidden_layers: Mapped[list[int]] = mapped_column(JSON)
    activation: Mapped[Activation] = mapped_column(NameColumn(Activation))
    parameter_count: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)  # total optimizer steps the run aims for
    requested_epochs: Mapped[int] = mapped_column(Integer)  # as created; a resume raises epochs
    learning_rate: Mapped[float] = mapped_column(Float)
    optimizer: Mapped[Optimizer] = mapped_column(NameColumn(Optimizer))
    momentum: Mapped[float] = mapped_column(Float, default=0.0)
    loss_function: Mapped[LossFunction] = mapped_column(
        NameColumn(LossFunction), default=LossFunction.BCE, server_default=LossFunction.BCE.value
    )
    batch_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(16))
    validation_split: Mapped[float] = mapped_column(Float, default=0.0)
    checkpoint_every: Mapped[int] = mapped_column(Integer)
    log_every: Mapped[int] = mapped_column(Integer)
    # Progress and outcome.
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # epochs (steps) done
    device_used: Mapped[str | None] = mapped_column(String(32), nullable=True)
    loss: Mapped[float | None] = mapped_column(Float, nullable=True)  # latest recorded loss
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    final_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_reason: Mapped[FailureReason | None] = mapped_column(
        NameColumn(FailureReason), nullable=True
    )
    # Coordination between the API, the runner and the workers, all through this row.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    # Raised by every claim: a worker's writes name the claim they hold, so one that lost the
    # run (paused past the heartbeat timeout, then woken) changes nothing of its new owner's.
    claim: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When a queued run's wake-up message last went to the broker (PC_RUNNER=celery).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The sweep that made it, and the values the sweep's grid gave it ({"learning_rate": 0.1}).
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id"), nullable=True, index=True)
    sweep_values: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RunHistory(Base):
    """The loss of one epoch: the full-data loss before that epoch's updates, as the tutorial."""

    __tablename__ = "run_history"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    loss: Mapped[float] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("run_id", "epoch", name="uq_checkpoints_run_id_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)  # epochs done when it was written
    # Relative to the models store; always built by the server from the run id and epoch.
    path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
