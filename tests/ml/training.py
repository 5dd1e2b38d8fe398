"""What the engine tests share: callbacks that record everything, the data, a config."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

from app.core.config import PROJECT_ROOT
from app.ml.architectures import network_spec
from app.ml.datagen import Points
from app.ml.engine import Report, TrainConfig, TrainResult
from app.ml.points_csv import parse_points_csv

CPU = torch.device("cpu")


class RunRecord:
    """Everything one member reported, and when its callbacks say stop."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.losses: list[float] = []
        self.val_losses: list[float] = []
        self.checkpoints: dict[int, dict[str, Any]] = {}
        self.stop_after = stop_after  # the epoch after which its callbacks say stop
        self.first_epoch: int | None = None
        self.end: TrainResult | None = None

    def add(self, report: Report) -> bool:
        """Keep a report; False when the callbacks say stop."""
        if self.first_epoch is None:
            self.first_epoch = report.first_epoch
        assert report.first_epoch == self.first_epoch + len(self.losses), (
            "reports must be contiguous"
        )
        self.losses += report.losses
        self.val_losses += report.val_losses or []
        end = report.first_epoch + len(report.losses)
        return self.stop_after is None or end < self.stop_after


class Recorder:
    """The engine's callbacks, keeping everything each member reports; they can ask the engine
    to stop a member. One run's record is also the recorder's own (`losses`, ...)."""

    def __init__(self, members: int = 1, stop_after: dict[int, int] | int | None = None) -> None:
        if not isinstance(stop_after, dict):
            stop_after = {0: stop_after} if stop_after is not None else {}
        self.runs = [RunRecord(stop_after.get(member)) for member in range(members)]

    def on_progress(self, reports: list[Report]) -> Collection[int]:
        return [report.member for report in reports if not self.runs[report.member].add(report)]

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        self.runs[member].checkpoints[epoch] = state

    def on_end(self, member: int, result: TrainResult) -> None:
        assert self.runs[member].end is None, "a member ended twice"
        self.runs[member].end = result

    @property
    def ends(self) -> dict[int, TrainResult]:
        return {member: run.end for member, run in enumerate(self.runs) if run.end is not None}

    @property
    def losses(self) -> list[float]:
        return self.runs[0].losses

    @property
    def val_losses(self) -> list[float]:
        return self.runs[0].val_losses

    @property
    def checkpoints(self) -> dict[int, dict[str, Any]]:
        return self.runs[0].checkpoints

    @property
    def first_epoch(self) -> int | None:
        return self.runs[0].first_epoch


def points(name: str, folder: Path = PROJECT_ROOT / "data") -> Points:
    return parse_points_csv((folder / f"{name}.csv").read_bytes(), 10_000)


def config(architecture: str = "complex", **values: Any) -> TrainConfig:
    return TrainConfig(network=network_spec(architecture), **{"epochs": 200, **values})
