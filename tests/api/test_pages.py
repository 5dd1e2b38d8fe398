"""The dashboard's pages and files as the server sends them (the browser tests drive them)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.params import MAX_PAGE_SIZE
from app.api.routes.pages import PAGES, STATIC_DIR, TEMPLATES_DIR
from app.core.config import Settings
from app.main import create_app
from app.vocabulary import FIELD_RAMP, LABEL_COLOURS, Architecture, RunStatus

KEY = "page-key"
UPLOT = STATIC_DIR / "vendor" / "uplot-1.6.32"
PAGE_PATHS = [
    "/",
    "/ui/new",
    "/ui/runs/1",
    "/ui/datasets",
    "/ui/compare",
    "/ui/sweeps",
    "/ui/sweeps/1",
]
VOCABULARY = re.compile(r"<body [^>]*data-vocabulary='([^']*)'")
# What the pages are written in: every file a page is made of, but the vendored library.
PAGE_FILES = sorted(
    [
        *TEMPLATES_DIR.glob("*.html"),
        *(STATIC_DIR / "dashboard").glob("*.js"),
        *(STATIC_DIR / "dashboard").glob("*.css"),
    ]
)


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("/", "Runs"),
        ("/ui/new", "New run"),
        ("/ui/runs/1", "Run 1"),
        ("/ui/datasets", "Datasets"),
        ("/ui/compare", "Compare runs"),
    ],
)
def test_each_page_is_html_with_the_navigation(client: TestClient, path: str, title: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert f"<title>{title} · Point Classifier</title>" in response.text
    for href, name in PAGES:
        assert f'<a href="{href}"' in response.text, name
    assert 'data-key-needed=""' in response.text


def test_every_file_a_page_names_is_served_from_here(client: TestClient) -> None:
    pages = ["/", "/ui/new", "/ui/runs/1", "/ui/datasets", "/ui/compare"]
    names: set[str] = set()
    for page in pages:
        names |= set(re.findall(r'(?:src|href)="(/static/[^"]+)"', client.get(page).text))
    scripts = list((STATIC_DIR / "dashboard").glob("*.js"))
    for script in scripts:  # and the modules those import
        imported = re.findall(r'from "\./([\w.]+)"', script.read_text())
        names |= {f"/static/dashboard/{name}" for name in imported}
    assert {"/static/dashboard/runs.js", "/static/vendor/uplot-1.6.32/uPlot.iife.min.js"} <= names
    for name in names:
        assert client.get(name).status_code == 200, name
    for script in scripts:  # no page reaches off the machine
        assert "http://" not in script.read_text()
        assert "https://" not in script.read_text()


def test_the_chart_library_is_pinned_with_its_licence() -> None:
    assert "MIT License" in (UPLOT / "LICENSE").read_text()
    assert "Leon Sorokin" in (UPLOT / "LICENSE").read_text()
    assert (UPLOT / "uPlot.iife.min.js").stat().st_size > 40_000
    assert "1.6.32" in (STATIC_DIR / "vendor" / "README.md").read_text()


def test_the_form_takes_its_defaults_and_choices_from_the_schema(client: TestClient) -> None:
    page = client.get("/ui/new").text
    assert 'name="epochs" type="text" value="20001"' in page
    assert 'name="learning_rate" type="text" value="0.003"' in page
    assert 'name="checkpoint_every" type="text" value="1000"' in page
    assert 'id="arch-complex" value="complex" checked' in page
    for optimizer in ("adam", "sgd", "rmsprop"):
        assert f'<option value="{optimizer}"' in page
    assert '<option value="auto" selected>auto</option><option value="cpu">' in page


def test_pages_say_which_requests_need_the_key(settings: Settings) -> None:
    settings.api_key = SecretStr(KEY)
    with TestClient(create_app(settings)) as client:
        page = client.get("/")  # the page itself holds no data: it needs no key
        assert page.status_code == 200
        assert 'data-key-needed="writes"' in page.text
    settings.protect_reads = True
    with TestClient(create_app(settings)) as client:
        assert 'data-key-needed="reads"' in client.get("/ui/datasets").text
        assert client.get("/static/dashboard/api.js").status_code == 200


def test_key_check(settings: Settings, client: TestClient) -> None:
    assert client.post("/auth/check").status_code == 204  # no key set: any caller
    settings.api_key = SecretStr(KEY)
    with TestClient(create_app(settings)) as keyed:
        assert keyed.post("/auth/check").status_code == 401
        wrong = keyed.post("/auth/check", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "PC_API_KEY" in wrong.json()["detail"]
        right = keyed.post("/auth/check", headers={"Authorization": f"Bearer {KEY}"})
        assert right.status_code == 204


def test_a_run_page_for_a_bad_id_is_refused(client: TestClient) -> None:
    assert client.get("/ui/runs/0").status_code == 422
    assert client.get("/ui/runs/abc").status_code == 422
    assert client.get("/ui/nothing").status_code == 404


def test_pages_are_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/ui") for path in paths)
    assert "/auth/check" in paths


def test_static_files_cannot_leave_their_folder(client: TestClient) -> None:
    for path in ("/static/../app/main.py", "/static/%2e%2e/main.py", "/static/..%2fmain.py"):
        assert client.get(path).status_code == 404, path
    assert Path(STATIC_DIR).is_dir()


def page_vocabulary(page: str) -> dict[str, Any]:
    match = VOCABULARY.search(page)
    assert match is not None, "the page carries no vocabulary"
    vocabulary: dict[str, Any] = json.loads(html.unescape(match.group(1)))
    return vocabulary


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_carries_the_names_and_colours_python_defines(
    client: TestClient, path: str
) -> None:
    page = client.get(path).text
    assert page_vocabulary(page) == {
        "statuses": [status.value for status in RunStatus],
        "ended": [status.value for status in RunStatus if status.ended],
        "architectures": [architecture.value for architecture in Architecture],
        "label_colours": list(LABEL_COLOURS),
        "field_ramp": list(FIELD_RAMP),
        "max_page_size": MAX_PAGE_SIZE,
    }
    # And the style sheet's colours, as custom properties.
    assert f"--label0: {LABEL_COLOURS[0]};" in page
    assert f"--label1: {LABEL_COLOURS[1]};" in page
    for name, colour in zip(("low", "mid", "high"), FIELD_RAMP, strict=True):
        assert f"--field-{name}: {colour};" in page


def test_the_status_filter_offers_each_status_python_defines(client: TestClient) -> None:
    page = client.get("/").text
    select = page[page.index('<select id="filter-status"') :]
    select = select[: select.index("</select>")]
    offered = re.findall(r'<option value="([^"]*)">', select)
    assert offered == ["", *(status.value for status in RunStatus)]


def test_every_status_has_its_own_badge() -> None:
    style = (STATIC_DIR / "dashboard" / "style.css").read_text()
    for status in RunStatus:
        assert f".badge.{status.value} {{" in style, status
        assert f".badge.{status.value}::before {{" in style, status


def test_the_page_files_cover_the_templates_scripts_and_style() -> None:
    names = {path.name for path in PAGE_FILES}
    assert {"base.html", "runs.html", "api.js", "plane.js", "style.css"} <= names


@pytest.mark.parametrize("path", PAGE_FILES, ids=[path.name for path in PAGE_FILES])
def test_no_page_file_writes_a_status_list_a_label_colour_or_a_limit_again(path: Path) -> None:
    """Statuses, the labels' colours and the list limit come from Python (the vocabulary each
    page carries); a page file may name one status, never a list of them."""
    text = path.read_text()
    quoted = set(re.findall(r"""["'`]([a-z]+)["'`]""", text))
    statuses = quoted & {status.value for status in RunStatus}
    assert len(statuses) <= 1, f"{path.name} lists statuses {sorted(statuses)}"
    architectures = quoted & {architecture.value for architecture in Architecture}
    assert len(architectures) < len(Architecture), f"{path.name} lists the architectures"
    tints = (*LABEL_COLOURS, FIELD_RAMP[0], FIELD_RAMP[-1])  # the middle one is white
    for colour in tints:
        assert colour.lower() not in text.lower(), f"{path.name} writes {colour}"
    assert f"limit={MAX_PAGE_SIZE}" not in text, f"{path.name} writes the largest page again"
