"""OpenAPI descriptions of the error answers routes share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorPublic(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="what was wrong and what is accepted; a list of field errors for a body or "
        "parameter that does not match the schema"
    )


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "malformed request",
        401: "missing or wrong API key (only when PC_API_KEY is set)",
        403: "not allowed",
        404: "not found",
        409: "conflicts with the current state",
        413: "request body too large",
        422: "invalid input; the detail names the field or row",
        503: "temporarily unavailable; retry",
    }
    return {code: {"model": ErrorPublic, "description": descriptions[code]} for code in codes}


PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a PNG picture"}
}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV text"}
}
