"""Bodies for history, predictions and progress events."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from app.schemas.types import Integer, json_number
from app.vocabulary import MAX_ID, Activation, Architecture, RunStatus

# Most points one POST /predict takes: what sizes its body limit (app/api/body_limit.py). A
# limit of its own, not PC_MAX_POINTS's (a dataset's): a request's work and memory are bounded
# whatever a deployment lets a dataset hold.
MAX_PREDICT_POINTS = 100_000

# The networks compute in float32: a coordinate past its range would reach them as infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)
Coordinate = Annotated[
    float,
    Field(allow_inf_nan=False, ge=-FLOAT32_MAX, le=FLOAT32_MAX),
    Strict(),
]


class HistoryPublic(BaseModel):
    epoch: list[int]
    loss: list[float]
    val_loss: list[float | None] | None = Field(
        default=None, description="present when the run holds out a validation split"
    )


MIN_FIELD_RESOLUTION = 10
MAX_FIELD_RESOLUTION = 300


class FieldPublic(BaseModel):
    """P(label 1) on a square grid over the dataset's bounds and a margin (the region the
    boundary picture shows), for drawing the boundary in a browser."""

    run_id: int
    epoch: int = Field(description="the checkpoint's epoch")
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    resolution: int = Field(description="points a side; the grid's corners are the bounds")
    probabilities: list[float] = Field(
        description="resolution x resolution values, row by row from y_min up, each row from "
        "x_min to x_max, rounded to 5 decimals"
    )


class LayerWeights(BaseModel):
    weight: list[list[float]] = Field(description="[out][in]")
    bias: list[float] = Field(description="[out]")


class ExportPublic(BaseModel):
    """A network as numbers: with h the rows of [x, y], h = activation(h @ W.T + b) after
    every layer but the last; P(label 1) = sigmoid(h @ W.T + b) of the last."""

    run_id: int
    epoch: int = Field(description="the checkpoint's epoch")
    architecture: Architecture
    hidden_layers: list[int]
    dataset: str
    activation: Activation = Field(description="after every layer but the last")
    output: str = Field(description="applied to the last layer's output: sigmoid")
    layers: list[LayerWeights]


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # Run 1 is the first run started (the README's first taste, docs/walkthrough.md and the
        # Swagger UI's POST /runs example); the two points lie on either side of curve's boundary.
        json_schema_extra={
            "examples": [{"run_id": 1, "points": [[0.2, 0.9], [0.8, 0.1]], "epoch": None}]
        },
    )

    run_id: Integer = Field(ge=1, le=MAX_ID)
    points: list[tuple[Coordinate, Coordinate]] = Field(
        min_length=1,
        max_length=MAX_PREDICT_POINTS,
        description=f"[x, y] pairs of finite numbers, 1 to {MAX_PREDICT_POINTS}",
    )
    epoch: Annotated[int, Field(ge=0, le=MAX_ID), BeforeValidator(json_number)] | None = Field(
        default=None, description="a checkpointed epoch; null: the latest"
    )


class PredictPublic(BaseModel):
    run_id: int
    epoch: int = Field(description="the checkpoint's epoch the predictions come from")
    probabilities: list[float] = Field(description="P(label 1) for each point")
    labels: list[int] = Field(description="1 where the probability is over 0.5, else 0")


class RunEventPublic(BaseModel):
    """The data of a `progress` or `status` server-sent event."""

    run_id: int
    status: RunStatus
    epoch: int
    epochs: int
    loss: float | None
    val_loss: float | None
    final_loss: float | None
    accuracy: float | None
    error: str | None

    @property
    def ended(self) -> bool:
        return self.status.ended
