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
from app.api.params import RunId, SweepId
from app.core.config import Settings
from app.ml.devices import available_devices
from app.schemas.datasets import NAME_RULE
from app.schemas.runs import ComplexRunCreate, MlpRunCreate
from app.schemas.sweeps import GRID_KEYS, SWEEP_EXAMPLES
from app.services.architectures import list_architectures
from app.vocabulary import Activation, Architecture, LossFunction, Optimizer, PointsRule

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
# The navigation, in order: (path, name).
PAGES = (
    ("/", "Runs"),
    ("/ui/new", "New run"),
    ("/ui/datasets", "Datasets"),
    ("/ui/compare", "Compare"),
    ("/ui/sweeps", "Sweeps"),
)

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
