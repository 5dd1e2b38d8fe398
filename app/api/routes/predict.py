"""Predictions from a trained run."""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import CachesDep, SessionDep, SettingsDep
from app.api.responses import errors
from app.core.errors import ShortValidationError, short_errors
from app.schemas.results import PredictPublic, PredictRequest
from app.services import results as service

router = APIRouter(tags=["results"])


# Bodies past this size are checked one at a time: each holds the GIL for most of its fraction
# of a second, and the event loop competes for it with every thread that does so at once.
LARGE_BODY_BYTES = 64 * 1024
LARGE_BODY_SLOTS = threading.BoundedSemaphore(1)


def _validate(raw: bytes) -> PredictRequest:
    try:
        return PredictRequest.model_validate_json(raw)
    except ValidationError as exc:
        # Cut down here, in the thread: the refused input may be 100,000 points, which the
        # event loop should neither encode nor free.
        errors = short_errors(exc.errors(include_url=False))
        raise ShortValidationError(
            [{**error, "loc": ("body", *error.get("loc", ()))} for error in errors]
        ) from None


def _parse(raw: bytes) -> PredictRequest:
    if len(raw) <= LARGE_BODY_BYTES:
        return _validate(raw)
    with LARGE_BODY_SLOTS:
        return _validate(raw)


async def predict_body(request: Request) -> PredictRequest:
    """The body, parsed and validated in the thread pool: 100,000 points take a fraction of a
    second to check, which on the event loop would hold up every other request."""
    return await run_in_threadpool(_parse, await request.body())


PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}
        },
    }
}


@router.post(
    "/predict",
    summary="Predict labels for points",
    response_model=PredictPublic,
    responses=errors(
        404,
        409,
        413,
        422,
        examples={
            404: "no run with id 7",
            413: "request body is larger than the 6404096 bytes accepted here "
            "(100000 points at most)",
        },
    ),
    openapi_extra=PREDICT_BODY,
)
def predict(
    body: Annotated[PredictRequest, Depends(predict_body)],
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
) -> Response:
    """P(label 1) and the label for each point, from the run's latest checkpoint (or `epoch`)."""
    xy = np.asarray(body.points, dtype=np.float64)
    result = service.predict(session, caches, settings.models_store, body.run_id, xy, body.epoch)
    payload = {
        "run_id": body.run_id,
        "epoch": result.epoch,
        "probabilities": result.probabilities,
        "labels": result.labels,
    }
    # allow_nan=False: JSON has no NaN; the service refuses the points that would give one.
    return Response(json.dumps(payload, allow_nan=False), media_type="application/json")
