"""Training runs: start, list, follow, cancel, resume, delete, log, checkpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from app.api.deps import PublishDep, SessionDep, SettingsDep
from app.api.params import DEFAULT_PAGE_SIZE, PageLimit, PageOffset, RunId
from app.api.responses import errors
from app.schemas.datasets import NAME_MAX_CHARS
from app.schemas.runs import (
    DEVICE_ERROR,
    RESUME_EXAMPLES,
    RUN_EXAMPLES,
    CheckpointPublic,
    RunCreate,
    RunPublic,
    RunResume,
    RunsPublic,
)
from app.services import runs as service
from app.vocabulary import MAX_ID, Architecture, RunnerKind, RunStatus

router = APIRouter(prefix="/runs", tags=["runs"])


@router.post(
    "",
    summary="Start a training run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunPublic,
    responses=errors(
        404,
        422,
        examples={404: "dataset: no dataset with id or name 'spirals'", 422: DEVICE_ERROR},
    ),
)
def create_run(
    body: Annotated[RunCreate, Body(openapi_examples=RUN_EXAMPLES)],
    session: SessionDep,
    settings: SettingsDep,
    publish: PublishDep,
    response: Response,
) -> RunPublic:
    """Queue a training run; it trains in the background. Defaults are the tutorial's: the
    first example is its network on `curve` (about 15 seconds here), ready to execute."""
    run = service.create_run(
        session,
        body,
        settings.max_store_bytes,
        publish,
        devices_here=settings.runner == RunnerKind.EMBEDDED,
    )
    response.headers["Location"] = f"/runs/{run.id}"
    return run


@router.get("", summary="List runs", response_model=RunsPublic, responses=errors(404))
def list_runs(
    session: SessionDep,
    status: RunStatus | None = None,
    dataset: Annotated[
        str | None, Query(max_length=NAME_MAX_CHARS, description="id or name")
    ] = None,
    architecture: Architecture | None = None,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    offset: PageOffset = 0,
) -> RunsPublic:
    """List runs, newest first, filtered by status, dataset or architecture."""
    data, count = service.list_runs(
        session,
        status=status,
        dataset=dataset,
        architecture=architecture,
        limit=limit,
        offset=offset,
    )
    return RunsPublic(data=data, count=count)


@router.get("/{run_id}", summary="Read a run", response_model=RunPublic, responses=errors(404))
def get_run(run_id: RunId, session: SessionDep) -> RunPublic:
    """One run: its configuration, progress and outcome."""
    return service.get_run(session, run_id)


@router.post(
    "/{run_id}/cancel",
    summary="Cancel a run",
    response_model=RunPublic,
    responses=errors(
        404, 409, examples={409: "run 1 has already ended (succeeded); nothing to cancel"}
    ),
)
def cancel_run(run_id: RunId, session: SessionDep) -> RunPublic:
    """Stop a queued or running run within about a second; 409 once it has ended. A running
    run answers with `cancel_requested: true` and becomes `cancelled` at its next report."""
    return service.cancel_run(session, run_id)


@router.post(
    "/{run_id}/resume",
    summary="Resume an ended run for more epochs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunPublic,
    responses=errors(
        404, 409, 422, examples={409: "run 1 is running; only an ended run can be resumed"}
    ),
)
def resume_run(
    run_id: RunId,
    body: Annotated[RunResume, Body(openapi_examples=RESUME_EXAMPLES)],
    session: SessionDep,
    publish: PublishDep,
    response: Response,
) -> RunPublic:
    """Continue an ended run from its last checkpoint for `epochs` more: a run cancelled at
    epoch 5000 and resumed with 5000 trains to 10000 (its new `epochs`); `requested_epochs`
    keeps what it was created with."""
    run = service.resume_run(session, run_id, body.epochs, publish)
    response.headers["Location"] = f"/runs/{run.id}"
    return run


@router.delete(
    "/{run_id}",
    summary="Delete a run and its files",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(404),
)
def delete_run(run_id: RunId, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete a run, its history and its checkpoint files (a running run is stopped)."""
    service.delete_run(session, run_id, settings.models_store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{run_id}/log",
    summary="The tutorial's log lines",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "the tutorial's lines"},
        **errors(404),
    },
)
def get_log(run_id: RunId, session: SessionDep) -> Response:
    """The tutorial's output: `Epoch n, Loss: x` every log_every epochs and at the last."""
    return Response(service.run_log(session, run_id), media_type="text/plain")


@router.get(
    "/{run_id}/checkpoints",
    summary="List a run's checkpoints",
    response_model=list[CheckpointPublic],
    responses=errors(404),
)
def list_checkpoints(run_id: RunId, session: SessionDep) -> list[CheckpointPublic]:
    """The run's checkpoints, oldest first."""
    return service.list_checkpoints(session, run_id)


@router.get(
    "/{run_id}/checkpoints/{epoch}",
    summary="Download a checkpoint",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "a torch checkpoint"},
        **errors(
            404,
            409,
            examples={
                404: "run 1 has no checkpoint at epoch 1500; its checkpoints: 22 epochs: "
                "0 to 20000 every 1000, 20001"
            },
        ),
    },
)
def download_checkpoint(
    run_id: RunId,
    epoch: Annotated[int, Path(ge=0, le=MAX_ID)],
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Download one checkpoint (load it with `torch.load(..., weights_only=True)`)."""
    data = service.checkpoint_bytes(session, run_id, epoch, settings.models_store)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-epoch-{epoch}.pt"'},
    )
