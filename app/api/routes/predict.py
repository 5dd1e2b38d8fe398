"""Predictions from a trained run."""

from __future__ import annotations

import json

import numpy as np
from fastapi import APIRouter, Response

from app.api.deps import CachesDep, SessionDep, SettingsDep
from app.api.responses import errors
from app.schemas.results import PredictPublic, PredictRequest
from app.services import results as service

router = APIRouter(tags=["results"])


@router.post(
    "/predict",
    summary="Predict labels for points",
    response_model=PredictPublic,
    responses=errors(404, 409, 413, 422),
)
def predict(
    body: PredictRequest, session: SessionDep, settings: SettingsDep, caches: CachesDep
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
    return Response(json.dumps(payload), media_type="application/json")
