"""Kill the server (SIGKILL) at random moments while runs train, restart it, and check that
nothing is lost: every run ends succeeded with one loss per epoch, and the database never
points at a missing or half-written checkpoint.

    .venv/bin/python -m scripts.kill_loop --kills 10 --seed 1

Loopback only; bounded in kills and time. Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.testing.live_server import LiveServer

RUNS: list[dict[str, Any]] = [
    {"architecture": "complex", "epochs": 2500, "checkpoint_every": 100, "seed": 1},
    {
        "architecture": "mlp",
        "hidden_layers": [32, 32],
        "epochs": 4000,
        "checkpoint_every": 150,
        "seed": 2,
    },
    {"architecture": "simple", "epochs": 6000, "checkpoint_every": 250, "seed": 3},
    {
        "architecture": "complex",
        "epochs": 2000,
        "checkpoint_every": 100,
        "batch_size": 64,
        "seed": 4,
    },
]
ENV = {"PC_WORKERS": "2", "PC_PROGRESS_INTERVAL_S": "0.1", "PC_MAX_RESTARTS": "1000"}


@dataclass
class Report:
    kills: int = 0
    checks: int = 0
    running_at_kill: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        self.checks += 1
        if not ok:
            self.problems.append(problem)


def check_store(folder: Path, report: Report, after_restart: bool) -> None:
    """Every checkpoint row names a whole file with its recorded hash; no stray temporary files."""
    with sqlite3.connect(folder / "pc.sqlite3") as db:
        rows = db.execute("SELECT path, sha256, size_bytes FROM checkpoints").fetchall()
    store = folder / "models_store"
    for path, sha256, size in rows:
        file = store / path
        report.check(file.exists(), f"checkpoint row {path} points at a missing file")
        if file.exists():
            data = file.read_bytes()
            report.check(len(data) == size, f"{path}: size {len(data)} != recorded {size}")
            report.check(hashlib.sha256(data).hexdigest() == sha256, f"{path}: sha256 mismatch")
    if after_restart:
        stray = sorted(str(p.relative_to(store)) for p in store.rglob("*.tmp"))
        report.check(not stray, f"temporary files left after restart: {stray}")


def check_runs_finished(folder: Path, expected: dict[int, int], report: Report) -> None:
    with sqlite3.connect(folder / "pc.sqlite3") as db:
        for run_id, epochs in expected.items():
            row = db.execute(
                "SELECT status, epoch, error FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            report.check(row is not None, f"run {run_id} was lost")
            if row is None:
                continue
            status, epoch, error = row
            report.check(status == "succeeded", f"run {run_id} ended {status}: {error}")
            report.check(epoch == epochs, f"run {run_id} stopped at epoch {epoch} of {epochs}")
            count, low, high = db.execute(
                "SELECT count(*), min(epoch), max(epoch) FROM run_history WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            report.check(
                (count, low, high) == (epochs, 0, epochs - 1),
                f"run {run_id} history has {count} rows over {low}..{high}, not 0..{epochs - 1}",
            )


def wait_for_training(folder: Path, timeout: float) -> None:
    """Until a worker holds a run (or none is left to train): kills then land mid-training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(folder / "pc.sqlite3") as db:
            counts = dict(
                db.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
            )
        if counts.get("running") or not counts.get("queued"):
            return
        time.sleep(0.1)


def run_loop(kills: int, seed: int, folder: Path, finish_timeout: float) -> Report:
    rng = random.Random(seed)
    report = Report()
    server = LiveServer(folder, **ENV)
    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        expected = {
            http.post("/runs", json=body).json()["id"]: int(body["epochs"]) for body in RUNS
        }
    for kill in range(kills):
        wait_for_training(folder, timeout=30)
        time.sleep(rng.uniform(0.1, 3.0))
        with sqlite3.connect(folder / "pc.sqlite3") as db:
            running = db.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0]
        report.running_at_kill.append(running)
        if rng.random() < 0.5:
            server.kill()  # the server alone: its workers notice and vanish
        else:
            server.kill_group()  # the server and its workers at once
        report.kills += 1
        check_store(folder, report, after_restart=False)
        server = LiveServer(folder, **ENV)
        server.start()
        check_store(folder, report, after_restart=True)
        print(f"kill {kill + 1}/{kills}: {running} run(s) were training", flush=True)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            deadline = time.monotonic() + finish_timeout
            while time.monotonic() < deadline:
                statuses = [http.get(f"/runs/{run_id}").json()["status"] for run_id in expected]
                if all(s in ("succeeded", "failed", "cancelled") for s in statuses):
                    break
                time.sleep(0.5)
    finally:
        server.stop()
    check_store(folder, report, after_restart=True)
    check_runs_finished(folder, expected, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--finish-timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pc-kill-loop-") as tmp:
        report = run_loop(args.kills, args.seed, Path(tmp), args.finish_timeout)
    print(
        f"kills: {report.kills}; runs training at each kill: {report.running_at_kill}; "
        f"checks: {report.checks}; problems: {len(report.problems)}"
    )
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
