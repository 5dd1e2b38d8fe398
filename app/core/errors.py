"""Domain exceptions, raised by services; `app/api/errors.py` maps them to HTTP in one place.

Nothing here imports the web framework: training workers, which use the services, never serve a
request, and each one imports what it needs afresh (spawn) before it is ready.
"""

from __future__ import annotations


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


class UnsupportedMediaType(ServiceError):
    status_code = 415


class DatabaseUnusable(RuntimeError):
    """The database named by PC_DATABASE_URL cannot be opened or written at start-up."""
