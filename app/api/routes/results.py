"""What a run learned: loss history, pictures, and live progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.api.deps import CachesDep, SessionDep, SettingsDep
from app.api.params import CheckpointEpoch, RunId
from app.api.responses import PNG_RESPONSE, errors
from app.core.errors import NotFound
from app.ml.plots import (
    BOUNDARY_PICTURE,
    GIF_FRAME,
    LOSS_PICTURE,
    MAX_GIF_SIDE,
    MAX_SIDE,
    MIN_SIDE,
    TUTORIAL_PICTURE,
    PictureSize,
)
from app.schemas.results import (
    MAX_FIELD_RESOLUTION,
    MIN_FIELD_RESOLUTION,
    FieldPublic,
    HistoryPublic,
    RunEventPublic,
)
from app.services import results as service

router = APIRouter(prefix="/runs", tags=["results"])

Width = Annotated[int | None, Query(ge=MIN_SIDE, le=MAX_SIDE, description="pixels")]
Height = Annotated[int | None, Query(ge=MIN_SIDE, le=MAX_SIDE, description="pixels")]
Dpi = Annotated[int, Query(ge=50, le=300)]
GifWidth = Annotated[int | None, Query(ge=MIN_SIDE, le=MAX_GIF_SIDE, description="pixels")]
GifHeight = Annotated[int | None, Query(ge=MIN_SIDE, le=MAX_GIF_SIDE, description="pixels")]
# How often the event stream looks at the run.
EVENT_POLL_S = 0.5


def _size(width: int | None, height: int | None, dpi: int, default: PictureSize) -> PictureSize:
    return PictureSize(width or default.width, height or default.height, dpi)


@router.get(
    "/{run_id}/history",
    summary="Loss per epoch",
    response_model=HistoryPublic,
    response_model_exclude_unset=True,  # no val_loss key for a run without a validation split
    responses={200: {"content": {"text/csv": {}}}, **errors(404)},
)
def get_history(
    run_id: RunId,
    session: SessionDep,
    every: Annotated[
        int, Query(ge=1, le=1_000_000, description="keep epoch 0, every N-th and the last")
    ] = 1,
    max_points: Annotated[
        int | None,
        Query(
            ge=2,
            le=1_000_000,
            description="at most about this many: the epochs in buckets (`every` wide at "
            "least), each bucket's lowest and highest loss kept, so spikes survive",
        ),
    ] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> HistoryPublic | Response:
    """Loss per epoch as columnar JSON (or CSV); works while the run trains."""
    history = service.read_history(session, run_id, every, max_points)
    if format == "csv":
        return Response(service.history_csv(history), media_type="text/csv")
    return history


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
    size = _size(width, height, dpi, LOSS_PICTURE)
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
    epoch: CheckpointEpoch = None,
    style: Annotated[Literal["field", "tutorial"], Query()] = "field",
    width: Width = None,
    height: Height = None,
    dpi: Dpi = 100,
) -> Response:
    """The decision boundary: probability field, 0.5 contour, points, mistakes marked.
    `style=tutorial` draws the tutorial's 1000 random points coloured by predicted class."""
    default = TUTORIAL_PICTURE if style == "tutorial" else BOUNDARY_PICTURE
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
    "/{run_id}/field",
    summary="The probability field as numbers",
    response_model=FieldPublic,
    responses=errors(404, 409),
)
def get_field(
    run_id: RunId,
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
    epoch: CheckpointEpoch = None,
    resolution: Annotated[
        int, Query(ge=MIN_FIELD_RESOLUTION, le=MAX_FIELD_RESOLUTION, description="points a side")
    ] = 100,
) -> FieldPublic:
    """P(label 1) on a grid over the data's region at a checkpoint: what `boundary.png`
    shades, without the picture, fast enough to scrub through checkpoints in a browser."""
    return service.probability_field(
        session, caches, settings.models_store, run_id, epoch=epoch, resolution=resolution
    )


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
    size = _size(width, height, dpi, GIF_FRAME)
    gif = service.boundary_gif(session, caches, settings.models_store, run_id, size)
    return Response(gif, media_type="image/gif")


async def _first_snapshot(run_id: RunId, request: Request) -> RunEventPublic:
    """The run as the stream starts: a 404 before the stream if there is no such run."""
    snapshot = await run_in_threadpool(service.run_event, request.app.state.session_factory, run_id)
    if snapshot is None:
        raise NotFound(f"no run with id {run_id}")
    return snapshot


@router.get(
    "/{run_id}/events",
    summary="Live progress (server-sent events)",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "server-sent events"},
        **errors(404),
    },
)
async def get_events(
    run_id: RunId,
    request: Request,
    first: Annotated[RunEventPublic, Depends(_first_snapshot)],
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: `status` on every change, `progress` twice a second until the run
    ends, and then the stream ends. Try `curl -N`."""
    snapshot: RunEventPublic | None = first
    last_status = None
    while snapshot is not None:
        if snapshot.status != last_status:
            yield ServerSentEvent(event="status", data=snapshot)
            last_status = snapshot.status
        if snapshot.ended:
            return
        # While queued too, so a client sees the stream is alive.
        yield ServerSentEvent(event="progress", data=snapshot)
        await asyncio.sleep(EVENT_POLL_S)
        if await request.is_disconnected():
            return
        snapshot = await run_in_threadpool(
            service.run_event, request.app.state.session_factory, run_id
        )
    yield ServerSentEvent(event="status", data={"run_id": run_id, "status": "deleted"})
