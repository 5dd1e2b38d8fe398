"""2-5. The service through a live uvicorn: end to end, serving, responsiveness and scaling.

One server on loopback, started as `make serve` starts it (embedded runner, SQLite), over a
folder of its own. Each section leaves the queue empty for the next.
"""

from __future__ import annotations

import http.client
import io
import json
import random
import time
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import torch

from app.ml.inference import model_from_checkpoint, predict_probabilities
from app.testing.live_server import LiveServer
from bench.context import BenchContext, threads
from bench.report import Figure, at_least, at_most, below, median, percentile, spread

DATASET = "bench-curve"
LONG_RUN_EPOCHS = 1_000_000  # the two runs that keep the workers busy in section 4


class Service:
    """The server under test and a client for it; figures one section hands to another."""

    def __init__(self, server: LiveServer, ctx: BenchContext) -> None:
        self.ctx = ctx
        self.http = httpx.Client(base_url=server.url, timeout=120)
        # Latencies are timed with the standard library's client on one kept-alive connection:
        # it adds about 0.1 ms a request where httpx adds 1 to 1.5 ms on a 2-core machine, so the
        # figures are the service's, not the client's.
        self.timing = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        self.http.post(
            "/datasets",
            files={"file": ("curve.csv", ctx.csv_path.read_bytes(), "text/csv")},
            data={"name": DATASET},
        ).raise_for_status()
        self.one_run_server_s: float | None = None  # a lone complex run, by the server's clock
        self.trained_run: int | None = None  # a finished complex run, for serving

    def start_run(self, architecture: str, epochs: int, seed: int = 0) -> int:
        body = {"dataset": DATASET, "architecture": architecture, "epochs": epochs, "seed": seed}
        response = self.http.post("/runs", json=body)
        response.raise_for_status()
        run_id: int = response.json()["id"]
        return run_id

    def wait(self, run_id: int, until: set[str], poll_s: float) -> dict[str, Any]:
        while True:
            run: dict[str, Any] = self.http.get(f"/runs/{run_id}").json()
            if run["status"] in until:
                return run
            if run["status"] in {"failed", "cancelled"}:
                raise RuntimeError(f"run {run_id} ended {run['status']}: {run.get('error')}")
            time.sleep(poll_s)

    def timed_ms(self, method: str, url: str, body: Any = None) -> float:
        """One request's latency in ms; `body`, when given, is sent as JSON."""
        content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if content is not None else {}
        started = time.perf_counter()
        self.timing.request(method, url, body=content, headers=headers)
        response = self.timing.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status >= 400:
            raise RuntimeError(f"{method} {url}: {response.status} {payload[:300]!r}")
        return elapsed


