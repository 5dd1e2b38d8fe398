"""Request and response bodies for datasets."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from app.schemas.types import Integer
from app.vocabulary import DEFAULT_MAX_POINTS, MAX_ID, DatasetSource, PointsRule

# Names are short slugs that start with a letter, so they never look like ids or paths.
NAME_MAX_CHARS = 64
NAME_PATTERN = rf"^[A-Za-z][A-Za-z0-9_-]{{0,{NAME_MAX_CHARS - 1}}}$"
NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = (
    f"1 to {NAME_MAX_CHARS} ASCII letters, digits, '-' or '_', starting with a letter "
    "(no spaces), e.g. 'my-curve'"
)


def name_refusal(name: str) -> str:
    return f"name {name!r} is not allowed: use {NAME_RULE}"


def _refuse_bad_name(value: Any) -> Any:
    # Before the pattern, whose own refusal shows only the regular expression.
    if isinstance(value, str) and not NAME_RE.fullmatch(value):
        raise PydanticCustomError("name_not_allowed", name_refusal(value))
    return value


# A dataset's or a sweep's name. The pattern stays in the schema for clients to read.
Name = Annotated[str, Field(pattern=NAME_PATTERN), BeforeValidator(_refuse_bad_name)]

DATASET_IN_USE_EXAMPLE = "dataset 'moons' is used by 2 run(s); delete those runs first"
GENERATE_EXAMPLES: dict[str, Any] = {
    "moons": {
        "summary": "Two interleaved half-moons, a little noise",
        "value": {"kind": "moons", "n": 400, "noise": 0.1, "seed": 1, "name": "moons"},
    },
    "spiral": {
        "summary": "Two spirals: hard for a small network",
        "value": {"kind": "spiral", "n": 400, "noise": 0.05, "seed": 1, "name": "spiral"},
    },
    "tutorial-curve": {
        "summary": "The tutorial's curve rule, 1000 points",
        "value": {"kind": "curve", "n": 1000, "noise": 0.3, "seed": 7, "name": "curve-1000"},
    },
}
PREVIEW_EXAMPLES: dict[str, Any] = {
    key: {
        "summary": example["summary"],
        "value": {field: value for field, value in example["value"].items() if field != "name"},
    }
    for key, example in GENERATE_EXAMPLES.items()
}


class Bounds(BaseModel):
    x_min: float
    x_max: float
    y_min: float
    y_max: float


class DatasetPublic(BaseModel):
    id: int
    name: str
    source: DatasetSource
    n_points: int
    class_counts: dict[str, int] = Field(description='points per label: {"0": n0, "1": n1}')
    bounds: Bounds
    sha256: str = Field(
        description="sha256 of the uploaded bytes, or of the CSV for generated data"
    )
    params: dict[str, Any] | None = Field(
        default=None, description="generator parameters, for built-in and generated data"
    )
    created_at: datetime


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int = Field(description="how many datasets exist in all")


class PointsRecipe(BaseModel):
    """How synthetic points are drawn: the same recipe gives the same points."""

    model_config = ConfigDict(extra="forbid")

    kind: PointsRule = Field(description="the rule the points follow")
    n: Integer = Field(
        default=200,
        ge=2,
        le=DEFAULT_MAX_POINTS,
        description="number of points",
    )
    noise: Annotated[float, Field(ge=0.0, le=1.0), Strict()] | None = Field(
        default=None,
        description=(
            "linear, curve: probability that a label within 0.1 of the boundary flips "
            "(tutorial 0.3); circle, xor, gauss, spiral, moons: standard deviation of the "
            "jitter; random: ignored. Null takes the kind's default."
        ),
    )
    seed: Integer = Field(
        default=0, ge=0, le=MAX_ID, description="the same seed gives the same points"
    )


class DatasetGenerate(PointsRecipe):
    name: Name = Field(description=NAME_RULE)


class PointsPreview(BaseModel):
    params: dict[str, Any] = Field(description="kind, n, noise (the kind's default if null), seed")
    points: list[list[float]] = Field(description="rows of [x, y, label]; nothing is stored")


class PointsPublic(BaseModel):
    name: str
    # Rows as fixed-length lists rather than tuples: a tuple's `prefixItems` trips some
    # OpenAPI tools (schemathesis checks responses against it as a 3.0 `items` array).
    points: list[Annotated[list[float], Field(min_length=3, max_length=3)]] = Field(
        description="rows of [x, y, label]"
    )
