"""Prometheus metrics: what app/api/metrics.py counts and reads, served as text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.auth import bearer, require_api_key
from app.api.deps import SettingsDep
from app.api.metrics import METRICS_PATH, Metrics


async def require_metrics_key(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Like every read: the key when reads need it, unless PC_METRICS_OPEN opens it."""
    if not settings.metrics_open:
        await require_api_key(request, settings, credentials)


router = APIRouter(tags=["health"])


@router.get(
    METRICS_PATH,
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require_metrics_key)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "text format 0.0.4"}},
)
def get_metrics(request: Request) -> Response:
    """Requests by route and status class, runs by status, queue depth and age, live workers,
    training throughput, run durations by outcome and failures by reason."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.text(), media_type=CONTENT_TYPE_LATEST)
