"""The one place that maps domain exceptions (`app/core/errors.py`) and the framework's own
refusals to HTTP answers whose message says what was wrong and what is accepted."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.core.errors import ServiceError

log = logging.getLogger(__name__)


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: such inputs are echoed back as text, never as a 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


# A 422 names what was wrong, not the whole input again: a body of a million points refused
# for its length must not come back whole, nor be encoded on the event loop.
MAX_ERRORS_SHOWN = 20
MAX_EXCERPT_CHARS = 120


def excerpt(value: Any) -> Any:
    """A short stand-in for an input that was refused."""
    if isinstance(value, list | tuple):
        if len(value) <= 4 and len(repr(value)) <= MAX_EXCERPT_CHARS:
            return json_safe(list(value))
        head = json_safe([excerpt(item) for item in value[:2]])
        return f"a list of {len(value)} items, starting {json.dumps(head)[:MAX_EXCERPT_CHARS]}"
    if isinstance(value, dict):
        if len(repr(value)) <= MAX_EXCERPT_CHARS:
            return json_safe(value)
        return f"an object with keys {', '.join(map(str, list(value)[:8]))[:MAX_EXCERPT_CHARS]}"
    if isinstance(value, str) and len(value) > MAX_EXCERPT_CHARS:
        return f"{value[:MAX_EXCERPT_CHARS]}... ({len(value)} characters)"
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return json_safe(value)


def short_errors(errors: Sequence[Any]) -> list[Any]:
    """Field errors with each refused input cut to an excerpt, and at most MAX_ERRORS_SHOWN."""
    shown = []
    for error in errors[:MAX_ERRORS_SHOWN]:
        error = dict(error)
        if "input" in error:
            error["input"] = excerpt(error["input"])
        error.pop("url", None)
        shown.append(json_safe(jsonable_encoder(error)))
    if len(errors) > MAX_ERRORS_SHOWN:
        shown.append({"msg": f"and {len(errors) - MAX_ERRORS_SHOWN} more errors like these"})
    return shown


class ShortValidationError(RequestValidationError):
    """Field errors already cut down by `short_errors` where they arose (in a worker thread)."""


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the API documents for a path; a literal path (`/datasets/generate`) is
    its own resource, not an instance of a template beside it (`/datasets/{ref}`)."""
    paths: dict[str, dict[str, Any]] = app.openapi().get("paths", {})
    if path in paths:
        return sorted(method.upper() for method in paths[path])
    methods: set[str] = set()
    for template, operations in paths.items():
        if compile_path(template)[0].fullmatch(path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    async def service_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # A lock held past busy_timeout, or a database that went away, is a temporary
        # condition: the client is told to retry, never shown a bare 500.
        busy = "locked" in str(exc) or "busy" in str(exc)
        log.warning("database operational error: %s", exc)
        detail = "the database is busy" if busy else "the database is unavailable"
        return JSONResponse(
            {"detail": f"{detail}; try again shortly"},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if not isinstance(exc, ShortValidationError):
            errors = short_errors(errors)
        return JSONResponse({"detail": errors}, status_code=422)

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code != 405:
            return await http_exception_handler(request, exc)
        # Starlette names the methods of the first route that matched the path; a resource
        # served by several routes (GET and DELETE /datasets/{ref}) allows all of theirs,
        # read from the app's own OpenAPI paths.
        allowed = allowed_methods(request.app, request.url.path)
        return JSONResponse(
            {
                "detail": f"method {request.method} is not allowed here; allowed: {', '.join(allowed)}"
            },
            status_code=405,
            headers={"Allow": ", ".join(allowed)},
        )

    async def concurrent_change(_request: Request, exc: Exception) -> JSONResponse:
        # The services name what happened where they can; this is the net under them.
        if isinstance(exc, StaleDataError):
            return JSONResponse(
                {"detail": "what this request changes was deleted by another request meanwhile"},
                status_code=404,
            )
        return JSONResponse(
            {
                "detail": "another request changed the same data at the same time; look again "
                "and retry"
            },
            status_code=409,
        )

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(IntegrityError, concurrent_change)
    app.add_exception_handler(StaleDataError, concurrent_change)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(OperationalError, database_unavailable)
