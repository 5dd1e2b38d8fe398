"""Sweeps: the tutorial's exercise as one request, a grid of runs read back with verdicts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response, status

from app.api.deps import CachesDep, PublishDep, SessionDep, SettingsDep
from app.api.params import DEFAULT_PAGE_SIZE, PageLimit, PageOffset, SweepId
from app.api.responses import PNG_RESPONSE, errors
from app.schemas.sweeps import (
    SWEEP_EXAMPLES,
    RunParameter,
    SweepCreate,
    SweepPublic,
    SweepsPublic,
)
from app.services import sweeps as service
from app.vocabulary import MAX_ID, RunnerKind

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


@router.post(
    "",
    summary="Start a sweep: one run per combination of the grid",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SweepPublic,
    responses=errors(
        404,
        422,
        examples={422: "grid: it makes 96 runs (4 x 4 x 6); a sweep may make at most 64"},
    ),
)
def create_sweep(
    body: Annotated[SweepCreate, Body(openapi_examples=SWEEP_EXAMPLES)],
    session: SessionDep,
    settings: SettingsDep,
    publish: PublishDep,
    response: Response,
) -> SweepPublic:
    """Every combination of `grid`'s values over `base` becomes an ordinary run (pictures,
    predict, cancel, resume all work), queued now; at most PC_MAX_SWEEP_RUNS of them."""
    sweep = service.create_sweep(
        session,
        body,
        max_runs=settings.max_sweep_runs,
        max_store_bytes=settings.max_store_bytes,
        publish=publish,
        devices_here=settings.runner == RunnerKind.EMBEDDED,
    )
    response.headers["Location"] = f"/sweeps/{sweep.id}"
    return sweep


@router.get("", summary="List sweeps", response_model=SweepsPublic)
def list_sweeps(
    session: SessionDep,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    offset: PageOffset = 0,
) -> SweepsPublic:
    """Sweeps, newest first, with their runs counted by status."""
    return service.list_sweeps(session, limit=limit, offset=offset)


@router.get(
    "/{sweep_id}",
    summary="Read a sweep: its runs, their values and verdicts",
    response_model=SweepPublic,
    responses={200: {"content": {"text/csv": {}}}, **errors(404)},
)
def get_sweep(
    sweep_id: SweepId,
    session: SessionDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> SweepPublic | Response:
    """Each run with the values its grid gave it, its status, losses, accuracy, duration and,
    once it has ended, a verdict (learned, underfit, stuck, diverged, overfit) with the number
    that decided it."""
    sweep = service.get_sweep(session, sweep_id)
    if format == "csv":
        return Response(service.sweep_csv(sweep), media_type="text/csv")
    return sweep


@router.get(
    "/{sweep_id}/boundaries.png",
    summary="Picture: every run's decision boundary, side by side",
    response_class=Response,
    responses={**PNG_RESPONSE, **errors(404, 422)},
)
def get_boundaries_png(
    sweep_id: SweepId,
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
    rows: Annotated[RunParameter | None, Query(description="one of the grid's axes, down")] = None,
    cols: Annotated[
        RunParameter | None, Query(description="one of the grid's axes, across")
    ] = None,
    epoch: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="each run's checkpoint at or before it")
    ] = None,
) -> Response:
    """Small multiples: `cols`' values across, `rows'` down (by default the grid's axes with
    the most values, the most across; any other axis varies down within each row's value),
    each panel titled with the run's values, loss and verdict; a run with no checkpoint yet
    is an empty panel that says so."""
    png = service.boundaries_png(
        session, caches, settings.models_store, sweep_id, rows=rows, cols=cols, epoch=epoch
    )
    return Response(png, media_type="image/png")


@router.get(
    "/{sweep_id}/losses.png",
    summary="Picture: every run's loss curve, overlaid",
    response_class=Response,
    responses={**PNG_RESPONSE, **errors(404, 422)},
)
def get_losses_png(
    sweep_id: SweepId,
    session: SessionDep,
    caches: CachesDep,
    colour_by: Annotated[
        RunParameter | None, Query(description="one of the grid's axes (the first by default)")
    ] = None,
    log: Annotated[bool, Query(description="log-scale loss axis")] = True,
) -> Response:
    """The runs' loss curves on one plot, one colour per value of `colour_by`."""
    png = service.losses_png(session, caches, sweep_id, colour_by=colour_by, log_scale=log)
    return Response(png, media_type="image/png")


@router.post(
    "/{sweep_id}/cancel",
    summary="Cancel a sweep's queued and running runs",
    response_model=SweepPublic,
    responses=errors(404),
)
def cancel_sweep(sweep_id: SweepId, session: SessionDep) -> SweepPublic:
    """Queued runs are cancelled at once, running ones within about a second."""
    return service.cancel_sweep(session, sweep_id)


@router.delete(
    "/{sweep_id}",
    summary="Delete a sweep and its runs",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(404),
)
def delete_sweep(sweep_id: SweepId, session: SessionDep, settings: SettingsDep) -> Response:
    """The sweep, its runs, their histories and checkpoint files."""
    service.delete_sweep(session, sweep_id, settings.models_store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
