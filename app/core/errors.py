"""Domain exceptions, raised by services, and the one place that maps them to HTTP."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError


class ServiceError(Exception):
    """A request the service understood and refuses; `status_code` says how."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class Forbidden(ServiceError):
    status_code = 403


class InvalidInput(ServiceError):
    status_code = 422


class PayloadTooLarge(ServiceError):
    status_code = 413


def json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: such inputs are echoed back as text, never as a 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def install_error_handlers(app: FastAPI) -> None:
    async def service_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    async def database_busy(_request: Request, exc: Exception) -> JSONResponse:
        # A lock held past busy_timeout is a temporary condition, not a server bug.
        if "locked" in str(exc) or "busy" in str(exc):
            return JSONResponse(
                {"detail": "the database is busy; try again shortly"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        raise exc

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = json_safe(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(OperationalError, database_busy)
