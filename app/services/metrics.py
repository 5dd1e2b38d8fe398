"""What /metrics reports about runs and workers, read from the database at scrape time: every
API replica reports the same numbers, whichever runner and workers trained the runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.db import database_now
from app.models import Run, Worker
from app.vocabulary import FailureReason, RunStatus


@dataclass
class RunsSnapshot:
    by_status: dict[RunStatus, int]
    oldest_queued_age_s: float  # 0 when nothing waits
    live_workers: int
    epochs_trained: int  # epochs done, summed over every run there is
    # Started to finished, in seconds, of every ended run that started, by how it ended.
    durations: dict[RunStatus, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # failed runs by reason


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def runs_snapshot(session: Session, heartbeat_timeout_s: float) -> RunsSnapshot:
    now = database_now(session)
    counts = dict(session.execute(select(Run.status, func.count()).group_by(Run.status)).all())
    oldest = session.scalar(select(func.min(Run.created_at)).where(Run.status == RunStatus.QUEUED))
    live = session.scalar(
        select(func.count())
        .select_from(Worker)
        .where(Worker.heartbeat_at >= now - timedelta(seconds=heartbeat_timeout_s))
    )
    epochs = session.scalar(select(func.coalesce(func.sum(Run.epoch), 0)))
    durations: dict[RunStatus, list[float]] = {status: [] for status in RunStatus if status.ended}
    ended = select(Run.status, Run.started_at, Run.finished_at).where(
        Run.status.in_(list(durations)),
        Run.started_at.is_not(None),
        Run.finished_at.is_not(None),
    )
    for status, started, finished in session.execute(ended):
        if started is not None and finished is not None:  # as the query asked; for mypy
            durations[status].append(_seconds(started, finished))
    reasons = dict(
        session.execute(
            select(Run.failure_reason, func.count())
            .where(Run.status == RunStatus.FAILED)
            .group_by(Run.failure_reason)
        ).all()
    )
    failures = {reason.value: reasons.get(reason, 0) for reason in FailureReason}
    failures["unrecorded"] = reasons.get(None, 0)  # failed before reasons were recorded
    return RunsSnapshot(
        by_status={status: counts.get(status, 0) for status in RunStatus},
        oldest_queued_age_s=_seconds(oldest, now) if oldest is not None else 0.0,
        live_workers=live or 0,
        epochs_trained=int(epochs or 0),
        durations=durations,
        failures=failures,
    )
