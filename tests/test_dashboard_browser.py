"""The dashboard in a real Chromium against a real server: what a person does on each page,
offline, at a desktop's and a phone's size. Screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app.core.config import PROJECT_ROOT
from app.testing.live_server import LiveServer
from app.vocabulary import LABEL_COLOURS
from tests.browser import chromium, screenshot, watched_context
from tests.polling import wait_ended, wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

KEY = "dashboard-key"
CURVE_CSV = PROJECT_ROOT / "data" / "curve.csv"
TUTORIAL_EPOCHS = 20001
# Pixels of each label's colour (app/vocabulary.py's, exactly as the pages must draw them).
LABEL_PIXELS = """([selector, colours]) => {
  const canvas = document.querySelector(selector);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = colours.map(() => 0);
  for (let i = 0; i < data.length; i += 4) {
    colours.forEach(([r, g, b], label) => {
      if (data[i] === r && data[i + 1] === g && data[i + 2] === b) counts[label]++;
    });
  }
  return counts;
}"""
LABEL_RGB = [[int(colour[at : at + 2], 16) for at in (1, 3, 5)] for colour in LABEL_COLOURS]
# Controls a person cannot name: no <label>, no aria-label, or a button with no text.
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((e) => e.type !== "hidden")
  .filter((e) => e.tagName === "BUTTON"
    ? !(e.textContent.trim() || e.getAttribute("aria-label"))
    : !(e.labels?.length || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby")))
  .map((e) => e.outerHTML.slice(0, 120))"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("dashboard"), PC_WORKERS="2") as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    with watched_context(browser) as (context, watched):
        yield context.new_page()
        watched.assert_clean()


def started(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/runs", json=body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


def canvas_picture(page: Page, selector: str) -> str:
    picture: str = page.evaluate("(s) => document.querySelector(s).toDataURL()", selector)
    return picture


def upload(page: Page, path: Path, name: str) -> None:
    page.set_input_files("#upload-file", str(path))
    page.fill("#upload-name", name)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(f'#gallery [data-dataset="{name}"]')).to_be_visible()


def test_upload_by_picker_and_by_drop_and_see_the_services_message(
    server: LiveServer, page: Page, http: httpx.Client, tmp_path: Path
) -> None:
    page.goto(f"{server.url}/ui/datasets")
    expect(page.locator('#gallery [data-dataset="curve"]')).to_be_visible()
    upload(page, CURVE_CSV, "picked")
    expect(page.locator("#upload-error")).to_have_text("Uploaded 'picked': 200 points.")
    assert (
        http.get("/datasets/picked").json()["sha256"]
        == http.get("/datasets/curve").json()["sha256"]
    )
    # A thumbnail shows both labels' markers.
    wait_for(
        lambda: min(page.evaluate(LABEL_PIXELS, ['[data-dataset="picked"] canvas', LABEL_RGB])) > 0,
        10,
    )

    # Dropped on the zone, a file is uploaded under its own name.
    page.evaluate(
        """(text) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([text], "dropped.csv", { type: "text/csv" }));
          const zone = document.getElementById("dropzone");
          for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
          }
        }""",
        CURVE_CSV.read_text(),
    )
    expect(page.locator('#gallery [data-dataset="dropped"]')).to_be_visible()
    assert http.get("/datasets/dropped").json()["n_points"] == 200

    # A bad file: the service's own message, as it wrote it.
    bad = b"0.1,0.2,0\n0.3,nan,1\n"
    refused = http.post("/datasets", files={"file": ("bad.csv", bad, "text/csv")})
    assert refused.status_code == 422
    (tmp_path / "bad.csv").write_bytes(bad)
    page.set_input_files("#upload-file", str(tmp_path / "bad.csv"))
    page.fill("#upload-name", "")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_have_text(refused.json()["detail"])
    upload(page, CURVE_CSV, "picked")  # a name taken: the 409's message
    expect(page.locator("#upload-error")).to_contain_text("a dataset named 'picked' exists")
    screenshot(page, "datasets-upload-error")


def test_generate_with_a_preview(server: LiveServer, page: Page, http: httpx.Client) -> None:
    page.goto(f"{server.url}/ui/datasets")
    expect(page.locator("#preview-note")).to_contain_text("moons: 400 points")
    page.select_option("#g-kind", "spiral")
    page.fill("#g-n", "300")
    expect(page.locator("#preview-note")).to_contain_text("spiral: 300 points, noise 0.02, seed 1")
    assert min(page.evaluate(LABEL_PIXELS, ["#preview", LABEL_RGB])) > 0
    assert http.get("/datasets/spiral-300").status_code == 404  # a preview stores nothing
    page.fill("#g-noise", "5")
    expect(page.locator("#g-noise-error")).to_contain_text("less than or equal to 1")
    page.fill("#g-noise", "")
    page.fill("#g-name", "spiral-300")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.locator('#gallery [data-dataset="spiral-300"]')).to_be_visible()
    stored = http.get("/datasets/spiral-300").json()
    assert stored["params"] == {"kind": "spiral", "n": 300, "noise": 0.02, "seed": 1}
    page.get_by_role("button", name="Create dataset").click()  # the same name again
    expect(page.locator("#generate-error")).to_contain_text("a dataset named 'spiral-300' exists")
    screenshot(page, "datasets")


def test_the_form_shows_the_services_message_next_to_the_field(
    server: LiveServer, page: Page, http: httpx.Client
) -> None:
    before = http.get("/runs").json()["count"]
    page.goto(f"{server.url}/ui/new")
    expect(page.locator('input[name="dataset"][value="curve"]')).to_be_checked()
    page.check("#arch-mlp")
    page.fill("#f-hidden_layers", "64, 5000")
    page.fill("#f-learning_rate", "0")
    page.click("#start-run")
    expect(page.locator("#f-hidden_layers-error")).to_have_text(
        "width 2: Input should be less than or equal to 1024"
    )
    expect(page.locator("#f-learning_rate-error")).to_have_text("Input should be greater than 0")
    expect(page.locator("#f-hidden_layers")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-hidden_layers")).to_be_focused()
    screenshot(page, "new-run-field-error")
    assert page.url.endswith("/ui/new")
    assert http.get("/runs").json()["count"] == before  # nothing was started

    page.fill("#f-hidden_layers", "16, 16")
    page.fill("#f-learning_rate", "0.01")
    page.fill("#f-epochs", "500")
    page.fill("#f-seed", "abc")  # the service explains, not the browser
    page.click("#start-run")
    expect(page.locator("#f-seed-error")).to_contain_text("expected a JSON number, got str")
    page.fill("#f-seed", "7")
    page.fill("#f-validation_split", "0.25")
    page.select_option("#f-activation", "tanh")
    page.select_option("#f-loss", "mse")
    page.locator("#f-seed").press("Enter")  # the keyboard submits the form too
    page.wait_for_url(re.compile(r"/ui/runs/\d+$"))
    run = http.get(f"/runs/{page.url.rsplit('/', 1)[1]}").json()
    assert (run["architecture"], run["hidden_layers"], run["activation"]) == (
        "mlp",
        [16, 16],
        "tanh",
    )
    assert (run["epochs"], run["learning_rate"], run["seed"]) == (500, 0.01, 7)
    assert (run["validation_split"], run["loss_function"]) == (0.25, "mse")
    wait_ended(http, run["id"], 120)

    # Its page: training and validation curves, and the log scale on a tick (it opens in log
    # scale where the run had ended before the page first read it: a race with 500 epochs).
    expect(page.locator("#run-badge")).to_have_text("succeeded", timeout=30_000)
    chart = page.locator("#loss-chart")
    expect(chart).to_have_attribute("data-curves", "2")
    expect(chart).to_have_attribute("data-points", "500")
    expect(chart).to_contain_text("validation loss")
    page.get_by_label("Log scale").set_checked(False)
    expect(chart).to_have_attribute("data-scale", "linear")
    linear = canvas_picture(page, "#loss-chart canvas")
    page.get_by_label("Log scale").check()
    expect(chart).to_have_attribute("data-scale", "log")
    assert canvas_picture(page, "#loss-chart canvas") != linear
    expect(chart).to_have_attribute("data-points", "500")


def test_a_newcomer_uploads_trains_watches_scrubs_and_compares(
    server: LiveServer, browser: Browser, http: httpx.Client
) -> None:
    """The issue's end to end: curve.csv uploaded, the tutorial's network trained from the
    form unedited, watched live in the table and on its page, its boundary scrubbed from
    epoch 0 to the end, and compared with the simple model."""
    with watched_context(browser) as (context, watched):
        page = context.new_page()
        page.goto(f"{server.url}/")
        page.get_by_role("link", name="Datasets").click()
        upload(page, CURVE_CSV, "my-curve")
        page.locator('[data-dataset="my-curve"]').get_by_role("link", name="Train on it").click()
        expect(page.locator('input[name="dataset"][value="my-curve"]')).to_be_checked()
        expect(page.locator("#arch-complex")).to_be_checked()
        screenshot(page, "new-run")
        page.click("#start-run")
        page.wait_for_url(re.compile(r"/ui/runs/\d+$"))
        run_id = int(page.url.rsplit("/", 1)[1])

        # Both the table (another tab) and the run's page follow it as it trains.
        table = context.new_page()
        table.goto(f"{server.url}/")
        row = table.locator(f'tr[data-run="{run_id}"]')
        expect(row).to_be_visible()
        table_epochs: set[int] = set()
        curve_lengths: set[int] = set()
        deadline = time.monotonic() + 300
        while row.get_attribute("data-status") != "succeeded":
            assert time.monotonic() < deadline, "the run did not finish in 300 s"
            if row.get_attribute("data-status") == "running":
                table_epochs.add(int(row.locator("progress").get_attribute("value") or 0))
                curve_lengths.add(
                    int(page.locator("#loss-chart").get_attribute("data-points") or 0)
                )
                screenshot(page, "run-training") if len(curve_lengths) == 3 else None
            time.sleep(0.3)
        assert len(table_epochs - {0, TUTORIAL_EPOCHS}) >= 2, table_epochs
        assert len(curve_lengths - {0}) >= 2, curve_lengths
        expect(row.locator(".badge")).to_have_text("succeeded")
        screenshot(table, "runs")
        expect(page.locator("#run-badge")).to_have_text("succeeded", timeout=30_000)
        expect(page.locator("#run-log")).to_contain_text("Epoch 20000, Loss: ")
        run = http.get(f"/runs/{run_id}").json()
        assert (run["epoch"], run["parameter_count"], run["dataset"]) == (20001, 17025, "my-curve")

        # The slider runs over the 22 checkpoints, by keyboard too; the field changes.
        slider = page.locator("#checkpoint-slider")
        expect(slider).to_have_attribute("max", "21")
        expect(page.locator("#plane")).to_have_attribute("data-epoch", str(TUTORIAL_EPOCHS))
        last = canvas_picture(page, "#plane")
        slider.focus()
        page.keyboard.press("Home")
        expect(page.locator("#plane")).to_have_attribute("data-epoch", "0")
        expect(page.locator("#checkpoint-epoch")).to_have_text("epoch 0")
        first = canvas_picture(page, "#plane")
        assert first != last
        page.keyboard.press("End")
        page.keyboard.press("ArrowLeft")
        expect(page.locator("#plane")).to_have_attribute("data-epoch", "20000")
        page.keyboard.press("End")
        expect(page.locator("#plane")).to_have_attribute("data-epoch", str(TUTORIAL_EPOCHS))
        assert canvas_picture(page, "#plane") == last
        # Play: from the start through every checkpoint to the end.
        page.keyboard.press("Home")
        expect(page.locator("#plane")).to_have_attribute("data-epoch", "0")
        page.evaluate(
            """() => {
              window.shown = [];
              const plane = document.getElementById("plane");
              new MutationObserver(() => window.shown.push(Number(plane.dataset.epoch)))
                .observe(plane, { attributes: true, attributeFilter: ["data-epoch"] });
            }"""
        )
        play = page.get_by_role("button", name="Play")
        play.click()
        expect(page.get_by_role("button", name="Pause")).to_be_visible()
        expect(page.locator("#plane")).to_have_attribute(
            "data-epoch", str(TUTORIAL_EPOCHS), timeout=30_000
        )
        expect(play).to_be_visible()
        assert page.evaluate("window.shown") == [*range(1000, 20001, 1000), TUTORIAL_EPOCHS]

        # A click on the plane: /predict's probability at that spot, from the epoch shown.
        box = page.locator("#plane").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.25)
        prediction = page.locator("#prediction")
        expect(prediction).to_contain_text("P(label 1) = ")
        x, y = (
            float(prediction.get_attribute("data-x") or "nan"),
            float(prediction.get_attribute("data-y") or "nan"),
        )
        asked = http.post(
            "/predict", json={"run_id": run_id, "points": [[x, y]], "epoch": TUTORIAL_EPOCHS}
        ).json()
        assert prediction.get_attribute("data-epoch") == str(TUTORIAL_EPOCHS)
        assert float(prediction.get_attribute("data-probability") or "nan") == pytest.approx(
            asked["probabilities"][0], abs=1e-9
        )
        page.fill("#predict-x", "0.2")
        page.fill("#predict-y", "0.9")
        page.get_by_role("button", name="Predict").click()
        expect(prediction).to_contain_text("at x = 0.200, y = 0.900")
        screenshot(page, "run")
        for link in page.locator("#run-files a:not([href$='.gif'])").all()[:8]:
            href = link.get_attribute("href") or ""
            assert http.get(href).status_code == 200, href

        # The simple model on the same data, then both side by side.
        simple = started(http, dataset="my-curve", architecture="simple")
        assert wait_ended(http, simple["id"], 120)["status"] == "succeeded"
        table.reload()
        for chosen in (run_id, simple["id"]):
            table.get_by_label(f"select run {chosen} for comparing").check()
        table.get_by_role("button", name="Compare selected (2)").click()
        table.wait_for_url(re.compile(r"/ui/compare\?runs="))
        figures = table.locator("#compare-grid canvas")
        expect(figures).to_have_count(2)
        expect(table.locator("#compare-chart")).to_have_attribute("data-curves", "2")
        for figure in figures.all():
            expect(figure).to_have_attribute("data-epoch", str(TUTORIAL_EPOCHS))
        table.locator("#compare-slider").focus()
        table.keyboard.press("Home")
        for figure in figures.all():
            expect(figure).to_have_attribute("data-epoch", "0")
        table.keyboard.press("End")
        expect(table.locator("#compare-grid figcaption").first).to_contain_text("epoch 20001")
        screenshot(table, "compare")
        watched.assert_clean()


def test_cancel_resume_and_delete_from_the_table(
    server: LiveServer, page: Page, http: httpx.Client
) -> None:
    run = started(http, epochs=1_000_000, checkpoint_every=50_000)
    wait_for(lambda: http.get(f"/runs/{run['id']}").json()["status"] == "running", 60)

    # Its page, while it trains: the event stream and about one other request a second.
    page.goto(f"{server.url}/ui/runs/{run['id']}")
    expect(page.locator("#run-badge")).to_have_text("running")
    # Its buttons keep the keyboard's focus while the page updates.
    page.get_by_role("button", name="Cancel").focus()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.wait_for_timeout(5_000)
    reads = [url for url in asked if not url.endswith("/events")]
    assert 3 <= len(reads) <= 7, reads
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    expect(page.locator("#loss-chart")).not_to_have_attribute("data-points", "0")

    page.goto(f"{server.url}/")
    row = page.locator(f'tr[data-run="{run["id"]}"]')
    expect(row).to_have_attribute("data-status", "running")
    # By keyboard: the table is drawn again every second, and the focus stays where it was.
    row.get_by_role("button", name=f"cancel run {run['id']}").focus()
    page.wait_for_timeout(2_500)
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == f"cancel run {run['id']}"
    page.keyboard.press("Enter")
    expect(row).to_have_attribute("data-status", "cancelled", timeout=30_000)
    assert http.get(f"/runs/{run['id']}").json()["status"] == "cancelled"
    # An ended run's page reads what it shows once, then asks nothing more.
    page.goto(f"{server.url}/ui/runs/{run['id']}")
    expect(page.locator("#run-badge")).to_have_text("cancelled")
    page.wait_for_timeout(2_000)
    asked.clear()
    page.wait_for_timeout(3_000)
    assert asked == []
    page.goto(f"{server.url}/")
    last_checkpoint = http.get(f"/runs/{run['id']}/checkpoints").json()[-1]["epoch"]

    row.get_by_role("button", name=f"resume run {run['id']}").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    page.get_by_label("Epochs more").fill("200")
    with page.expect_response(lambda response: response.url.endswith("/resume")) as answer:
        page.get_by_role("button", name="Resume", exact=True).click()
    assert answer.value.status == 202, answer.value.text()
    expect(dialog).to_be_hidden()
    resumed = wait_ended(http, run["id"], 120)
    assert resumed["status"] == "succeeded"
    assert resumed["epochs"] == last_checkpoint + 200
    expect(row).to_have_attribute("data-status", "succeeded", timeout=15_000)

    # Delete asks first; keeping it keeps it.
    row.get_by_role("button", name=f"delete run {run['id']}").click()
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(f"Delete run {run['id']}")
    page.get_by_role("button", name="Keep it").click()
    expect(dialog).to_be_hidden()
    assert http.get(f"/runs/{run['id']}").status_code == 200
    row.get_by_role("button", name=f"delete run {run['id']}").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(row).to_have_count(0)
    assert http.get(f"/runs/{run['id']}").status_code == 404


def test_filters_and_pages(server: LiveServer, page: Page, http: httpx.Client) -> None:
    for _ in range(3):
        started(http, dataset="linear", architecture="simple", epochs=50)
    page.goto(f"{server.url}/")
    page.select_option("#filter-dataset", "linear")
    expect(page.locator("#runs-body tr")).to_have_count(3)
    assert page.url.endswith("?dataset=linear")
    for row in page.locator("#runs-body tr").all():
        expect(row.locator("td").nth(3)).to_have_text("linear")
    page.select_option("#filter-status", "failed")
    expect(page.locator("#runs-empty")).to_be_visible()
    page.select_option("#filter-status", "")
    page.select_option("#filter-dataset", "")
    total = http.get("/runs").json()["count"]
    expect(page.locator("#page-info")).to_have_text(f"Runs 1\u2013{min(total, 20)} of {total}")


def test_a_sweeps_runs_verdicts_and_pictures(
    server: LiveServer, page: Page, http: httpx.Client
) -> None:
    body = {
        "dataset": "curve",
        "base": {"epochs": 300, "checkpoint_every": 100, "seed": 2},
        "grid": {"architecture": ["simple", "complex"], "learning_rate": [0.01]},
        "name": "shapes",
    }
    sweep = http.post("/sweeps", json=body).json()
    page.goto(f"{server.url}/ui/sweeps")
    row = page.locator(f'#sweeps-body tr[data-sweep="{sweep["id"]}"]')
    expect(row).to_contain_text("shapes")
    row.get_by_role("link", name=f"#{sweep['id']}").click()
    page.wait_for_url(f"**/ui/sweeps/{sweep['id']}")
    runs = page.locator("#sweep-body tr")
    expect(runs).to_have_count(2)
    # Live until its runs end, then the verdicts and both pictures.
    expect(runs.first).to_have_attribute("data-verdict", "underfit", timeout=120_000)
    expect(runs.nth(1)).to_have_attribute("data-verdict", re.compile("learned|underfit"))
    for picture in ("#sweep-boundaries", "#sweep-losses"):
        expect(page.locator(picture)).to_be_visible()
        page.wait_for_function(
            "(s) => document.querySelector(s).complete && document.querySelector(s).naturalWidth",
            arg=picture,
        )
    screenshot(page, "sweep")
    runs.first.get_by_role("link").click()
    page.wait_for_url(f"**/ui/runs/{sweep['runs'][0]['id']}")
    expect(page.locator("#run-badge")).to_have_text("succeeded")


def test_a_sweep_started_from_its_form_with_the_services_own_checks(
    server: LiveServer, page: Page, http: httpx.Client
) -> None:
    before = http.get("/sweeps").json()["count"]
    page.goto(f"{server.url}/ui/sweeps")
    # The form holds the tutorial's exercise, as the API's example writes it.
    expect(page.get_by_label("axis 2: values")).to_have_value("[8], [64, 64]")
    expect(page.locator("#sweep-count")).to_have_text("16 runs (2 x 2 x 4)")
    expect(page.locator("#s-dataset")).to_have_value("curve")
    page.get_by_label("axis 1: values").fill("0.003, 20")
    page.get_by_label("axis 3: values").fill("relu, none")
    expect(page.locator("#sweep-count")).to_have_text("8 runs (2 x 2 x 2)")
    page.get_by_label("setting 2: value").fill("100")  # epochs
    page.get_by_role("button", name="Start the sweep").click()
    # The service's message as it writes it, for the same body posted by hand.
    body = {
        "dataset": "curve",
        "name": "exercise",
        "base": {"architecture": "mlp", "epochs": 100, "seed": 1},
        "grid": {
            "learning_rate": [0.003, 20],
            "hidden_layers": [[8], [64, 64]],
            "activation": ["relu", "none"],
        },
    }
    refused = http.post("/sweeps", json=body)
    assert refused.status_code == 422
    expect(page.locator("#sweep-form-error")).to_have_text(refused.json()["detail"])
    assert http.get("/sweeps").json()["count"] == before  # nothing was started
    screenshot(page, "sweep-form-error")

    page.get_by_role("button", name="remove axis 1").click()
    page.get_by_role("button", name="Add a setting").click()
    page.get_by_label("setting 4: parameter").select_option("learning_rate")
    page.get_by_label("setting 4: value").fill("0.03")
    expect(page.locator("#sweep-count")).to_have_text("4 runs (2 x 2)")
    page.get_by_label("setting 4: value").press("Enter")  # the keyboard submits the form too
    page.wait_for_url(re.compile(r"/ui/sweeps/\d+$"))
    sweep = http.get(f"/sweeps/{page.url.rsplit('/', 1)[1]}").json()
    assert sweep["base"] == {"architecture": "mlp", "epochs": 100, "seed": 1, "learning_rate": 0.03}
    assert sweep["grid"] == {"hidden_layers": [[8], [64, 64]], "activation": ["relu", "none"]}
    assert (sweep["name"], sweep["dataset"], len(sweep["runs"])) == ("exercise", "curve", 4)
    http.post(f"/sweeps/{sweep['id']}/cancel")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_pages_fit_the_screen_and_name_every_control(
    server: LiveServer, browser: Browser, http: httpx.Client, width: int, height: int
) -> None:
    finished = http.get("/runs", params={"status": "succeeded", "limit": 2}).json()["data"]
    if len(finished) < 2:
        for body in ({"architecture": "simple", "epochs": 300}, {"epochs": 300}):
            finished.append(wait_ended(http, started(http, **body)["id"], 120))
    ids = [run["id"] for run in finished[:2]]
    sweeps = http.get("/sweeps").json()["data"]
    if not sweeps:
        grid = {"learning_rate": [0.01, 0.1]}
        base = {"architecture": "simple", "epochs": 100}
        sweeps = [http.post("/sweeps", json={"base": base, "grid": grid}).json()]
    pages = {
        "runs": ("/", "#runs-body tr"),
        "new-run": ("/ui/new", "#dataset-choices input"),
        "run": (f"/ui/runs/{ids[0]}", "#plane[data-epoch]"),
        "datasets": ("/ui/datasets", "#gallery article"),
        "compare": (f"/ui/compare?runs={ids[0]},{ids[1]}", "#compare-grid canvas[data-epoch]"),
        "sweeps": ("/ui/sweeps", "#sweeps-body tr"),
        "sweep": (f"/ui/sweeps/{sweeps[0]['id']}", "#sweep-body tr"),
    }
    with watched_context(browser, width, height) as (context, watched):
        page = context.new_page()
        for name, (path, ready) in pages.items():
            page.goto(f"{server.url}{path}")
            page.locator(ready).first.wait_for(state="attached")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            assert page.evaluate(UNLABELLED) == [], name
            assert page.locator("[role=button], [onclick]").count() == 0, name
            screenshot(page, f"{name}-{width}x{height}")
        watched.assert_clean()


@pytest.mark.parametrize("protect_reads", [True, False], ids=["reads-closed", "writes-only"])
def test_the_key_is_asked_for_once_and_sent_as_a_bearer_token(
    browser: Browser, tmp_path: Path, protect_reads: bool
) -> None:
    env = {"PC_API_KEY": KEY, "PC_PROTECT_READS": str(protect_reads).lower()}
    with (
        LiveServer(tmp_path, PC_RUNNER_ENABLED="false", **env) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        ) as http,
        watched_context(browser) as (context, watched),
    ):
        run = started(http, epochs=100)  # stays queued: no runner here
        page = context.new_page()
        page.goto(f"{server.url}/")
        dialog = page.locator("#key-dialog")
        expect(dialog).to_be_visible()
        if protect_reads:
            expect(page.locator("#key-skip")).to_have_count(0)
            page.keyboard.press("Escape")  # nothing to show without it: the prompt stays
            expect(dialog).to_be_visible()
            expect(page.locator("#runs-body tr")).to_have_count(0)
            screenshot(page, "key-prompt")
        else:
            page.get_by_role("button", name="Look around without it").click()
            expect(dialog).to_be_hidden()
            row = page.locator(f'tr[data-run="{run["id"]}"]')
            expect(row).to_be_visible()
            row.get_by_role("button", name=f"cancel run {run['id']}").click()  # a write: 401
            expect(dialog).to_be_visible()
            expect(page.locator("#key-error")).to_have_text(
                "The key was not accepted. Give it again."
            )
        page.get_by_label("API key (PC_API_KEY)").fill("wrong")
        page.get_by_role("button", name="Use this key").click()
        expect(page.locator("#key-error")).to_have_text("This key was not accepted.")
        page.get_by_label("API key (PC_API_KEY)").fill(KEY)
        page.get_by_role("button", name="Use this key").click()
        expect(dialog).to_be_hidden()
        row = page.locator(f'tr[data-run="{run["id"]}"]')
        expect(row).to_be_visible()
        expect(page.locator("#key-status")).to_be_visible()

        # Asked once: the next page reads and writes with it.
        page.goto(f"{server.url}/ui/datasets")
        card = page.locator('#gallery [data-dataset="curve"]')
        expect(card).to_be_visible()
        expect(dialog).to_be_hidden()
        # A file link sends the key too (fetched, then saved), where a plain link could not.
        with page.expect_download() as download:
            card.get_by_role("link", name="CSV").click()
        saved = Path(download.value.path()).read_text()
        assert saved == http.get("/datasets/curve/csv").text
        page.goto(f"{server.url}/")
        row.get_by_role("button", name=f"cancel run {run['id']}").click()
        expect(row).to_have_attribute("data-status", "cancelled")
        assert http.get(f"/runs/{run['id']}").json()["status"] == "cancelled"
        page.get_by_role("button", name="Forget it").click()
        expect(dialog).to_be_visible()
        watched.assert_clean()
