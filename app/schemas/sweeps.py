"""Request and response bodies for sweeps: a grid over run parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.datasets import NAME_MAX_CHARS, NAME_RULE, Name
from app.schemas.runs import MlpRunCreate
from app.vocabulary import RunStatus, Verdict

# The tutorial's exercise on curve: how fast, how deep, how wide, with or without activations.
SWEEP_EXAMPLES: dict[str, Any] = {
    "exercise": {
        "summary": "The tutorial's exercise: learning rate, depth, width, activation (16 runs)",
        "value": {
            "dataset": "curve",
            "base": {"architecture": "mlp", "epochs": 3000, "seed": 1},
            "grid": {
                "learning_rate": [0.003, 0.03],
                "hidden_layers": [[8], [64, 64]],
                "activation": ["relu", "tanh", "sigmoid", "none"],
            },
            "name": "exercise",
        },
    },
}


# What a sweep may set and vary: every run parameter but the dataset, which it names once.
GRID_KEYS = tuple(name for name in MlpRunCreate.model_fields if name != "dataset")
RunParameter = Literal[GRID_KEYS]  # type: ignore[valid-type]


class SweepCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        default="curve", min_length=1, max_length=NAME_MAX_CHARS, description="id or name"
    )
    base: dict[RunParameter, Any] = Field(
        default_factory=dict,
        description="run parameters every run shares (POST /runs' body, without dataset); "
        "the tutorial's defaults where absent",
    )
    grid: dict[RunParameter, list[Any]] = Field(
        min_length=1,
        description="run parameter -> the values to try; every combination becomes a run",
    )
    name: Name | None = Field(default=None, description=NAME_RULE)


class SweepRunPublic(BaseModel):
    id: int
    values: dict[str, Any] = Field(description="what the grid gave this run")
    status: RunStatus
    epoch: int
    epochs: int
    final_loss: float | None
    best_loss: float | None = Field(description="the lowest training loss of its history")
    val_loss: float | None
    accuracy: float | None
    duration_s: float | None = Field(description="started to finished (or to now)")
    verdict: Verdict | None = Field(description="once it has ended")
    verdict_number: float | None = Field(description="the number that decided the verdict")
    verdict_reason: str | None


class SweepPublic(BaseModel):
    id: int
    name: str | None
    dataset: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    created_at: datetime
    counts: dict[RunStatus, int] = Field(description="its runs by status")
    runs: list[SweepRunPublic] = Field(description="in the grid's order")


class SweepSummary(BaseModel):
    id: int
    name: str | None
    dataset: str
    grid: dict[str, list[Any]]
    created_at: datetime
    counts: dict[RunStatus, int]


class SweepsPublic(BaseModel):
    data: list[SweepSummary]
    count: int
