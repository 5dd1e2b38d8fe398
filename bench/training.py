"""1. Training speed: the engine's epochs per second against the tutorial's plain loop."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import torch

from app.ml.architectures import network_spec
from app.ml.engine import Report, TrainConfig, TrainResult, train
from app.ml.points_csv import parse_points_csv
from bench.context import BenchContext, threads
from bench.report import Figure, at_least, median, spread

# The targets: the engine's speed over the plain loop's.
TARGETS = {"simple": 8.0, "complex": 2.0}


class KeepLosses:
    """A worker's callbacks, minus the database: every member's every loss is received and
    kept."""

    def __init__(self, members: int = 1) -> None:
        self.losses: list[list[float]] = [[] for _ in range(members)]

    def on_progress(self, reports: list[Report]) -> Collection[int]:
        for report in reports:
            self.losses[report.member] += report.losses
        return ()

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        pass

    def on_end(self, member: int, result: TrainResult) -> None:
        pass


def run_engine(ctx: BenchContext, architecture: str) -> float:
    points = parse_points_csv(ctx.csv_path.read_bytes(), 100_000)
    config = TrainConfig(network=network_spec(architecture), epochs=ctx.epochs, seed=0)
    started = time.perf_counter()
    train(config, points, torch.device("cpu"), KeepLosses())
    return time.perf_counter() - started


def measure(ctx: BenchContext) -> list[Figure]:
    figures = []
    for architecture in ("simple", "complex"):
        plain, engine = [], []
        for _ in range(ctx.repeats):  # interleaved, so a noisy minute hits both
            plain.append(ctx.time_plain_loop(architecture))
            with threads(ctx.worker_threads):
                engine.append(run_engine(ctx, architecture))
        ctx.plain_seconds[architecture] = median(plain)
        # Each repeat's pair ran back to back, so its ratio saw one state of the machine.
        ratios = [p / e for p, e in zip(plain, engine, strict=True)]
        ratio = median(ratios)
        target, met = at_least(ratio, TARGETS[architecture])
        figures.append(
            Figure(
                "training",
                f"{architecture}: engine speed / plain loop's",
                ratio,
                "x",
                target,
                met,
                f"median of per-repeat ratios, {spread(ratios, 'x')}; engine "
                f"{ctx.epochs / median(engine):,.0f} epochs/s ({ctx.worker_threads} thread), "
                f"plain {ctx.epochs / median(plain):,.0f} epochs/s ({ctx.plain_threads} "
                f"threads; its runs {spread(plain, ' s')}); {ctx.epochs} epochs",
            )
        )
    return figures
