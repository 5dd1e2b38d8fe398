"""What the sections share: the options, the data, and figures one section measures for another."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from app.core.config import PROJECT_ROOT, Settings
from bench.report import median
from bench.tutorial_loop import run_tutorial_loop

TUTORIAL_CURVE = PROJECT_ROOT.parent / "shared" / "tutorial-data" / "curve.csv"
OWN_CURVE = PROJECT_ROOT / "data" / "curve.csv"


@dataclass
class BenchContext:
    epochs: int  # of the tutorial's runs: 20001, as its loop
    repeats: int  # of every timed run; the figures are medians
    requests: int  # of each kind, in the latency figures
    scaling_runs: int = 8
    csv_path: Path = field(
        default_factory=lambda: TUTORIAL_CURVE if TUTORIAL_CURVE.exists() else OWN_CURVE
    )
    # The plain loop runs as a script would: torch's default thread count. The engine runs as a
    # worker of the service runs it: the cores shared among the workers.
    plain_threads: int = field(default_factory=torch.get_num_threads)
    worker_threads: int = field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) // Settings().worker_count)
    )
    plain_seconds: dict[str, float] = field(default_factory=dict)  # median, per architecture

    def time_plain_loop(self, architecture: str) -> float:
        """One run of the tutorial's loop, as a script would run it; its seconds."""
        with threads(self.plain_threads):
            return run_tutorial_loop(self.csv_path, architecture, self.epochs)

    def plain_median(self, architecture: str) -> float:
        """The plain loop's median time, measured once per suite run and shared."""
        if architecture not in self.plain_seconds:
            times = [self.time_plain_loop(architecture) for _ in range(self.repeats)]
            self.plain_seconds[architecture] = median(times)
        return self.plain_seconds[architecture]


@contextlib.contextmanager
def threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
