"""Request and response bodies for runs. Defaults are the tutorial's."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from app.ml.architectures import DEFAULT_MLP, MAX_HIDDEN_LAYERS, MAX_WIDTH
from app.ml.devices import DEVICE_PATTERN, DEVICE_RULE, device_refusal
from app.schemas.datasets import NAME_MAX_CHARS
from app.schemas.types import Integer, Number, json_number
from app.vocabulary import (
    DEFAULT_CHECKPOINT_EVERY,
    MAX_ID,
    TUTORIAL_EPOCHS,
    TUTORIAL_LEARNING_RATE,
    TUTORIAL_LOG_EVERY,
    Activation,
    Architecture,
    LossFunction,
    Optimizer,
    RunStatus,
)

MAX_EPOCHS = 1_000_000
MAX_LEARNING_RATE = 10
MAX_CHECKPOINTS = 1000

DEVICE_ERROR = (
    "device 'cuda' was asked for but CUDA is not available on this server; available devices: cpu"
)

# Swagger UI fills the request body with the first example: it must run as it is and show the
# intended use (the tutorial's network, full batch, a drawn seed).
RUN_EXAMPLES: dict[str, Any] = {
    "tutorial": {
        "summary": "The tutorial's network on curve (about 15 s)",
        "value": {
            "dataset": "curve",
            "architecture": "complex",
            "epochs": TUTORIAL_EPOCHS,
            "learning_rate": TUTORIAL_LEARNING_RATE,
            "optimizer": "adam",
            "loss": "bce",
            "batch_size": None,
            "seed": None,
            "device": "auto",
            "validation_split": 0.0,
            "checkpoint_every": DEFAULT_CHECKPOINT_EVERY,
            "log_every": TUTORIAL_LOG_EVERY,
        },
    },
    "simple": {
        "summary": "The tutorial's linear model on linear (about 2 s)",
        "value": {"dataset": "linear", "architecture": "simple", "epochs": TUTORIAL_EPOCHS},
    },
    "mlp": {
        "summary": "A network you shape, with a validation split",
        "value": {
            "dataset": "curve",
            "architecture": "mlp",
            "hidden_layers": [32, 32, 32],
            "activation": "tanh",
            "epochs": 5000,
            "learning_rate": 0.01,
            "validation_split": 0.2,
            "seed": 1,
        },
    },
    "long": {
        "summary": "A long run, to watch, cancel and resume (a few minutes)",
        "value": {"dataset": "curve", "architecture": "complex", "epochs": 300000},
    },
}
RESUME_EXAMPLES: dict[str, Any] = {
    "more": {"summary": "Train 5000 epochs more", "value": {"epochs": 5000}},
}


def _refuse_unknown_device(value: Any) -> Any:
    # Before the pattern, whose own refusal shows only the regular expression.
    if isinstance(value, str) and not re.fullmatch(DEVICE_PATTERN, value):
        raise PydanticCustomError("device_unknown", device_refusal(value))
    return value


class _RunCreateBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        default="curve", min_length=1, max_length=NAME_MAX_CHARS, description="dataset id or name"
    )
    epochs: Integer = Field(
        default=TUTORIAL_EPOCHS,
        ge=1,
        le=MAX_EPOCHS,
        description=f"optimizer passes over the data; the tutorial's loop is {TUTORIAL_EPOCHS} "
        f"(epochs 0 to {TUTORIAL_EPOCHS - 1})",
    )
    learning_rate: Number = Field(
        default=TUTORIAL_LEARNING_RATE,
        gt=0,
        le=MAX_LEARNING_RATE,
        description=f"more than 0, at most {MAX_LEARNING_RATE}",
    )
    optimizer: Optimizer = Optimizer.ADAM
    momentum: Number = Field(default=0.0, ge=0, lt=1, description="sgd and rmsprop only")
    loss: LossFunction = Field(
        default=LossFunction.BCE,
        description="bce: binary cross-entropy, the tutorial's; mse: squared error of the "
        "sigmoid's probability",
    )
    batch_size: Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(json_number)] | None = (
        Field(default=None, description="null: full batch, as the tutorial")
    )
    seed: Annotated[int, Field(ge=0, le=MAX_ID), BeforeValidator(json_number)] | None = Field(
        default=None, description="null: one is drawn and stored"
    )
    device: Annotated[
        str, Field(pattern=DEVICE_PATTERN), BeforeValidator(_refuse_unknown_device)
    ] = Field(
        default="auto",
        description=f"{DEVICE_RULE}; the schema lists the devices this server has",
    )
    validation_split: Number = Field(
        default=0.0, ge=0, le=0.5, description="fraction held out (at least one point when > 0)"
    )
    checkpoint_every: Integer = Field(
        default=DEFAULT_CHECKPOINT_EVERY,
        ge=1,
        le=MAX_EPOCHS,
        description=f"raised to epochs/{MAX_CHECKPOINTS} when smaller: a run keeps at most "
        f"{MAX_CHECKPOINTS} checkpoints",
    )
    log_every: Integer = Field(default=TUTORIAL_LOG_EVERY, ge=1, le=MAX_EPOCHS)


class SimpleRunCreate(_RunCreateBase):
    """The tutorial's linear model: Linear(2,1) + sigmoid, 3 parameters."""

    architecture: Literal[Architecture.SIMPLE]


