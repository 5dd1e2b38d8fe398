"""The OpenAPI schema, made to say exactly what this server does: which operations need the
API key, and which devices a run may ask for here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api.metrics import METRICS_PATH
from app.api.responses import ERROR_EXAMPLES
from app.core.config import Settings
from app.ml.devices import available_devices
from app.schemas.results import PredictRequest
from app.schemas.runs import RUN_EXAMPLES

WRITE_METHODS = ("post", "put", "patch", "delete")
# FastAPI leaves null values out of the examples it writes into the schema; these show `null`
# on purpose (full batch, a drawn seed), so they are put back as written.
EXAMPLES_WITH_NULLS = {("/runs", "post"): RUN_EXAMPLES}


def _needs_key(path: str, method: str, settings: Settings) -> bool:
    """As `require_api_key` and `require_metrics_key` decide it."""
    if settings.api_key is None:
        return False
    if method in WRITE_METHODS:
        return True
    return settings.protect_reads and not (path == METRICS_PATH and settings.metrics_open)


def _truthful(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "security" not in operation:
                continue
            if not _needs_key(path, method, settings):
                del operation["security"]
                operation.get("responses", {}).pop("401", None)
    if settings.api_key is None:
        schema.get("components", {}).pop("securitySchemes", None)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            # FastAPI adds this answer itself to every operation that takes input.
            validation = operation.get("responses", {}).get("422", {})
            for content in validation.get("content", {}).values():
                content.setdefault("example", {"detail": ERROR_EXAMPLES[422]})
    # /predict validates its body off the event loop, so FastAPI does not see its model.
    schema.setdefault("components", {}).setdefault("schemas", {})["PredictRequest"] = (
        PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for (path, method), examples in EXAMPLES_WITH_NULLS.items():
        body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]
        body["examples"] = examples
    devices = ["auto", *available_devices()]
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        device = component.get("properties", {}).get("device")
        if name.endswith("RunCreate") and device is not None:
            device.pop("pattern", None)
            device["enum"] = devices
    return schema


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _truthful(schema, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
