"""What `GET /metrics` (app/api/routes/metrics.py) serves in Prometheus' text format. This
process's HTTP requests are counted and timed by route template (never by raw path, nor by anything else a client chooses); runs, the queue,
workers and training are read from the database at each scrape, so every API replica reports
the same numbers, and those numbers cover the workers of either runner.

A small ASGI middleware of our own, not prometheus-fastapi-instrumentator: that library labels
by route too, but times streaming responses like any other, and /events would fill the top
latency bucket with streams that are meant to last minutes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import session_scope
from app.services.metrics import RunsSnapshot, runs_snapshot
from app.vocabulary import RunStatus

# Routes whose responses stream for as long as a run trains: counted, not timed.
STREAMING_ROUTES = frozenset({"/runs/{run_id}/events"})
METRICS_PATH = "/metrics"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "unrouted"  # no route matched (404), or the request was refused before routing
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 3 * 3600, 12 * 3600)


def _histogram(
    values: list[float], buckets: tuple[float, ...]
) -> tuple[list[tuple[str, float]], float]:
    """Cumulative bucket counts, +Inf last, and the sum, as HistogramMetricFamily takes them."""
    counts = [(str(float(bound)), float(sum(v <= bound for v in values))) for bound in buckets]
    return [*counts, ("+Inf", float(len(values)))], float(sum(values))


class DatabaseCollector(Collector):
    """Runs by status, the queue, live workers and training, as the database has them now."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._last: tuple[float, int] | None = None  # (monotonic time, epochs trained)
        self._rate = 0.0

    def _snapshot(self) -> RunsSnapshot | None:
        factory = getattr(self.app.state, "session_factory", None)
        if factory is None:
            return None
        try:
            with session_scope(factory) as session:
                return runs_snapshot(session, self.app.state.settings.heartbeat_timeout_s)
        except SQLAlchemyError:
            return None

    def _throughput(self, epochs: int) -> float:
        """Epochs per second since this process's previous scrape (a second apart at least)."""
        now = time.monotonic()
        with self._lock:
            if self._last is None:
                self._last = (now, epochs)
            elif now - self._last[0] >= 1.0:
                self._rate = max(0, epochs - self._last[1]) / (now - self._last[0])
                self._last = (now, epochs)
            return self._rate

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        yield GaugeMetricFamily(
            "pc_database_up", "1 when the database answered this scrape", value=int(bool(snapshot))
        )
        if snapshot is None:
            return
        runs = GaugeMetricFamily("pc_runs", "Runs by status", labels=["status"])
        for status, count in snapshot.by_status.items():
            runs.add_metric([status.value], count)
        yield runs
        yield GaugeMetricFamily(
            "pc_queue_depth",
            "Runs waiting for a worker",
            value=snapshot.by_status[RunStatus.QUEUED],
        )
        yield GaugeMetricFamily(
            "pc_queue_oldest_age_seconds",
            "How long the oldest queued run has waited (0 when none waits)",
            value=snapshot.oldest_queued_age_s,
        )
        yield GaugeMetricFamily(
            "pc_workers_live", "Workers whose heartbeat is recent", value=snapshot.live_workers
        )
        yield CounterMetricFamily(
            "pc_epochs_trained",
            "Epochs done, summed over every run in the database (deleting runs lowers it)",
            value=snapshot.epochs_trained,
        )
        yield GaugeMetricFamily(
            "pc_training_epochs_per_second",
            "Epochs trained per second by all workers, since this process's previous scrape",
            value=self._throughput(snapshot.epochs_trained),
        )
        durations = HistogramMetricFamily(
            "pc_run_duration_seconds",
            "Started to finished, of every ended run, by how it ended",
            labels=["outcome"],
        )
        for status, values in snapshot.durations.items():
            buckets, total = _histogram(values, RUN_BUCKETS)
            durations.add_metric([status.value], buckets, total)
        yield durations
        failures = GaugeMetricFamily("pc_runs_failed", "Failed runs by reason", labels=["reason"])
        for reason, count in snapshot.failures.items():
            failures.add_metric([reason], count)
        yield failures


class Metrics:
    """One registry per app (tests make many apps in one process)."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "pc_http_requests",
            "HTTP requests by method, route template and status class",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pc_http_request_duration_seconds",
            "HTTP request latency by method and route template (streams are not timed)",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(app))

    def text(self) -> bytes:
        """Every metric, in Prometheus' text format."""
        return generate_latest(self.registry)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "other"
        route = getattr(scope.get("route"), "path", None) or UNROUTED
        self.requests.labels(method, route, f"{status // 100}xx").inc()
        if route not in STREAMING_ROUTES:
            self.latency.labels(method, route).observe(seconds)


class RequestMetricsMiddleware:
    """Outermost, so a request refused by another middleware (a 413) is counted too."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.observe(scope, status, time.perf_counter() - started)


def install_metrics(app: FastAPI) -> None:
    """The app's registry (which `GET /metrics` serves) and the middleware that counts and
    times its requests."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: half the text
    app.state.metrics = Metrics(app)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics)
