"""Predictions from a trained run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from app.api.body_limit import PREDICT_BYTES, PREDICT_LIMIT_SOURCE, too_large
from app.api.deps import CachesDep, SessionDep, SettingsDep
from app.api.errors import ShortValidationError
from app.api.predict_body import LargeBodyValidator, PredictInput
from app.api.responses import errors
from app.schemas.results import PredictPublic
from app.services import results as service

router = APIRouter(tags=["results"])


async def predict_body(request: Request) -> PredictInput:
    """The body, validated off the event loop (`app/api/predict_body.py`)."""
    validator: LargeBodyValidator = request.app.state.predict_validator
    parsed = await run_in_threadpool(validator.parse, await request.body())
    if isinstance(parsed, list):
        raise ShortValidationError(parsed)
    return parsed


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
            413: too_large(PREDICT_BYTES, PREDICT_LIMIT_SOURCE),
        },
    ),
    openapi_extra=PREDICT_BODY,
)
def predict(
    body: Annotated[PredictInput, Depends(predict_body)],
    session: SessionDep,
    settings: SettingsDep,
    caches: CachesDep,
) -> PredictPublic:
    """P(label 1) and the label for each point, from the run's latest checkpoint (or `epoch`)."""
    return service.predict(session, caches, settings.models_store, body.run_id, body.xy, body.epoch)
