"""7. A sweep's runs trained together as one stacked model, against the same runs one after
another, each trained alone. Both in one process with a worker's threads,
callbacks that keep every loss and checkpoint state, on the tutorial's curve."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from app.ml.architectures import network_spec
from app.ml.engine import Member, TrainConfig, train, train_group
from app.ml.points_csv import parse_points_csv
from bench.context import BenchContext, threads
from bench.report import Figure, at_least, median, spread
from bench.training import KeepLosses

CPU = torch.device("cpu")
# The cases: 16 runs of a small tanh network with 16 learning rates, 2,000 epochs,
# target 4x; 8 runs of the tutorial's network with 8 learning rates, reported.
CASES = [
    ("16 x 2-16-16-1 tanh", ("mlp", [16, 16], "tanh"), 16, 2000, 4.0),
    ("8 x complex", ("complex", None, None), 8, 2000, None),
]


def configs(shape: tuple[str, Any, Any], runs: int, epochs: int) -> list[TrainConfig]:
    network = network_spec(*shape)
    rates = np.logspace(-4, -1, runs)  # 1e-4 to 0.1, as a sweep of the learning rate would
    return [
        TrainConfig(network=network, epochs=epochs, learning_rate=float(rate), seed=seed)
        for seed, rate in enumerate(rates)
    ]


def apart(group: list[TrainConfig], points: Any) -> float:
    started = time.perf_counter()
    for config in group:
        train(config, points, CPU, KeepLosses())
    return time.perf_counter() - started


def together(group: list[TrainConfig], points: Any) -> float:
    started = time.perf_counter()
    train_group([Member(config) for config in group], points, CPU, KeepLosses(len(group)))
    return time.perf_counter() - started


def measure(ctx: BenchContext) -> list[Figure]:
    points = parse_points_csv(ctx.csv_path.read_bytes(), 100_000)
    figures = []
    for name, shape, runs, epochs, target in CASES:
        group = configs(shape, runs, epochs)
        one_by_one, stacked = [], []
        with threads(ctx.worker_threads):
            for _ in range(ctx.repeats):  # interleaved, so a noisy minute hits both
                one_by_one.append(apart(group, points))
                stacked.append(together(group, points))
        ratios = [a / t for a, t in zip(one_by_one, stacked, strict=True)]
        ratio = median(ratios)
        goal, met = at_least(ratio, target) if target is not None else ("", None)
        figures.append(
            Figure(
                "together",
                f"{name}: one after another / together",
                ratio,
                "x",
                goal,
                met,
                f"median of per-repeat ratios, {spread(ratios, 'x')}; together "
                f"{median(stacked):.2f} s, apart {median(one_by_one):.2f} s "
                f"({ctx.worker_threads} thread); {epochs} epochs each",
            )
        )
    return figures
