"""Reading `POST /predict`'s body without holding up other requests.

A small body is validated in the thread pool. A large one (up to MAX_PREDICT_POINTS, 100,000
points) takes pydantic a fifth of a second, holding the GIL for most of it, so the event loop
waits behind it: it is validated in a process of its own, which hands back the points as one
numpy array (a single buffer to unpickle) or the refusal, already cut down to excerpts.
"""

from __future__ import annotations

import gc
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from app.api.body_limit import SMALL_JSON_BYTES
from app.api.errors import short_errors
from app.schemas.results import PredictRequest

# Bodies larger than this go to the validating process: up to it, a body is no larger than
# every other route's may be, and is validated where theirs are; past it, only /predict's.
LARGE_BODY_BYTES = SMALL_JSON_BYTES


@dataclass(frozen=True)
class PredictInput:
    run_id: int
    epoch: int | None
    xy: NDArray[np.float64]  # shape (n, 2)


def parse_predict_body(raw: bytes) -> PredictInput | list[Any]:
    """The request, or its field errors (each `loc` under "body"), cut down to excerpts."""
    try:
        body = PredictRequest.model_validate_json(raw)
    except ValidationError as exc:
        errors = short_errors(exc.errors(include_url=False))
        return [{**error, "loc": ("body", *error.get("loc", ()))} for error in errors]
    return PredictInput(body.run_id, body.epoch, np.asarray(body.points, dtype=np.float64))


class LargeBodyValidator:
    """One validating process, started on the first large body and stopped with the app."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def parse(self, raw: bytes) -> PredictInput | list[Any]:
        if len(raw) <= LARGE_BODY_BYTES:
            return parse_predict_body(raw)
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            pool = self._pool
        return pool.submit(parse_predict_body, raw).result()

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            del pool
            # Its queues hold semaphores; uvicorn ends the process by re-raising the signal,
            # so no exit handler would unlink them (see EmbeddedRunner._release_semaphores).
            gc.collect()
