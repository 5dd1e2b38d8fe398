"""Refuse request bodies over a size limit, counting bytes as they stream in.

A Content-Length over the limit is refused before any byte is read. Otherwise the bytes are
counted as the app receives them, so a missing or lying Content-Length (or a chunked body) is
cut off at the limit: the client gets 413 and the app sees a disconnect, so nothing is stored.

Not FastAPI's own `max_body_size` (tried on FastAPI 0.165, Starlette 1.10): when a request
declares a Content-Length over the limit, Starlette replaces whatever the app answers with its
own plain-text "Content Too Large", so the 413 could no longer say which limit was met and how
large it is (`tests/api/test_body_limits.py`).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.schemas.results import MAX_PREDICT_POINTS

# What each route can need, so that no body is read, parsed or validated past that: a JSON body
# of run or dataset parameters is a few hundred bytes; /predict takes at most 100,000 points of
# at most 64 bytes each ("[-1.2345678901234567e-300, -1.2345678901234567e-300], " is 54).
SMALL_JSON_BYTES = 64 * 1024
PREDICT_BYTES = MAX_PREDICT_POINTS * 64 + 4096


class BodySizeLimitMiddleware:
    """Uploads (`POST /datasets`) may take `max_body_bytes`; /predict and every other route
    what they can need, never more than that."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _limit(self, path: str) -> tuple[int, str]:
        """The limit for a path, and what the 413 names as its source."""
        if path == "/datasets":
            return self.max_body_bytes, "PC_MAX_UPLOAD_BYTES"
        if path == "/predict":
            limit = min(PREDICT_BYTES, self.max_body_bytes)
            return limit, f"{MAX_PREDICT_POINTS} points at most"
        return min(SMALL_JSON_BYTES, self.max_body_bytes), "this route's parameters"

    def _message(self, limit: int, source: str) -> bytes:
        detail = f"request body is larger than the {limit} bytes accepted here ({source})"
        return json.dumps({"detail": detail}).encode()

    async def _send_413(self, send: Send, limit: int, source: str) -> None:
        body = self._message(limit, source)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
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

        received = 0
        refused = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not response_started:
                        await self._send_413(send, limit, source)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 has been sent; whatever the app answers is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise
