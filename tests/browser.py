"""Debian's Chromium driven by Playwright, with every request off this machine refused: what
the pages show, they show from the service's own files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    sync_playwright,
)

from app.core.config import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
# What Chromium prints for every 4xx a page's fetch() gets: expected where a test provokes one.
LOAD_FAILURE = "Failed to load resource"


def chromium_or_skip() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests, but Chromium is not installed")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; skipped where it is missing (failed under CI)."""
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """What the pages of one context did that a test must not let pass."""

    outside: list[str] = field(default_factory=list)  # requests off this machine
    errors: list[str] = field(default_factory=list)  # uncaught errors and console errors

    def assert_clean(self) -> None:
        assert self.outside == [], f"the page asked for files off this machine: {self.outside}"
        assert self.errors == [], f"the page reported errors: {self.errors}"


def _offline(watched: Watched) -> Callable[[Route], None]:
    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            watched.outside.append(url)
            route.abort("internetdisconnected")

    return route


def _console(watched: Watched) -> Callable[[ConsoleMessage], None]:
    def listen(message: ConsoleMessage) -> None:
        if message.type == "error" and LOAD_FAILURE not in message.text:
            watched.errors.append(message.text)

    return listen


@contextmanager
def watched_context(
    browser: Browser, width: int = 1280, height: int = 800
) -> Iterator[tuple[BrowserContext, Watched]]:
    watched = Watched()
    context = browser.new_context(viewport={"width": width, "height": height})
    context.route("**/*", _offline(watched))
    context.on("console", _console(watched))
    context.on("weberror", lambda error: watched.errors.append(str(error.error)))
    try:
        yield context, watched
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
