"""Path and query parameters that more than one route module takes, each declared once (a
route module never imports another: they all take these from here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from app.vocabulary import MAX_ID

# The most rows one page of a list (runs, datasets, sweeps) holds, and how many unless asked.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

# Swagger UI fills a parameter in with its first example: run 1 is the first run started.
RunId = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_ID,
        description="the run's id",
        openapi_examples={"first run": {"summary": "the first run started", "value": 1}},
    ),
]
SweepId = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_ID,
        description="the sweep's id",
        openapi_examples={"first sweep": {"summary": "the first sweep made", "value": 1}},
    ),
]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_ID)]
CheckpointEpoch = Annotated[int | None, Query(ge=0, le=MAX_ID, description="a checkpointed epoch")]
