"""The dashboard: HTML pages that hold no data themselves. Their scripts read and write through
the JSON API (with the key, where one is set), so the pages are open to everyone and show
only what the API lets the browser see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.api.deps import SettingsDep
from app.api.params import MAX_PAGE_SIZE, RunId, SweepId
from app.core.config import Settings
from app.ml.devices import available_devices
from app.schemas.datasets import NAME_RULE
from app.schemas.runs import ComplexRunCreate, MlpRunCreate
from app.schemas.sweeps import GRID_KEYS, SWEEP_EXAMPLES
from app.services.architectures import list_architectures
from app.vocabulary import (
    FIELD_RAMP,
    LABEL_COLOURS,
    Activation,
    Architecture,
    LossFunction,
    Optimizer,
    PointsRule,
    RunStatus,
)

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
TEMPLATES = Jinja2Templates(directory=TEMPLATES_DIR)
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
# The navigation, in order: (path, name).
PAGES = (
    ("/", "Runs"),
    ("/ui/new", "New run"),
    ("/ui/datasets", "Datasets"),
    ("/ui/compare", "Compare"),
    ("/ui/sweeps", "Sweeps"),
)

# What the pages' scripts and style take from Python instead of writing again: every page
# carries it as JSON in its body's data-vocabulary (base.html), which
# app/static/dashboard/vocabulary.js reads, and the colours as CSS custom properties.
PAGE_VOCABULARY: dict[str, Any] = {
    "statuses": [status.value for status in RunStatus],
    "ended": [status.value for status in RunStatus if status.ended],
    "architectures": [architecture.value for architecture in Architecture],
    "label_colours": list(LABEL_COLOURS),
    "field_ramp": list(FIELD_RAMP),
    "max_page_size": MAX_PAGE_SIZE,
}

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def _key_needed(settings: Settings) -> str:
    if settings.api_key is None:
        return ""
    return "reads" if settings.protect_reads else "writes"


def _page(
    request: Request, settings: Settings, template: str, title: str, current: str, **extra: Any
) -> HTMLResponse:
    context = {
        "title": title,
        "current": current,
        "pages": PAGES,
        "key_needed": _key_needed(settings),
        "vocabulary": PAGE_VOCABULARY,
        **extra,
    }
    return TEMPLATES.TemplateResponse(request, template, context)


@router.get("/")
def runs_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    return _page(request, settings, "runs.html", "Runs", "Runs")


@router.get("/ui/new")
def new_run_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    # The form's defaults and hints come from the request schema itself.
    tutorial = ComplexRunCreate().model_dump()
    shaped = MlpRunCreate(architecture=Architecture.MLP)
    fields = MlpRunCreate.model_fields
    return _page(
        request,
        settings,
        "new_run.html",
        "New run",
        "New run",
        defaults={**tutorial, **shaped.model_dump(include={"hidden_layers", "activation"})},
        hints={name: field.description or "" for name, field in fields.items()},
        architectures=list_architectures(),
        optimizers=list(Optimizer),
        losses=list(LossFunction),
        activations=list(Activation),
        devices=["auto", *available_devices()],
    )


@router.get("/ui/runs/{run_id}")
def run_page(run_id: RunId, request: Request, settings: SettingsDep) -> HTMLResponse:
    return _page(request, settings, "run.html", f"Run {run_id}", "", run_id=run_id)


@router.get("/ui/datasets")
def datasets_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    return _page(
        request,
        settings,
        "datasets.html",
        "Datasets",
        "Datasets",
        kinds=list(PointsRule),
        name_rule=NAME_RULE,
    )


@router.get("/ui/compare")
def compare_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    return _page(request, settings, "compare.html", "Compare runs", "Compare")


@router.get("/ui/sweeps")
def sweeps_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    # The form starts from the API's own example (the tutorial's exercise) and offers the
    # parameters the API takes.
    return _page(
        request,
        settings,
        "sweeps.html",
        "Sweeps",
        "Sweeps",
        example=SWEEP_EXAMPLES["exercise"]["value"],
        # As JSON writes it, in the grid's order (Jinja's tojson sorts the keys).
        example_json=json.dumps(SWEEP_EXAMPLES["exercise"]["value"]),
        parameters_json=json.dumps(GRID_KEYS),
        name_rule=NAME_RULE,
    )


@router.get("/ui/sweeps/{sweep_id}")
def sweep_page(sweep_id: SweepId, request: Request, settings: SettingsDep) -> HTMLResponse:
    return _page(request, settings, "sweep.html", f"Sweep {sweep_id}", "Sweeps", sweep_id=sweep_id)