class ComplexRunCreate(_RunCreateBase):
    """The tutorial's network: 2-128-128-1 with ReLU, 17,025 parameters (the default)."""

    architecture: Literal[Architecture.COMPLEX] = Architecture.COMPLEX


class MlpRunCreate(_RunCreateBase):
    """A network you shape."""

    architecture: Literal[Architecture.MLP]
    hidden_layers: list[Annotated[int, Field(ge=1, le=MAX_WIDTH), BeforeValidator(json_number)]] = (
        Field(
            default=list(DEFAULT_MLP.hidden_layers),
            min_length=1,
            max_length=MAX_HIDDEN_LAYERS,
            description=f"1 to {MAX_HIDDEN_LAYERS} widths, each 1 to {MAX_WIDTH}",
        )
    )
    activation: Activation = Field(
        default=DEFAULT_MLP.activation, description="after each hidden layer"
    )


def _architecture_of(body: Any) -> Any:
    if isinstance(body, dict):
        return body.get("architecture", Architecture.COMPLEX)
    return getattr(body, "architecture", Architecture.COMPLEX)


AnyRunCreate = SimpleRunCreate | ComplexRunCreate | MlpRunCreate
# One body schema per architecture, so the schema says which fields each one takes.
RunCreate = Annotated[
    Annotated[SimpleRunCreate, Tag(Architecture.SIMPLE)]
    | Annotated[ComplexRunCreate, Tag(Architecture.COMPLEX)]
    | Annotated[MlpRunCreate, Tag(Architecture.MLP)],
    Discriminator(
        _architecture_of,
        custom_error_type="invalid_architecture",
        custom_error_message=f"architecture must be one of {', '.join(Architecture)}",
    ),
]


class RunResume(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: Integer = Field(
        ge=1,
        le=MAX_EPOCHS,
        description="how many more epochs to train, counted from the last checkpoint",
    )


class RunPublic(BaseModel):
    id: int
    status: RunStatus
    dataset_id: int
    dataset: str = Field(description="the dataset's name")
    architecture: Architecture
    hidden_layers: list[int]
    activation: Activation
    parameter_count: int
    epochs: int = Field(description="epochs the run aims for (raised by each resume)")
    requested_epochs: int = Field(description="epochs the run was created with")
    epoch: int = Field(description="epochs done")
    learning_rate: float
    optimizer: Optimizer
    momentum: float
    loss_function: LossFunction = Field(description="what it minimises (the request's `loss`)")
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
    cancel_requested: bool = Field(
        description="a cancel was asked for; a running run stops at its next report, within "
        "about a second, and becomes cancelled"
    )
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
