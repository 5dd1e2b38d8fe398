"""The Swagger UI in a real Chromium, with every request off this machine blocked:
the pages render from the service's own files, and a newcomer who presses "Try it out" and
"Execute" on `POST /runs` without editing anything gets the tutorial's run, trained."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from app.testing.live_server import LiveServer
from tests.browser import chromium_or_skip, watched_context
from tests.polling import wait_ended

pytestmark = [pytest.mark.live, pytest.mark.browser]


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("docs")) as server:
        yield server


@pytest.fixture(scope="module")
def browser_page(docs_server: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            with watched_context(browser, 1400, 1000) as (context, watched):
                yield context.new_page(), watched.outside
        finally:
            browser.close()


def test_swagger_ui_renders_offline_and_runs_the_tutorial_unedited(
    docs_server: LiveServer, browser_page: tuple[Page, list[str]]
) -> None:
    page, outside = browser_page
    page.goto(f"{docs_server.url}/docs")
    operation = page.locator("#operations-runs-create_run_runs_post")
    operation.wait_for(timeout=30_000)
    assert "Start a training run" in operation.inner_text()
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    prefilled = json.loads(operation.locator("textarea.body-param__text").input_value())
    assert prefilled["architecture"] == "complex"
    assert prefilled["dataset"] == "curve"
    assert prefilled["epochs"] == 20001
    assert prefilled["batch_size"] is None
    assert prefilled["seed"] is None
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table tbody tr.response").first
    status = answer.locator(".response-col_status")
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip() == "202"
    run = json.loads(answer.locator(".response-col_description .microlight").first.inner_text())
    assert outside == [], f"the page asked for files off this machine: {outside}"

    # Reading it back needs no typing either: the run id is filled in with the first run's.
    assert run["id"] == 1
    read = page.locator("#operations-runs-get_run_runs__run_id__get")
    read.locator(".opblock-summary").click()
    read.get_by_role("button", name="Try it out").click()
    read.get_by_role("button", name="Execute").click()
    read_status = read.locator(".live-responses-table tbody tr.response .response-col_status")
    read_status.first.wait_for(timeout=30_000)
    assert read_status.first.inner_text().strip() == "200"

    # The run Swagger started is the tutorial's, and it trains to the end in seconds.
    with httpx.Client(base_url=docs_server.url, timeout=10) as http:
        current = wait_ended(http, run["id"], 180)
    assert current["status"] == "succeeded", current
    assert current["epoch"] == 20001
    assert current["parameter_count"] == 17025
    assert 0.0 < current["final_loss"] < 0.1


def test_redoc_is_not_served(docs_server: LiveServer) -> None:
    # ReDoc's page asks a CDN for its logo even when its script is served locally.
    assert httpx.get(f"{docs_server.url}/redoc").status_code == 404
    assert httpx.get(f"{docs_server.url}/docs").status_code == 200
