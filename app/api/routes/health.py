"""Liveness and what the service can use: database, CUDA devices, queue, workers."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.schemas.health import HealthPublic, WorkersPublic
from app.services.health import check_health

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service health", response_model=HealthPublic)
def health(request: Request) -> HealthPublic:
    """Status, database reachability, CUDA availability and device count, queue depth."""
    state = request.app.state
    workers = None
    if state.runner is not None:
        workers = WorkersPublic(
            configured=state.settings.worker_count, ready=state.runner.ready_count()
        )
    return check_health(state.engine, state.session_factory, workers)
