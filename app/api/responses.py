"""OpenAPI descriptions of the error answers routes share, each with an example of the real
message, so the Swagger UI shows what a client will actually read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.api.body_limit import PARAMETERS_LIMIT_SOURCE, SMALL_JSON_BYTES, too_large
from app.schemas.runs import MAX_EPOCHS


class ErrorPublic(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="what was wrong and what is accepted; a list of field errors for a body or "
        "parameter that does not match the schema"
    )


ERROR_DESCRIPTIONS = {
    400: "malformed request",
    401: "missing or wrong API key (only when PC_API_KEY is set)",
    403: "not allowed",
    404: "not found",
    409: "conflicts with the current state",
    413: "request body too large",
    415: "a JSON body not sent as JSON; the detail says how to send it",
    422: "invalid input; the detail names the field or row",
    503: "temporarily unavailable; retry",
}

# The messages the service sends, as examples; a route names its own where it has one.
ERROR_EXAMPLES: dict[int, Any] = {
    400: "There was an error parsing the body",
    401: "missing or wrong API key: send 'Authorization: Bearer <PC_API_KEY>'",
    403: "'curve' is a built-in dataset and cannot be deleted",
    404: "no run with id 7",
    409: "run 7 has no checkpoint yet; try again once it has trained",
    413: too_large(SMALL_JSON_BYTES, PARAMETERS_LIMIT_SOURCE),
    415: "the body must be JSON sent with `Content-Type: application/json` (curl: -H "
    "'Content-Type: application/json'); this request sent Content-Type: "
    "application/x-www-form-urlencoded",
    422: [
        {
            "type": "less_than_equal",
            "loc": ["body", "epochs"],
            "msg": f"Input should be less than or equal to {MAX_EPOCHS}",
            "input": 5 * MAX_EPOCHS,
            "ctx": {"le": MAX_EPOCHS},
        }
    ],
    503: "the database is busy; try again shortly",
}


def errors(*codes: int, examples: dict[int, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """Response entries for `codes`, each with the real message as its example."""
    chosen = {**ERROR_EXAMPLES, **(examples or {})}
    return {
        code: {
            "model": ErrorPublic,
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"example": {"detail": chosen[code]}}},
        }
        for code in codes
    }


PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "a PNG picture"}
}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV text"}
}