def server_seconds(run: dict[str, Any]) -> float:
    created = datetime.fromisoformat(run["created_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    return (finished - created).total_seconds()


def end_to_end(service: Service) -> list[Figure]:
    ctx = service.ctx
    figures = []
    for architecture in ("simple", "complex"):
        plain = ctx.plain_median(architecture)
        walls, server = [], []
        for repeat in range(ctx.repeats):
            started = time.perf_counter()
            run_id = service.start_run(architecture, ctx.epochs, seed=repeat)
            run = service.wait(run_id, {"succeeded"}, poll_s=0.01)
            walls.append(time.perf_counter() - started)
            server.append(server_seconds(run))
            if architecture == "complex":
                service.trained_run = run_id
        if architecture == "complex":
            service.one_run_server_s = median(server)
        ratios = [plain / wall for wall in walls]
        ratio = median(ratios)
        target, met = at_least(ratio, 1.8) if architecture == "complex" else ("", None)
        figures.append(
            Figure(
                "end to end",
                f"{architecture}: POST /runs to succeeded, speed / plain loop's",
                ratio,
                "x",
                target,
                met,
                f"{spread(ratios, 'x')}; service {median(walls):.2f} s "
                f"({spread(walls, ' s')}), plain loop {plain:.2f} s (median)",
            )
        )
    return figures


def serving(service: Service) -> list[Figure]:
    ctx, http = service.ctx, service.http
    run_id = (
        service.trained_run
        or service.wait(service.start_run("complex", ctx.epochs), {"succeeded"}, poll_s=0.05)["id"]
    )
    rng = random.Random(0)
    one_point = {"run_id": run_id, "points": [[0.3, 0.6]]}
    for _ in range(10):  # the model cache warm, as the issue asks
        service.timed_ms("POST", "/predict", one_point)
    single = [service.timed_ms("POST", "/predict", one_point) for _ in range(ctx.requests)]
    many = {"run_id": run_id, "points": [[rng.random(), rng.random()] for _ in range(100_000)]}
    body = json.dumps(many).encode()
    bulk = [service.timed_ms("POST", "/predict", body) for _ in range(max(3, ctx.repeats * 2))]
    checkpoint = http.get(f"/runs/{run_id}/checkpoints/{ctx.epochs}")
    checkpoint.raise_for_status()
    state = torch.load(io.BytesIO(checkpoint.content), weights_only=True)
    model = model_from_checkpoint(state).module
    grid = np.random.default_rng(0).random((1_000_000, 2))
    with threads(1):  # the web process's torch threads
        engine_s = []
        for _ in range(max(3, ctx.repeats)):
            started = time.perf_counter()
            predict_probabilities(model, grid)
            engine_s.append(time.perf_counter() - started)
    epochs = [c["epoch"] for c in http.get(f"/runs/{run_id}/checkpoints").json()]
    cold = [service.timed_ms("GET", f"/runs/{run_id}/boundary.png?epoch={e}") for e in epochs[:5]]
    cached_url = f"/runs/{run_id}/boundary.png?epoch={epochs[0]}"
    cached = [service.timed_ms("GET", cached_url) for _ in range(20)]
    throughput = len(grid) / median(engine_s)
    # The dashboard's slider: checkpoints whose model no request has loaded yet (boundary.png
    # above loaded the first five), so each one reads and verifies its file.
    fresh = epochs[5:] or epochs
    field_cold = [service.timed_ms("GET", f"/runs/{run_id}/field?epoch={e}") for e in fresh]
    field_warm = [
        service.timed_ms("GET", f"/runs/{run_id}/field?epoch={fresh[0]}") for _ in range(20)
    ]
    return [
        Figure(
            "serving",
            "POST /predict, 1 point: p50",
            median(single),
            "ms",
            *below(median(single), 5),
            f"p99 {percentile(single, 99):.1f} ms, {len(single)} requests, model cache warm",
        ),
        Figure(
            "serving",
            "POST /predict, 100,000 points: p50",
            median(bulk),
            "ms",
            detail=f"p99 {percentile(bulk, 99):.0f} ms; "
            f"{100_000 / (median(bulk) / 1000):,.0f} points/s through HTTP and JSON",
        ),
        Figure(
            "serving",
            "prediction inside the engine (complex)",
            throughput,
            "points/s",
            *at_least(throughput, 1_000_000),
            "1,000,000 points, 1 thread as in the web process",
        ),
        Figure(
            "serving",
            "GET boundary.png, cold: median",
            median(cold),
            "ms",
            detail=f"{len(cold)} checkpoints never rendered before",
        ),
        Figure(
            "serving",
            "GET /runs/{id}/field (complex, 100x100), cold: median",
            median(field_cold),
            "ms",
            *below(median(field_cold), 60),
            f"{spread(field_cold, ' ms')}, {len(field_cold)} checkpoints never loaded before; "
            f"model loaded: median {median(field_warm):.1f} ms",
        ),
        Figure(
            "serving",
            "GET boundary.png, cached: median",
            median(cached),
            "ms",
            detail=f"p99 {percentile(cached, 99):.1f} ms, {len(cached)} requests",
        ),
    ]


def latencies(service: Service, run_ids: list[int], predict_run: int) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {"get": [], "predict": []}
    body = {"run_id": predict_run, "points": [[0.3, 0.6]]}
    for index in range(service.ctx.requests):
        got["get"].append(service.timed_ms("GET", f"/runs/{run_ids[index % len(run_ids)]}"))
        got["predict"].append(service.timed_ms("POST", "/predict", body))
    return got


def responsiveness(service: Service) -> list[Figure]:
    trained = service.trained_run
    if trained is None:
        trained = service.wait(service.start_run("complex", 1000), {"succeeded"}, poll_s=0.05)["id"]
    idle = latencies(service, [trained], trained)
    busy_runs = [service.start_run("complex", LONG_RUN_EPOCHS, seed=s) for s in (1, 2)]
    for run_id in busy_runs:
        service.wait(run_id, {"running"}, poll_s=0.05)
    time.sleep(1.0)  # both workers well into their loops
    busy = latencies(service, busy_runs, trained)
    statuses = [service.http.get(f"/runs/{run_id}").json()["status"] for run_id in busy_runs]
    for run_id in busy_runs:
        service.http.post(f"/runs/{run_id}/cancel")
    for run_id in busy_runs:
        service.wait(run_id, {"cancelled"}, poll_s=0.05)
    if statuses != ["running", "running"]:
        raise RuntimeError(f"the two runs were not both training while measured: {statuses}")
    figures = []
    for kind, label in (("get", "GET /runs/{id}"), ("predict", "POST /predict (1 point)")):
        p99_busy, p99_idle = percentile(busy[kind], 99), percentile(idle[kind], 99)
        target, met = below(p99_busy, 50) if kind == "get" else ("", None)
        figures.append(
            Figure(
                "responsiveness",
                f"{label}: p99 while two complex runs train",
                p99_busy,
                "ms",
                target,
                met,
                f"idle p99 {p99_idle:.1f} ms; p50 {median(busy[kind]):.1f} ms training, "
                f"{median(idle[kind]):.1f} ms idle; {len(busy[kind])} requests each",
            )
        )
    return figures


def scaling(service: Service) -> list[Figure]:
    ctx = service.ctx
    one = service.one_run_server_s
    if one is None:
        lone = service.start_run("complex", ctx.epochs)
        one = server_seconds(service.wait(lone, {"succeeded"}, poll_s=0.05))
    ids = [service.start_run("complex", ctx.epochs, seed=s) for s in range(ctx.scaling_runs)]
    runs = [service.wait(run_id, {"succeeded"}, poll_s=0.25) for run_id in ids]
    first = min(datetime.fromisoformat(run["created_at"]) for run in runs)
    last = max(datetime.fromisoformat(run["finished_at"]) for run in runs)
    total = (last - first).total_seconds()
    ratio = total / (ctx.scaling_runs * one)
    return [
        Figure(
            "scaling",
            f"{ctx.scaling_runs} queued complex runs: total / ({ctx.scaling_runs} x one run)",
            ratio,
            "x",
            *at_most(ratio, 0.6),
            f"total {total:.1f} s, one run alone {one:.2f} s (queued to finished, by the "
            "server's clock)",
        )
    ]


SECTIONS = {
    "e2e": end_to_end,
    "serving": serving,
    "responsiveness": responsiveness,
    "scaling": scaling,
}
