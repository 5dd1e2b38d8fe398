"""GET /metrics: Prometheus' text, parsed by prometheus_client's own parser, moving as the
service works; labels only from route templates and fixed names."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from app.core.config import PROJECT_ROOT, Settings
from app.main import create_app
from tests.polling import wait_ended, wait_for

KEY = "metrics-key"
DIVERGING = b"1e30,1e30,0\n-1e30,2e30,1\n3e30,-1e30,1\n"  # sgd at lr 1 blows up on these


def scrape(
    client: TestClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def runner_client(settings: Settings) -> Iterator[TestClient]:
    settings.runner_enabled = True
    settings.workers = 1
    settings.progress_interval_s = 0.05
    with TestClient(create_app(settings)) as client:
        wait_for(lambda: client.get("/health").json()["workers"]["ready"] >= 1, 120)
        yield client


@pytest.mark.live
def test_scrape_train_scrape_moves_the_counters(runner_client: TestClient) -> None:
    client = runner_client
    before = scrape(client)
    assert value(before, "pc_database_up") == 1
    assert value(before, "pc_workers_live") == 1
    assert value(before, "pc_runs", status="succeeded") == 0
    assert value(before, "pc_epochs_trained_total") == 0

    run = client.post("/runs", json={"architecture": "simple", "epochs": 700, "seed": 1}).json()
    assert wait_ended(client, run["id"])["status"] == "succeeded"
    client.get(f"/runs/{run['id']}")
    client.get("/runs/999999")  # a 404, under the same template
    after = scrape(client)
    assert value(after, "pc_runs", status="succeeded") == 1
    assert value(after, "pc_runs", status="queued") == 0
    assert value(after, "pc_queue_depth") == 0
    assert value(after, "pc_epochs_trained_total") == 700
    assert value(after, "pc_run_duration_seconds_count", outcome="succeeded") == 1
    assert value(after, "pc_run_duration_seconds_bucket", outcome="succeeded", le="+Inf") == 1
    assert 0 < value(after, "pc_run_duration_seconds_sum", outcome="succeeded") < 120
    counted = value(after, "pc_http_requests_total", method="POST", route="/runs", status="2xx")
    assert counted == 1
    template = "/runs/{run_id}"
    assert value(after, "pc_http_requests_total", method="GET", route=template, status="4xx") == 1
    assert value(after, "pc_http_requests_total", method="GET", route=template, status="2xx") >= 2
    timed = value(after, "pc_http_request_duration_seconds_count", method="GET", route=template)
    assert timed >= 3
    assert value(after, "pc_http_requests_total", method="GET", route="/metrics", status="2xx") == 1


@pytest.mark.live
def test_throughput_and_failures_come_from_the_workers(runner_client: TestClient) -> None:
    client = runner_client
    long_run = client.post("/runs", json={"epochs": 1_000_000, "checkpoint_every": 100_000})
    run_id = long_run.json()["id"]
    wait_for(lambda: client.get(f"/runs/{run_id}").json()["epoch"] > 0, 60)
    scrape(client)
    time.sleep(1.5)
    moving = scrape(client)
    assert value(moving, "pc_training_epochs_per_second") > 10
    assert value(moving, "pc_runs", status="running") == 1
    client.post(f"/runs/{run_id}/cancel")
    wait_ended(client, run_id)

    client.post("/datasets", files={"file": ("huge.csv", DIVERGING)}, data={"name": "huge"})
    body = {"dataset": "huge", "architecture": "simple", "epochs": 500, "optimizer": "sgd"}
    failed = client.post("/runs", json={**body, "learning_rate": 1.0}).json()
    assert wait_ended(client, failed["id"])["status"] == "failed"
    ended = scrape(client)
    assert value(ended, "pc_runs_failed", reason="diverged") == 1
    assert value(ended, "pc_runs_failed", reason="error") == 0
    assert value(ended, "pc_run_duration_seconds_count", outcome="cancelled") == 1
    assert value(ended, "pc_run_duration_seconds_count", outcome="failed") == 1


def test_queue_depth_and_the_oldest_runs_age(client: TestClient) -> None:
    # No runner in this client: runs stay queued.
    for _ in range(2):
        assert client.post("/runs", json={"epochs": 5}).status_code == 202
    first = scrape(client)
    assert value(first, "pc_queue_depth") == 2
    assert value(first, "pc_runs", status="queued") == 2
    time.sleep(0.5)
    later = scrape(client)
    age = value(later, "pc_queue_oldest_age_seconds")
    assert age >= value(first, "pc_queue_oldest_age_seconds") + 0.4


def test_labels_are_templates_and_fixed_names_never_what_a_client_sent(
    client: TestClient,
) -> None:
    client.get("/runs/123456")
    client.get("/datasets/secret-name")
    client.get("/no/such/path-789")
    client.request("PROPFIND", "/runs")
    client.post("/runs", content=b"x" * 100_000, headers={"content-type": "application/json"})
    client.get("/static/dashboard/style.css")
    text = client.get("/metrics").text
    for sent in ("123456", "secret-name", "path-789", "PROPFIND"):
        assert sent not in text
    samples = scrape(client)
    routes = {dict(labels).get("route") for (_, labels) in samples if dict(labels).get("route")}
    assert routes <= {
        "/runs",
        "/runs/{run_id}",
        "/datasets/{ref}",
        "/static",
        "/metrics",
        "unrouted",
    }, routes
    assert value(samples, "pc_http_requests_total", method="other", route="/runs", status="4xx")
    # A body refused before routing (413) is counted, with no route to name.
    assert value(samples, "pc_http_requests_total", method="POST", route="unrouted", status="4xx")


def test_event_streams_are_counted_but_not_timed(client: TestClient) -> None:
    run_id = client.post("/runs", json={"epochs": 5}).json()["id"]
    client.post(f"/runs/{run_id}/cancel")  # ended: its stream ends at once
    assert client.get(f"/runs/{run_id}/events").status_code == 200
    samples = scrape(client)
    route = "/runs/{run_id}/events"
    assert value(samples, "pc_http_requests_total", method="GET", route=route, status="2xx") == 1
    assert value(samples, "pc_http_request_duration_seconds_count", method="GET", route=route) == 0


def test_metrics_need_the_key_where_reads_do(settings: Settings) -> None:
    settings.api_key = SecretStr(KEY)
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200  # reads are open
    settings.protect_reads = True
    with TestClient(create_app(settings)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert "PC_API_KEY" in refused.json()["detail"]
        assert value(scrape(client, Authorization=f"Bearer {KEY}"), "pc_database_up") == 1
    settings.metrics_open = True  # a scraper on a private network
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/runs").status_code == 401


def documented_metrics() -> dict[str, tuple[set[str], set[str]]]:
    """docs/operations.md's metrics table: each metric's labels, and the label values its row
    names in backticks (`device`, `checkpoint`, ...)."""
    page = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    table = page[page.index("| metric | what |") : page.index("\n\n", page.index("| metric |"))]
    metrics: dict[str, tuple[set[str], set[str]]] = {}
    for row in table.splitlines()[2:]:
        names, what = row.strip("|").split(" | ", 1)
        values = set(re.findall(r"`([a-z_]+)`", what))
        for name, labels in re.findall(r"`(pc_[a-z_]+)(?:\{([^}]*)\})?`", names):
            metrics[name] = ({label.strip() for label in labels.split(",") if label}, values)
    return metrics


def test_the_operations_page_lists_every_metric_with_its_labels(client: TestClient) -> None:
    client.get("/health")  # a request counted
    scraped: dict[str, set[str]] = {}
    values: dict[tuple[str, str], set[str]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        name = family.name + ("_total" if family.type == "counter" else "")
        scraped[name] = set()
        for sample in family.samples:
            for label, label_value in sample.labels.items():
                if label != "le":  # a histogram's buckets
                    scraped[name].add(label)
                    values.setdefault((name, label), set()).add(label_value)
    documented = documented_metrics()
    assert {name: labels for name, (labels, _) in documented.items()} == scraped
    # The fixed label values the page names are every one there is.
    assert values["pc_runs_failed", "reason"] == documented["pc_runs_failed"][1]
    outcomes = documented["pc_run_duration_seconds"][1]
    assert values["pc_run_duration_seconds", "outcome"] == outcomes
