"""Who may call: with PC_API_KEY set, writes (and, if PC_PROTECT_READS, reads) need
`Authorization: Bearer <key>`. The scheme is declared, so Swagger UI's Authorize button works."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.deps import SettingsDep

bearer = HTTPBearer(auto_error=False, description="the key set in PC_API_KEY")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def require_api_key(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if settings.api_key is None:
        return
    if request.method in SAFE_METHODS and not settings.protect_reads:
        return
    expected = settings.api_key.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    # Compared in constant time, so the answer's timing says nothing about the key.
    if not secrets.compare_digest(given, expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong API key: send 'Authorization: Bearer <PC_API_KEY>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
