"""Path and query parameters that more than one route module takes, each declared once (a
route module never imports another: they all take these from here)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.openapi.models import Example

from app.vocabulary import MAX_ID

# The most rows one page of a list (runs, datasets, sweeps) holds, and how many unless asked.
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def _id_path(thing: str, first: str) -> Any:
    """A path parameter naming one row by its id. Swagger UI fills it in with its first
    example: 1 is the first row made."""
    example: dict[str, Example] = {f"first {thing}": {"summary": first, "value": 1}}
    return Path(ge=1, le=MAX_ID, description=f"the {thing}'s id", openapi_examples=example)


RunId = Annotated[int, _id_path("run", "the first run started")]
SweepId = Annotated[int, _id_path("sweep", "the first sweep made")]
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_ID)]
CheckpointEpoch = Annotated[int | None, Query(ge=0, le=MAX_ID, description="a checkpointed epoch")]
