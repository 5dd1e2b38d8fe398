"""Other web pages against the service, in a real Chromium and a real server on loopback: a page
of another origin cannot cancel a run, upload a dataset or show the dashboard in a frame; a
DNS-rebinding page gets the refusal; a name added with PC_ALLOWED_HOSTS works as the service's
own; and the dashboard and Swagger UI run under their content policies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from app.testing.live_server import LiveServer
from tests.browser import chromium_or_skip, screenshot, watched_context

pytestmark = [pytest.mark.live, pytest.mark.browser]

# Names Chromium resolves to 127.0.0.1, as a DNS server would for an attacker's own domains.
ATTACKER = "attacker.test"
REBIND = "rebind.test"
LAN = "lan.test"  # the name the service is told it is served as (PC_ALLOWED_HOSTS)
RESOLVER_RULES = ", ".join(f"MAP {name} 127.0.0.1" for name in (ATTACKER, REBIND, LAN))
# What the issue saw a page of another origin do: a body-less POST, a no-cors multipart upload,
# and the dashboard in a frame of its own page; and a read, which the browser never let it see.
ATTACK_PAGE = """<!doctype html><title>another site</title><body><script>
const service = "%(service)s";
const framed = new Promise((loaded) => {
  const frame = document.createElement("iframe");
  frame.addEventListener("load", loaded);
  frame.src = service + "/";
  document.body.append(frame);
});
const form = new FormData();
const rows = "0.1,0.2,0\\n0.3,0.9,1\\n0.7,0.1,0\\n0.6,0.8,1\\n";
form.append("file", new Blob([rows], { type: "text/csv" }), "planted.csv");
form.append("name", "planted");
const read = fetch(service + "/runs").then(() => "read", () => "not read");
window.attack = Promise.all([
  fetch(service + "/runs/%(run_id)d/cancel", { method: "POST", mode: "no-cors" }),
  fetch(service + "/datasets", { method: "POST", mode: "no-cors", body: form }),
  framed,
]).then(() => read);
</script></body>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # No runner: run 1 stays queued, so it can be cancelled for as long as the test needs.
    folder = tmp_path_factory.mktemp("cross-site")
    with LiveServer(folder, PC_RUNNER_ENABLED="false", PC_ALLOWED_HOSTS=LAN) as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_or_skip()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[f"--host-resolver-rules={RESOLVER_RULES}"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page and the console's errors, without the offline guard of tests/browser.py: its
    names are only loopback's, and these tests need other names for loopback."""
    context = browser.new_context()
    errors: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    context.on("console", listen)
    try:
        yield context.new_page(), errors
    finally:
        context.close()


@pytest.fixture
def attacker(server: LiveServer) -> Iterator[dict[str, Any]]:
    """Another site: a tiny web server of its own, on another loopback port, with a queued run
    of the service's to cancel."""
    run = httpx.post(f"{server.url}/runs", json={"architecture": "complex", "epochs": 200000})
    assert run.status_code == 202, run.text
    run_id: int = run.json()["id"]
    body = (ATTACK_PAGE % {"service": server.url, "run_id": run_id}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://{ATTACKER}:{site.server_port}/", "run_id": run_id}
    finally:
        site.shutdown()
        site.server_close()


def test_another_origin_cannot_cancel_upload_or_frame_the_dashboard(
    page: tuple[Page, list[str]], attacker: dict[str, Any], http: httpx.Client
) -> None:
    browser_page, errors = page
    browser_page.goto(attacker["url"])
    # The answers stay unreadable (the service sends no CORS headers), as they always were.
    assert browser_page.evaluate("window.attack") == "not read"
    run_id = attacker["run_id"]
    assert http.get(f"/runs/{run_id}").json()["status"] == "queued"
    assert "planted" not in [dataset["name"] for dataset in http.get("/datasets").json()["data"]]
    frame = browser_page.frames[1]
    assert frame.evaluate("document.querySelector('a.brand')") is None
    assert any("frame-ancestors 'none'" in error for error in errors), errors
    # A client that is not a browser page still writes: the run is cancelled after all.
    cancelled = http.post(f"/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


def test_a_rebinding_page_is_refused_and_an_allowed_name_works(
    page: tuple[Page, list[str]], server: LiveServer, http: httpx.Client
) -> None:
    browser_page, _ = page
    runs = http.get("/runs").json()["count"]
    for path in ("/", "/runs"):
        refused = browser_page.goto(f"http://{REBIND}:{server.port}{path}")
        assert refused is not None
        assert refused.status == 400
        detail = refused.json()["detail"]
        assert f"Host '{REBIND}:{server.port}'" in detail
        assert f"[::1], {LAN} (any port)" in detail
        assert "PC_ALLOWED_HOSTS" in detail
    for method in ("GET", "POST"):
        response = http.request(
            method, "/runs", headers={"Host": "evil.example"}, json={"epochs": 5}
        )
        assert response.status_code == 400, response.text
        assert "Host 'evil.example'" in response.json()["detail"]
    assert http.get("/runs").json()["count"] == runs

    # Under the name PC_ALLOWED_HOSTS adds, the dashboard shows and its own writes pass.
    shown = browser_page.goto(f"http://{LAN}:{server.port}/")
    assert shown is not None
    assert shown.status == 200
    assert browser_page.locator("a.brand").inner_text() == "Point Classifier"
    status = browser_page.evaluate(
        """() => fetch("/runs", {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify({epochs: 5})}).then((r) => r.status)"""
    )
    assert status == 202
    assert http.get("/runs").json()["count"] == runs + 1


def test_the_dashboard_and_swagger_ui_run_under_their_policies(
    browser: Browser, server: LiveServer
) -> None:
    # Any script, style or picture the policies blocked would be a console error here.
    with watched_context(browser) as (context, watched):
        shown = context.new_page()
        shown.goto(f"{server.url}/")
        shown.locator("#runs-body tr, #runs-empty:not([hidden])").first.wait_for(timeout=30_000)
        screenshot(shown, "runs-under-csp")
        shown.goto(f"{server.url}/docs")
        operation = shown.locator("#operations-runs-create_run_runs_post")
        operation.wait_for(timeout=30_000)
        operation.locator(".opblock-summary").click()
        shown.get_by_role("button", name="Try it out").first.wait_for()
        watched.assert_clean()
