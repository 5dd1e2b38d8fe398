"""Drive a live server on loopback with many concurrent clients while two runs train.

    .venv/bin/python -m scripts.load --clients 50 --seconds 30

Mixes POST /predict, GET /runs/{id}, GET /runs/{id}/history and picture requests; reports
requests served, errors, p50/p99 latency per kind, and the server's peak memory. Bounded in
time; traffic goes to 127.0.0.1 only. Exit status 0 when no request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from app.testing.live_server import LiveServer
from bench.report import percentile


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def client_loop(
    http: httpx.AsyncClient,
    trained: int,
    training: list[int],
    epochs: list[int],
    stop_at: float,
    rng: random.Random,
    latencies: dict[str, list[float]],
    errors: list[str],
) -> None:
    while time.monotonic() < stop_at:
        kind = rng.choices(
            ["predict", "run", "history", "boundary", "loss"], weights=[4, 4, 2, 1, 1]
        )[0]
        run_id = rng.choice([trained, *training])
        started = time.perf_counter()
        try:
            if kind == "predict":
                points = [[rng.random(), rng.random()] for _ in range(10)]
                response = await http.post("/predict", json={"run_id": trained, "points": points})
            elif kind == "run":
                response = await http.get(f"/runs/{run_id}")
            elif kind == "history":
                response = await http.get(f"/runs/{run_id}/history", params={"every": 10})
            elif kind == "boundary":
                response = await http.get(
                    f"/runs/{trained}/boundary.png", params={"epoch": rng.choice(epochs)}
                )
            else:
                response = await http.get(f"/runs/{trained}/loss.png")
            if response.status_code >= 400:
                errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
        except httpx.HTTPError as exc:
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
        latencies[kind].append((time.perf_counter() - started) * 1000)


async def drive(server: LiveServer, clients: int, seconds: float, seed: int) -> dict[str, object]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
        trained = (
            await http.post(
                "/runs",
                json={
                    "architecture": "complex",
                    "epochs": 1000,
                    "checkpoint_every": 100,
                    "seed": 1,
                },
            )
        ).json()["id"]
        while (await http.get(f"/runs/{trained}")).json()["status"] != "succeeded":
            await asyncio.sleep(0.5)
        training = [
            (await http.post("/runs", json={"epochs": 200_000, "seed": s})).json()["id"]
            for s in (2, 3)
        ]
        while [(await http.get(f"/runs/{i}")).json()["status"] for i in training] != [
            "running"
        ] * 2:
            await asyncio.sleep(0.2)
        epochs = [c["epoch"] for c in (await http.get(f"/runs/{trained}/checkpoints")).json()]
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        rng = random.Random(seed)
        stop_at = time.monotonic() + seconds
        started = time.monotonic()
        await asyncio.gather(
            *(
                client_loop(
                    http,
                    trained,
                    training,
                    epochs,
                    stop_at,
                    random.Random(rng.random()),
                    latencies,
                    errors,
                )
                for _ in range(clients)
            )
        )
        elapsed = time.monotonic() - started
        still_training = [(await http.get(f"/runs/{i}")).json()["status"] for i in training]
        for run_id in training:
            await http.post(f"/runs/{run_id}/cancel")
    assert server.process is not None
    every = [v for values in latencies.values() for v in values]
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "requests_per_s": round(len(every) / elapsed, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "p50_ms": round(statistics.median(every), 1),
        "p99_ms": round(percentile(every, 99), 1),
        "per_kind": {
            kind: {
                "n": len(v),
                "p50_ms": round(statistics.median(v), 1),
                "p99_ms": round(percentile(v, 99), 1),
            }
            for kind, v in sorted(latencies.items())
        },
        "runs_training_throughout": still_training,
        "server_peak_rss_mib": round(peak_rss_mib(server.process.pid), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pc-load-") as tmp:
        server = LiveServer(Path(tmp), PC_WORKERS="2")
        server.start()
        try:
            figures = asyncio.run(drive(server, args.clients, args.seconds, args.seed))
        finally:
            server.stop()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
