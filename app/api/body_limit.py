"""Refuse request bodies over a size limit, counting bytes as they stream in, and bodies that
do not arrive in time.

A Content-Length over the limit is refused before any byte is read. Otherwise the bytes are
counted as the app receives them, so a missing or lying Content-Length (or a chunked body) is
cut off at the limit: the client gets 413 and the app sees a disconnect, so nothing is stored.
A body not whole within PC_REQUEST_TIMEOUT_S of the request's start is cut off the same way,
with a 408.

Not FastAPI's own `max_body_size` (tried on FastAPI 0.165, Starlette 1.10): when a request
declares a Content-Length over the limit, Starlette replaces whatever the app answers with its
own plain-text "Content Too Large", so the 413 could no longer say which limit was met and how
large it is (`tests/api/test_body_limits.py`).

Nor uvicorn's timeouts: `timeout_keep_alive` runs only between requests, and none bounds how
long a request's body takes, so a client sending it a byte at a time held its connection for
as long as it liked (`tests/api/test_request_timeout.py`).
"""

from __future__ import annotations

import json

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.schemas.results import MAX_PREDICT_POINTS

# What each route can need, so that no body is read, parsed or validated past that: a JSON body
# of run or dataset parameters is a few hundred bytes; /predict takes at most MAX_PREDICT_POINTS
# points of at most 64 bytes each ("[-1.2345678901234567e-300, -1.2345678901234567e-300], " is
# 54), and room for the rest of its body.
SMALL_JSON_BYTES = 64 * 1024
PREDICT_POINT_BYTES = 64
PREDICT_BYTES = MAX_PREDICT_POINTS * PREDICT_POINT_BYTES + 4096
# What a 413 names as the source of each limit.
UPLOAD_LIMIT_SOURCE = "PC_MAX_UPLOAD_BYTES"
PREDICT_LIMIT_SOURCE = f"{MAX_PREDICT_POINTS} points at most"
PARAMETERS_LIMIT_SOURCE = "this route's parameters"


def too_large(limit: int, source: str) -> str:
    """The 413's detail: the limit met, in bytes, and where it comes from."""
    return f"request body is larger than the {limit} bytes accepted here ({source})"


class BodySizeLimitMiddleware:
    """Uploads (`POST /datasets`) may take `max_body_bytes`; /predict and every other route
    what they can need, never more than that. Every body must be whole `request_timeout_s`
    after the request started."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, request_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout_s = request_timeout_s

    def _limit(self, path: str) -> tuple[int, str]:
        """The limit for a path, and what the 413 names as its source."""
        if path == "/datasets":
            return self.max_body_bytes, UPLOAD_LIMIT_SOURCE
        if path == "/predict":
            return min(PREDICT_BYTES, self.max_body_bytes), PREDICT_LIMIT_SOURCE
        return min(SMALL_JSON_BYTES, self.max_body_bytes), PARAMETERS_LIMIT_SOURCE

    async def _send_413(self, send: Send, limit: int, source: str) -> None:
        await self._refuse(send, 413, too_large(limit, source))

    async def _send_408(self, send: Send) -> None:
        detail = (
            "request body did not arrive within PC_REQUEST_TIMEOUT_S="
            f"{self.request_timeout_s:g} seconds of the request's start; a body must arrive "
            "whole within that time"
        )
        await self._refuse(send, 408, detail)

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, source = self._limit(scope["path"])
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._send_413(send, limit, source)
                    return

        deadline = anyio.current_time() + self.request_timeout_s
        received = 0
        body_complete = False
        refused = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete, refused
            if refused:
                return {"type": "http.disconnect"}
            if body_complete:
                return await receive()  # only a disconnect is left to hear: it may take its time
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                refused = True
                if not response_started:
                    await self._send_408(send)
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > limit:
                    refused = True
                    if not response_started:
                        await self._send_413(send, limit, source)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 or 408 has been sent; whatever the app answers is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise
