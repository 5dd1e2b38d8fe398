"""Request and response bodies for runs. Defaults are the tutorial's."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.ml.devices import DEVICE_PATTERN

Architecture = Literal["simple", "complex", "mlp"]
Activation = Literal["relu", "tanh", "sigmoid", "gelu", "none"]
Optimizer = Literal["adam", "sgd", "rmsprop"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]

MAX_EPOCHS = 1_000_000
MAX_CHECKPOINTS = 1000


class RunCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"dataset": "curve", "architecture": "complex", "epochs": 20001},
                {
                    "dataset": "curve",
                    "architecture": "mlp",
                    "hidden_layers": [32, 32],
                    "activation": "tanh",
                    "epochs": 5000,
                    "learning_rate": 0.01,
                },
            ]
        },
    )

    dataset: str = Field(
        default="curve", min_length=1, max_length=64, description="dataset id or name"
    )
    architecture: Architecture = Field(
        default="complex",
        description="simple: Linear(2,1); complex: 2-128-128-1 ReLU; mlp: shaped by hidden_layers",
    )
    hidden_layers: list[int] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="mlp only: 1 to 8 widths, each 1 to 1024 (default [64, 64])",
    )
    activation: Activation | None = Field(
        default=None, description="mlp only: after each hidden layer (default relu)"
    )
    epochs: int = Field(
        default=20000,
        ge=1,
        le=MAX_EPOCHS,
        description="optimizer passes over the data; the tutorial's loop is 20001",
    )
    learning_rate: float = Field(default=0.003, gt=0, le=10)
    optimizer: Optimizer = "adam"
    momentum: float = Field(default=0.0, ge=0, lt=1, description="sgd and rmsprop only")
    batch_size: int | None = Field(
        default=None, ge=1, le=1_000_000, description="null: full batch, as the tutorial"
    )
    seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="null: one is drawn and stored"
    )
    device: str = Field(
        default="auto", pattern=DEVICE_PATTERN, description="auto, cpu, cuda or cuda:N"
    )
    validation_split: float = Field(default=0.0, ge=0, le=0.5, description="fraction held out")
    checkpoint_every: int = Field(default=1000, ge=1, le=MAX_EPOCHS)
    log_every: int = Field(default=1000, ge=1, le=MAX_EPOCHS)


class RunResume(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(ge=1, le=MAX_EPOCHS, description="how many more epochs to train")


class RunPublic(BaseModel):
    id: int
    status: Status
    dataset_id: int
    dataset: str = Field(description="the dataset's name")
    architecture: Architecture
    hidden_layers: list[int]
    activation: Activation
    parameter_count: int
    epochs: int = Field(description="epochs the run aims for")
    epoch: int = Field(description="epochs done")
    learning_rate: float
    optimizer: Optimizer
    momentum: float
    batch_size: int | None
    seed: int
    device: str
    device_used: str | None
    validation_split: float
    checkpoint_every: int
    log_every: int
    loss: float | None = Field(description="the latest recorded loss")
    val_loss: float | None
    final_loss: float | None
    accuracy: float | None = Field(description="on all the dataset's points, at the end")
    error: str | None
    restarts: int = Field(description="times the run was picked up again after its worker died")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunsPublic(BaseModel):
    data: list[RunPublic]
    count: int


class CheckpointPublic(BaseModel):
    epoch: int
    sha256: str
    size_bytes: int
    created_at: datetime


class ArchitecturePublic(BaseModel):
    name: Architecture
    description: str
    hidden_layers: list[int]
    activation: Activation
    parameter_count: int = Field(description="for mlp, with the default hidden_layers")
