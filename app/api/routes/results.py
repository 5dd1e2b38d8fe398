"""What a run learned: loss history, pictures, and live progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.api.deps import CachesDep, SessionDep, SettingsDep
from app.api.responses import PNG_RESPONSE, errors
from app.api.routes.runs import RunId
from app.core.db import session_scope
from app.core.errors import NotFound
from app.models import RunStatus
from app.schemas.results import HistoryPublic, RunEventPublic
from app.services import results as service
from app.services import runs as runs_service
from app.services.plots import TUTORIAL_PICTURE, PictureSize

router = APIRouter(prefix="/runs", tags=["results"])

Width = Annotated[int | None, Query(ge=200, le=3000, description="pixels")]
Height = Annotated[int | None, Query(ge=200, le=3000, description="pixels")]
Dpi = Annotated[int, Query(ge=50, le=300)]
# An animation holds up to MAX_GIF_FRAMES frames: smaller sides than a single picture's.
GifWidth = Annotated[int | None, Query(ge=200, le=1000, description="pixels")]
GifHeight = Annotated[int | None, Query(ge=200, le=1000, description="pixels")]
# How often the event stream looks at the run.
EVENT_POLL_S = 0.5


def _size(width: int | None, height: int | None, dpi: int, default: PictureSize) -> PictureSize:
    return PictureSize(width or default.width, height or default.height, dpi)


@router.get(
    "/{run_id}/history",
    summary="Loss per epoch",
    response_model=HistoryPublic,
    responses={200: {"content": {"text/csv": {}}}, **errors(404)},
)
def get_history(
    run_id: RunId,
    session: SessionDep,
    every: Annotated[
        int, Query(ge=1, le=1_000_000, description="keep epoch 0, every N-th and the last")
    ] = 1,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """Loss per epoch as columnar JSON (or CSV); works while the run trains."""
    history = service.read_history(session, run_id, every)
    if format == "csv":
        return Response(service.history_csv(history), media_type="text/csv")
    body: dict[str, list[int] | list[float] | list[float | None]] = {
        "epoch": history.epoch,
        "loss": history.loss,
    }
    if history.val_loss is not None:
        body["val_loss"] = history.val_loss
    return Response(json.dumps(body), media_type="application/json")


@router.get(
    "/{run_id}/loss.png",
    summary="Picture: the loss curve",
    response_class=Response,
    responses={**PNG_RESPONSE, **errors(404, 409)},
)
def get_loss_png(
    run_id: RunId,
    session: SessionDep,
    caches: CachesDep,
    log: Annotated[bool, Query(description="log-scale loss axis")] = False,
    width: Width = None,
    height: Height = None,
    dpi: Dpi = 100,
) -> Response:
    """The loss curve, titled with the architecture, the dataset and the final loss."""
    size = _size(width, height, dpi, PictureSize(800, 500))
    return Response(
        service.loss_png(session, caches, run_id, log_scale=log, size=size), media_type="image/png"
    )


@router.get(
    "/{run_id}/boundary.png",
    summary="Picture: the decision boundary",
    response_class=Response,
    responses={**PNG_RESPONSE, **errors(404, 409)},
)
def get_boundary_png(
    run_id: RunId,
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
    epoch: Annotated[
        int | None, Query(ge=0, le=2**31 - 1, description="a checkpointed epoch")
    ] = None,
    style: Annotated[Literal["field", "tutorial"], Query()] = "field",
    width: Width = None,
    height: Height = None,
    dpi: Dpi = 100,
) -> Response:
    """The decision boundary: probability field, 0.5 contour, points, mistakes marked.
    `style=tutorial` draws the tutorial's 1000 random points coloured by predicted class."""
    default = TUTORIAL_PICTURE if style == "tutorial" else PictureSize()
    png = service.boundary_png(
        session,
        caches,
        settings.models_store,
        run_id,
        epoch=epoch,
        style=style,
        size=_size(width, height, dpi, default),
    )
    return Response(png, media_type="image/png")


@router.get(
    "/{run_id}/boundary.gif",
    summary="Animation: the boundary forming, checkpoint by checkpoint",
    response_class=Response,
    responses={
        200: {"content": {"image/gif": {}}, "description": "an animated GIF"},
        **errors(404, 409),
    },
)
def get_boundary_gif(
    run_id: RunId,
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
    width: GifWidth = None,
    height: GifHeight = None,
    dpi: Dpi = 80,
) -> Response:
    """How the decision boundary evolved, one frame per checkpoint (at most 40, sampled).
    Frames are at most 1000 pixels a side, so one animation's memory is bounded."""
    size = _size(width, height, dpi, PictureSize(560, 480, dpi))
    gif = service.boundary_gif(session, caches, settings.models_store, run_id, size)
    return Response(gif, media_type="image/gif")


def _snapshot(request: Request, run_id: int) -> RunEventPublic | None:
    with session_scope(request.app.state.session_factory) as session:
        try:
            run = runs_service.get_run(session, run_id)
        except NotFound:
            return None
    return RunEventPublic.model_validate({**run.model_dump(), "run_id": run.id})


def _event(name: str, data: RunEventPublic | dict[str, object]) -> str:
    payload = data.model_dump_json() if isinstance(data, RunEventPublic) else json.dumps(data)
    return f"event: {name}\ndata: {payload}\n\n"


@router.get(
    "/{run_id}/events",
    summary="Live progress (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        **errors(404),
    },
)
async def get_events(run_id: RunId, request: Request) -> StreamingResponse:
    """Server-sent events: `status` on every change, `progress` twice a second until the run
    ends, and then the stream ends. Try `curl -N`."""
    first = await run_in_threadpool(_snapshot, request, run_id)
    if first is None:
        raise NotFound(f"no run with id {run_id}")

    async def stream(snapshot: RunEventPublic | None) -> AsyncIterator[str]:
        last_status = None
        while True:
            if snapshot is None:
                yield _event("status", {"run_id": run_id, "status": "deleted"})
                return
            if snapshot.status != last_status:
                yield _event("status", snapshot)
                last_status = snapshot.status
            if RunStatus(snapshot.status).ended:
                return
            # While queued too, so a client sees the stream is alive.
            yield _event("progress", snapshot)
            await asyncio.sleep(EVENT_POLL_S)
            if await request.is_disconnected():
                return
            snapshot = await run_in_threadpool(_snapshot, request, run_id)

    return StreamingResponse(
        stream(first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
