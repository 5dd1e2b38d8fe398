"""Liveness and what the service can use: database, CUDA devices, queue."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from app.core.db import writes_blocked
from app.core.migrate import current_revision
from app.ml.devices import cuda_device_names
from app.schemas.health import CudaPublic, HealthPublic, WorkersPublic
from app.services.runs import queue_depth

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service health", response_model=HealthPublic)
def health(request: Request) -> HealthPublic:
    """Status, database reachability, CUDA availability and device count, queue depth."""
    engine = request.app.state.engine
    database, revision = "ok", None
    queue: dict[str, int] = {}
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(engine)
        with request.app.state.session_factory() as session:
            queue = queue_depth(session)
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}"
    blocked = writes_blocked(engine) if database == "ok" else None
    names = cuda_device_names()
    runner = request.app.state.runner
    workers = None
    if runner is not None:
        settings = request.app.state.settings
        workers = WorkersPublic(configured=settings.worker_count, ready=runner.ready_count())
    return HealthPublic(
        status="ok" if database == "ok" and blocked is None else "degraded",
        database=database,
        database_writes=blocked or ("ok" if database == "ok" else "unknown"),
        database_revision=revision,
        cuda=CudaPublic(available=bool(names), device_count=len(names), devices=names),
        queue=queue,
        workers=workers,
    )
