"""Bodies the API reads as JSON are refused in one place when they are not sent as JSON.

FastAPI reads a body as JSON only when its Content-Type says JSON. Otherwise the route gets the
raw bytes and answers with a field error (`loc ["body","complex"]`, "Input should be a valid
dictionary", "61 bytes"), which does not tell a person who sent `curl -d '{...}'` (form-encoded
by default) what to change. This dependency, on every API router, answers 415 with the header
to send instead. Which routes read JSON is what their OpenAPI schema says, so `/predict`, which
reads its body itself, is held to the same rule.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from app.core.errors import UnsupportedMediaType

JSON_MEDIA_TYPE = "application/json"


def is_json(content_type: str) -> bool:
    """`application/json` or any `application/...+json`, with or without parameters."""
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == JSON_MEDIA_TYPE or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def reads_json(app: FastAPI, path: str, method: str) -> bool:
    """Whether the operation's documented body is JSON."""
    operation: dict[str, Any] = app.openapi()["paths"].get(path, {}).get(method.lower(), {})
    return JSON_MEDIA_TYPE in operation.get("requestBody", {}).get("content", {})


def has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or (
        "transfer-encoding" in request.headers
    )


async def require_json_body(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if (content_type is not None and is_json(content_type)) or not has_body(request):
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not reads_json(
        request.app, route.path_format, request.method
    ):
        return
    sent = f"Content-Type: {content_type}" if content_type else "no Content-Type"
    raise UnsupportedMediaType(
        f"the body must be JSON sent with `Content-Type: {JSON_MEDIA_TYPE}` "
        f"(curl: -H 'Content-Type: {JSON_MEDIA_TYPE}'); this request sent {sent}"
    )
