"""Whether an API key is the right one, for clients (the dashboard) that ask for it once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response, status

from app.api.auth import require_api_key

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/check",
    summary="Check an API key",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[Depends(require_api_key)],
)
def check_key() -> Response:
    """204 when `Authorization: Bearer <key>` carries PC_API_KEY (or no key is set), else 401."""
    return Response(status_code=status.HTTP_204_NO_CONTENT)
