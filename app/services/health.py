"""The health report: what the service can use now (database, CUDA devices, workers)."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import writes_blocked
from app.core.migrate import current_revision
from app.ml.devices import cuda_device_names
from app.schemas.health import CudaPublic, HealthPublic, WorkerPublic, WorkersPublic
from app.services.runs import queue_depth
from app.services.workers import live_workers
from app.vocabulary import RunnerKind


def check_health(
    engine: Engine,
    session_factory: sessionmaker[Session],
    runner: RunnerKind,
    workers: WorkersPublic | None,
    heartbeat_timeout_s: float,
    broker: str | None = None,
) -> HealthPublic:
    database, revision = "ok", None
    queue: dict[str, int] = {}
    live: list[WorkerPublic] = []
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(engine)
        with session_factory() as session:
            queue = queue_depth(session)
            live = live_workers(session, heartbeat_timeout_s)
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}"
    blocked = writes_blocked(engine) if database == "ok" else None
    names = cuda_device_names()
    return HealthPublic(
        status="ok"
        if database == "ok" and blocked is None and broker in (None, "ok", "unknown")
        else "degraded",
        database=database,
        database_writes=blocked or ("ok" if database == "ok" else "unknown"),
        database_revision=revision,
        cuda=CudaPublic(available=bool(names), device_count=len(names), devices=names),
        queue=queue,
        runner=runner,
        broker=broker,
        workers=workers,
        live_workers=live,
    )
