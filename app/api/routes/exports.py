"""A run's model to take away: ONNX or JSON."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.api.deps import CachesDep, SessionDep, SettingsDep
from app.api.params import CheckpointEpoch, RunId
from app.api.responses import errors
from app.schemas.results import ExportPublic
from app.services import exports as service

router = APIRouter(prefix="/runs", tags=["results"])
ONNX_MEDIA_TYPE = "application/octet-stream"


@router.get(
    "/{run_id}/export",
    summary="Export the model (ONNX or JSON)",
    response_model=ExportPublic,
    responses={
        200: {
            "content": {ONNX_MEDIA_TYPE: {}},
            "description": "format=onnx: an ONNX model; format=json: the weights",
        },
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
def export_model(
    run_id: RunId,
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
    format: Annotated[Literal["onnx", "json"], Query()] = "onnx",
    epoch: CheckpointEpoch = None,
) -> ExportPublic | Response:
    """`format=onnx`: a model mapping `points` (float32 [N, 2]) to `probabilities` (float32
    [N]) for onnxruntime, with the run, epoch, architecture and dataset in its metadata (the
    first export of a checkpoint takes a few seconds; then it is cached). `format=json`: the
    weights, to read or to use from NumPy. `epoch=` picks a checkpoint; the latest otherwise."""
    store = settings.models_store
    if format == "json":
        return service.export_json(session, caches, store, run_id, epoch)
    data, at = service.export_onnx(session, caches, store, run_id, epoch)
    filename = f"run-{run_id}-epoch-{at}.onnx"
    return Response(
        data,
        media_type=ONNX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
