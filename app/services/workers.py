"""The workers table: each worker process says it is alive, and what it trains, every beat."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.core.db import database_now, database_time_ago
from app.models import Worker
from app.schemas.health import WorkerPublic
from app.vocabulary import RunnerKind


def register_worker(
    session: Session,
    worker_id: str,
    *,
    runner: RunnerKind,
    host: str,
    pid: int,
    queues: list[str],
    device: str,
) -> None:
    now = database_now(session)
    session.execute(delete(Worker).where(Worker.id == worker_id))  # a pid reused by a restart
    session.add(
        Worker(
            id=worker_id,
            runner=runner,
            host=host,
            pid=pid,
            queues=queues,
            device=device,
            started_at=now,
            heartbeat_at=now,
        )
    )
    session.flush()


def worker_beat(session: Session, worker_id: str, run_id: int | None) -> bool:
    """Whether the worker's row was there to update."""
    result = session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(heartbeat_at=database_now(session), run_id=run_id)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def remove_worker(session: Session, worker_id: str) -> None:
    session.execute(delete(Worker).where(Worker.id == worker_id))


def live_workers(session: Session, heartbeat_timeout_s: float) -> list[WorkerPublic]:
    """Workers whose last beat is within the timeout (a worker that stopped beating drops
    out: killed, it could not remove its own row)."""
    alive = Worker.heartbeat_at >= database_time_ago(session, heartbeat_timeout_s)
    rows = session.scalars(select(Worker).where(alive).order_by(Worker.host, Worker.pid)).all()
    return [
        WorkerPublic(
            id=row.id,
            runner=row.runner,
            host=row.host,
            pid=row.pid,
            queues=row.queues,
            device=row.device,
            run_id=row.run_id,
            started_at=row.started_at,
            heartbeat_at=row.heartbeat_at,
        )
        for row in rows
    ]


def idle_workers(session: Session, heartbeat_timeout_s: float, excluding: str) -> int:
    """How many other live workers train nothing now."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Worker)
            .where(
                Worker.heartbeat_at >= database_time_ago(session, heartbeat_timeout_s),
                Worker.run_id.is_(None),
                Worker.id != excluding,
            )
        )
        or 0
    )
