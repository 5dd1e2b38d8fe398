"""The dashboard's pages and files as the server sends them (the browser tests drive them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api.routes.pages import PAGES, STATIC_DIR
from app.core.config import Settings
from app.main import create_app

KEY = "page-key"
UPLOT = STATIC_DIR / "vendor" / "uplot-1.6.32"


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
