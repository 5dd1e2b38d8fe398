"""Liveness and what the service can use: database, CUDA devices, queue, workers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.deps import SessionDep, SettingsDep
from app.schemas.health import HealthPublic, WorkersList, WorkersPublic
from app.services.health import check_health
from app.services.workers import live_workers
from app.vocabulary import RunnerKind

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service health", response_model=HealthPublic)
def health(request: Request) -> HealthPublic:
    """Status, database reachability, CUDA availability and device count, queue depth."""
    state, settings = request.app.state, request.app.state.settings
    workers = None
    if state.runner is not None and settings.runner == RunnerKind.EMBEDDED:
        workers = WorkersPublic(configured=settings.worker_count, ready=state.runner.ready_count())
    broker = state.runner.broker_status() if state.runner is not None else None
    return check_health(
        state.engine,
        state.session_factory,
        settings.runner,
        workers,
        settings.heartbeat_timeout_s,
        broker,
    )


@router.get("/workers", summary="Live workers", response_model=WorkersList)
def get_workers(session: SessionDep, settings: SettingsDep) -> WorkersList:
    """The worker processes that beat within PC_HEARTBEAT_TIMEOUT_S, of either runner: where
    each runs, its queues and device, and the run it trains now."""
    workers = live_workers(session, settings.heartbeat_timeout_s)
    return WorkersList(data=workers, count=len(workers))
