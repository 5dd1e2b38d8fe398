"""A process that trains runs, as it last said: written by both runners' workers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, NameColumn, UTCDateTime
from app.vocabulary import RunnerKind, sql_values


class Worker(Base):
    __tablename__ = "workers"
    __table_args__ = (CheckConstraint(f"runner IN {sql_values(RunnerKind)}", name="runner"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # host:pid, as runs record it
    runner: Mapped[RunnerKind] = mapped_column(NameColumn(RunnerKind))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON)  # the Celery queues it takes runs from
    device: Mapped[str] = mapped_column(String(32))  # where it trains: cpu, or its GPU's name
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # training now
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
