"""The dashboard read as a person reads it, in a real Chromium against a real server (issue 24):
the runs table fits a desktop, log axes label small losses, each dialog shows its own fields,
and a sweep's pages show pictures while its runs train and fit a phone. Sizes are measured
with the elements' bounding boxes; screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer
from tests.browser import chromium, screenshot, watched_context
from tests.polling import wait_ended, wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

SIZES = [(1280, 800), (390, 844)]
CURVE_CSV = PROJECT_ROOT / "data" / "curve.csv"
# 64 characters, the longest name a dataset may have.
LONG_NAME = "lab-notebook-week-37-curve-with-extra-label-noise-and-outliers-2"
# Separable with a wide margin: a large learning rate takes the loss below 1e-7.
TINY_CSV = b"0.1,0.1,0\n0.2,0.15,0\n0.9,0.9,1\n0.8,0.85,1\n"
DIVERGING_CSV = b"1e30,1e30,0\n-1e30,2e30,1\n3e30,-1e30,1\n"  # sgd at lr 1 blows up on these

# Every uPlot chart a page builds, kept where a test can read what its axes say (uPlot draws
# the tick labels on a canvas). Run before the page's own scripts, outside its CSP.
KEEP_PLOTS = """(() => {
  let wrapped;
  window.plots = [];
  Object.defineProperty(window, "uPlot", {
    configurable: true,
    get: () => wrapped,
    set(real) {
      wrapped = function (...args) {
        const plot = new real(...args);
        window.plots.push(plot);
        return plot;
      };
      Object.assign(wrapped, real);
      wrapped.prototype = real.prototype;
    },
  });
})();"""
# The y axis' tick labels of the newest chart inside `selector`, as drawn (null: unlabelled).
Y_LABELS = """(selector) => {
  const plot = window.plots.filter((p) => p.root.closest(selector)).at(-1);
  return plot?.axes[1]._values?.filter((label) => label !== null) ?? [];
}"""
# Every cell, header and button of a table that sticks out of the viewport or of the table's
# own scrolling container, with where it ends (a header hidden for screen readers only, as a
# table of cards has, is not looked at).
OUTSIDE = """(table) => {
  const wrap = table.closest(".table-wrap") ?? table.parentElement;
  const limit = Math.min(window.innerWidth, wrap.getBoundingClientRect().right);
  const shown = (e) => e.getClientRects().length && e.getBoundingClientRect().width > 1;
  return [...table.querySelectorAll("th, td, button")]
    .filter((e) => shown(e) && (!e.closest("thead") || shown(e.closest("thead"))))
    .map((e) => [e.dataset.label ?? e.textContent.trim().slice(0, 30), e.getBoundingClientRect()])
    .filter(([, box]) => box.left < 0 || box.right > limit + 0.5)
    .map(([name, box]) => `${name}: ${Math.round(box.left)}..${Math.round(box.right)} > ${limit}`);
}"""
# Images shown without a picture in them (broken, or not yet loaded), looked for every 50 ms
# from before the page's own scripts run.
WATCH_IMAGES = """(() => {
  window.brokenImages = [];
  setInterval(() => {
    for (const image of document.querySelectorAll("img")) {
      if (image.checkVisibility() && !(image.complete && image.naturalWidth > 0)) {
        window.brokenImages.push(`${image.id} ${image.getAttribute("src")}`);
      }
    }
  }, 50);
})();"""
# How many pixels of an image are the probability field's blue tint (P near 1): a boundary
# drawn, not only panels that wait.
FIELD_PIXELS = """(image) => {
  if (!image.complete || !image.naturalWidth) return 0;
  const canvas = document.createElement("canvas");
  [canvas.width, canvas.height] = [image.naturalWidth, image.naturalHeight];
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let tinted = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 2] > 200 && data[i + 2] - data[i] > 60 && data[i + 1] > 150) tinted++;
  }
  return tinted;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("readability"), PC_WORKERS="2") as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def started(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/runs", json=body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


def uploaded(http: httpx.Client, name: str, data: bytes) -> None:
    response = http.post("/datasets", files={"file": (f"{name}.csv", data)}, data={"name": name})
    assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def ended_runs(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """What a learner's table holds after an afternoon: the tutorial's network on a dataset
    with a long name, a deep mlp, a run that failed with an error, a cancelled one, and one
    whose loss went down to about 1e-7."""
    uploaded(http, LONG_NAME, CURVE_CSV.read_bytes())
    uploaded(http, "tiny", TINY_CSV)
    uploaded(http, "huge", DIVERGING_CSV)
    bodies = {
        "complex": {"dataset": LONG_NAME, "epochs": 300, "checkpoint_every": 100},
        "deep": {
            "dataset": LONG_NAME,
            "architecture": "mlp",
            "hidden_layers": [128, 128, 64, 64, 32],
            "activation": "tanh",
            "epochs": 300,
            "learning_rate": 0.01,
            "optimizer": "rmsprop",
        },
        "failed": {
            "dataset": "huge",
            "architecture": "simple",
            "epochs": 500,
            "optimizer": "sgd",
            "learning_rate": 1.0,
        },
        "tiny": {
            "dataset": "tiny",
            "architecture": "simple",
            "epochs": 2000,
            "learning_rate": 5.0,
            "seed": 1,
        },
    }
    runs = {name: started(http, **body) for name, body in bodies.items()}
    ended = {name: wait_ended(http, run["id"], 180) for name, run in runs.items()}
    assert ended["failed"]["status"] == "failed"
    assert ended["failed"]["error"]
    assert ended["tiny"]["final_loss"] < 1e-6
    cancelled = started(http, dataset=LONG_NAME, epochs=1_000_000, checkpoint_every=100_000)
    wait_for(lambda: http.get(f"/runs/{cancelled['id']}").json()["epoch"] > 0, 60)
    http.post(f"/runs/{cancelled['id']}/cancel")
    ended["cancelled"] = wait_ended(http, cancelled["id"], 30)
    return ended


@pytest.fixture
def training(http: httpx.Client, ended_runs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A run that trains for as long as the test looks at it, with the widest numbers."""
    run = started(http, dataset=LONG_NAME, epochs=1_000_000, checkpoint_every=100_000)
    wait_for(lambda: http.get(f"/runs/{run['id']}").json()["epoch"] > 0, 60)
    yield run
    http.post(f"/runs/{run['id']}/cancel")
    wait_ended(http, run["id"], 30)


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with watched_context(browser) as (context, watched):
        context.add_init_script(KEEP_PLOTS)
        yield context.new_page()
        watched.assert_clean()


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_runs_table_fits_the_screen_with_every_column_and_button(
    server: LiveServer,
    browser: Browser,
    http: httpx.Client,
    ended_runs: dict[str, Any],
    training: dict[str, Any],
    width: int,
    height: int,
) -> None:
    with watched_context(browser, width, height) as (context, watched):
        page = context.new_page()
        page.goto(f"{server.url}/")
        rows = page.locator("#runs-body tr")
        expect(rows).to_have_count(http.get("/runs").json()["count"])
        expect(page.locator(f'tr[data-run="{training["id"]}"]')).to_have_attribute(
            "data-status", "running"
        )
        table = page.locator("#runs-table")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        wrap = page.locator("#runs-table").locator("xpath=..")
        assert wrap.evaluate("(e) => e.scrollWidth <= e.clientWidth"), wrap.evaluate(
            "(e) => [e.scrollWidth, e.clientWidth]"
        )
        assert table.evaluate(OUTSIDE) == []
        # Every run's buttons are on the screen, not behind a scroll.
        for row in rows.all():
            for button in row.get_by_role("button").all():
                expect(button).to_be_visible()
                box = button.bounding_box()
                assert box is not None
                assert box["x"] >= 0
                assert box["x"] + box["width"] <= width
        failed = page.locator(f'tr[data-run="{ended_runs["failed"]["id"]}"]')
        expect(failed).to_have_attribute("data-status", "failed")
        screenshot(page, f"runs-realistic-{width}x{height}")
        watched.assert_clean()


def test_a_finished_runs_chart_opens_in_log_scale_with_small_losses_labelled(
    server: LiveServer, page: Page, ended_runs: dict[str, Any]
) -> None:
    tiny = ended_runs["tiny"]
    page.goto(f"{server.url}/ui/runs/{tiny['id']}")
    chart = page.locator("#loss-chart")
    expect(chart).to_have_attribute("data-points", re.compile(r"[1-9]"))
    expect(chart).to_have_attribute("data-scale", "log")
    expect(page.get_by_label("Log scale")).to_be_checked()
    labels = wait_for(lambda: page.evaluate(Y_LABELS, "#loss-chart"), 10)
    assert_readable_log_labels(labels, below=1e-6)
    screenshot(page, "run-log-scale")

    # Compared with another run: the same labels on the overlaid curves.
    page.goto(f"{server.url}/ui/compare?runs={tiny['id']},{ended_runs['complex']['id']}")
    expect(page.locator("#compare-chart")).to_have_attribute("data-scale", "log")
    labels = wait_for(lambda: page.evaluate(Y_LABELS, "#compare-chart"), 10)
    assert_readable_log_labels(labels, below=1e-6)
    expect(page.locator("#compare-grid canvas[data-epoch]")).to_have_count(2)
    screenshot(page, "compare-log-scale")


def assert_readable_log_labels(labels: list[str], below: float) -> None:
    """Each label a different positive number, the small ones in scientific notation."""
    values = [float(label) for label in labels]
    assert all(value > 0 for value in values), labels
    assert len(set(values)) == len(values), labels
    assert min(values) < below, labels
    for label, value in zip(labels, values, strict=True):
        if value < 1e-3:
            assert re.fullmatch(r"\d(\.\d+)?e-\d+", label), labels


def test_a_running_runs_chart_opens_in_linear_scale(
    server: LiveServer, page: Page, training: dict[str, Any]
) -> None:
    page.goto(f"{server.url}/ui/runs/{training['id']}")
    expect(page.locator("#run-badge")).to_have_text("running")
    expect(page.locator("#loss-chart")).to_have_attribute("data-points", re.compile(r"[1-9]"))
    expect(page.locator("#loss-chart")).to_have_attribute("data-scale", "linear")
    expect(page.get_by_label("Log scale")).not_to_be_checked()


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_each_dialog_shows_only_its_own_fields(
    server: LiveServer,
    browser: Browser,
    http: httpx.Client,
    ended_runs: dict[str, Any],
    width: int,
    height: int,
) -> None:
    run = ended_runs["complex"]
    dialog_inputs = "#confirm-dialog input"
    with watched_context(browser, width, height) as (context, watched):
        page = context.new_page()
        for path, names in (
            (f"/ui/runs/{run['id']}", ("Resume", "Delete")),
            ("/", (f"resume run {run['id']}", f"delete run {run['id']}")),
        ):
            page.goto(f"{server.url}{path}")
            resume, delete = (page.get_by_role("button", name=name, exact=True) for name in names)
            resume.click()
            dialog = page.locator("#confirm-dialog")
            expect(dialog).to_be_visible()
            expect(page.get_by_label("Epochs more")).to_be_visible()
            page.get_by_role("button", name="Not now").click()
            expect(dialog).to_be_hidden()

            delete.click()
            expect(page.locator("#confirm-text")).to_contain_text(f"Delete run {run['id']}")
            visible = [e for e in page.locator(dialog_inputs).all() if e.is_visible()]
            assert visible == [], [e.evaluate("(e) => e.outerHTML") for e in visible]
            expect(page.locator("#confirm-field")).to_be_hidden()
            screenshot(page, f"delete-dialog-{'run' if 'ui' in path else 'runs'}-{width}x{height}")
            page.get_by_role("button", name="Keep it").click()
            expect(dialog).to_be_hidden()
        watched.assert_clean()
    assert http.get(f"/runs/{run['id']}").status_code == 200  # kept, both times


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_sweeps_pictures_show_while_it_trains_and_its_tables_fit(
    server: LiveServer,
    browser: Browser,
    http: httpx.Client,
    ended_runs: dict[str, Any],
    width: int,
    height: int,
) -> None:
    """The README's exercise, trained for longer than the test looks: its pictures show while
    it trains (a run without a checkpoint is a panel that waits), the page never shows a
    broken image, and its tables fit the screen."""
    body = {
        "dataset": "curve",
        "name": f"exercise-{width}",
        "base": {"architecture": "mlp", "epochs": 1_000_000, "seed": 1, "checkpoint_every": 200},
        "grid": {
            "learning_rate": [0.003, 0.03],
            "hidden_layers": [[8], [64, 64]],
            "activation": ["relu", "tanh", "sigmoid", "none"],
        },
    }
    sweep = http.post("/sweeps", json=body).json()
    try:
        with watched_context(browser, width, height) as (context, watched):
            context.add_init_script(WATCH_IMAGES)
            page = context.new_page()
            page.goto(f"{server.url}/ui/sweeps/{sweep['id']}")
            expect(page.locator("#sweep-body tr")).to_have_count(16)
            for picture in ("#sweep-boundaries", "#sweep-losses"):
                expect(page.locator(picture)).to_be_visible(timeout=60_000)
            # Boundaries drawn while its runs still train (they train for a million epochs).
            boundaries = page.locator("#sweep-boundaries")
            wait_for(lambda: boundaries.evaluate(FIELD_PIXELS) > 1000, 60)
            assert "running" in [
                run["status"] for run in http.get(f"/sweeps/{sweep['id']}").json()["runs"]
            ]
            for table in page.locator("table").all():
                assert table.evaluate(OUTSIDE) == []
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            screenshot(page, f"sweep-training-{width}x{height}")
            http.post(f"/sweeps/{sweep['id']}/cancel")
            expect(page.locator("#sweep-body .badge.running")).to_have_count(0, timeout=30_000)
            page.wait_for_timeout(2_500)
            assert page.evaluate("window.brokenImages") == []
            screenshot(page, f"sweep-ended-{width}x{height}")

            page.goto(f"{server.url}/ui/sweeps")
            expect(page.locator(f'#sweeps-body tr[data-sweep="{sweep["id"]}"]')).to_be_visible()
            assert page.locator("#sweeps-table").evaluate(OUTSIDE) == []
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            screenshot(page, f"sweeps-{width}x{height}")
            watched.assert_clean()
    finally:
        http.post(f"/sweeps/{sweep['id']}/cancel")
