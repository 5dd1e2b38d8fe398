"""Request and response bodies for runs. Defaults are the tutorial's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from app.ml.architectures import MAX_HIDDEN_LAYERS, MAX_WIDTH
from app.ml.devices import DEVICE_PATTERN
from app.schemas.types import Integer, Number, json_number

Architecture = Literal["simple", "complex", "mlp"]
Activation = Literal["relu", "tanh", "sigmoid", "gelu", "none"]
Optimizer = Literal["adam", "sgd", "rmsprop"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]

MAX_EPOCHS = 1_000_000
MAX_CHECKPOINTS = 1000
# The tutorial's `for epoch in range(20001)`: 20,001 optimizer steps, logged as epochs 0 to 20000.
TUTORIAL_EPOCHS = 20001

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
            "learning_rate": 0.003,
            "optimizer": "adam",
            "batch_size": None,
            "seed": None,
            "device": "auto",
            "validation_split": 0.0,
            "checkpoint_every": 1000,
            "log_every": 1000,
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


class _RunCreateBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(
        default="curve", min_length=1, max_length=64, description="dataset id or name"
    )
    epochs: Integer = Field(
        default=TUTORIAL_EPOCHS,
        ge=1,
        le=MAX_EPOCHS,
        description="optimizer passes over the data; the tutorial's loop is 20001 (epochs 0 to "
        "20000)",
    )
    learning_rate: Number = Field(default=0.003, gt=0, le=10)
    optimizer: Optimizer = "adam"
    momentum: Number = Field(default=0.0, ge=0, lt=1, description="sgd and rmsprop only")
    batch_size: Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(json_number)] | None = (
        Field(default=None, description="null: full batch, as the tutorial")
    )
    seed: Annotated[int, Field(ge=0, le=2**31 - 1), BeforeValidator(json_number)] | None = Field(
        default=None, description="null: one is drawn and stored"
    )
    device: str = Field(
        default="auto",
        pattern=DEVICE_PATTERN,
        description="auto, cpu, cuda or cuda:N; the schema lists the devices this server has",
    )
    validation_split: Number = Field(
        default=0.0, ge=0, le=0.5, description="fraction held out (at least one point when > 0)"
    )
    checkpoint_every: Integer = Field(
        default=1000,
        ge=1,
        le=MAX_EPOCHS,
        description=f"raised to epochs/{MAX_CHECKPOINTS} when smaller: a run keeps at most "
        f"{MAX_CHECKPOINTS} checkpoints",
    )
    log_every: Integer = Field(default=1000, ge=1, le=MAX_EPOCHS)


class SimpleRunCreate(_RunCreateBase):
    """The tutorial's linear model: Linear(2,1) + sigmoid, 3 parameters."""

    architecture: Literal["simple"]


class ComplexRunCreate(_RunCreateBase):
    """The tutorial's network: 2-128-128-1 with ReLU, 17,025 parameters (the default)."""

    architecture: Literal["complex"] = "complex"


class MlpRunCreate(_RunCreateBase):
    """A network you shape."""

    architecture: Literal["mlp"]
    hidden_layers: list[Annotated[int, Field(ge=1, le=MAX_WIDTH), BeforeValidator(json_number)]] = (
        Field(
            default=[64, 64],
            min_length=1,
            max_length=MAX_HIDDEN_LAYERS,
            description=f"1 to {MAX_HIDDEN_LAYERS} widths, each 1 to {MAX_WIDTH}",
        )
    )
    activation: Activation = Field(default="relu", description="after each hidden layer")


def _architecture_of(body: Any) -> Any:
    if isinstance(body, dict):
        return body.get("architecture", "complex")
    return getattr(body, "architecture", "complex")


AnyRunCreate = SimpleRunCreate | ComplexRunCreate | MlpRunCreate
# One body schema per architecture, so the schema says which fields each one takes.
RunCreate = Annotated[
    Annotated[SimpleRunCreate, Tag("simple")]
    | Annotated[ComplexRunCreate, Tag("complex")]
    | Annotated[MlpRunCreate, Tag("mlp")],
    Discriminator(
        _architecture_of,
        custom_error_type="invalid_architecture",
        custom_error_message="architecture must be one of simple, complex, mlp",
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
    status: Status
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
