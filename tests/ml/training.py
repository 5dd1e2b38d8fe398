"""What the engine tests share: callbacks that record everything, the data, a config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from app.core.config import PROJECT_ROOT
from app.ml.architectures import network_spec
from app.ml.datagen import Points
from app.ml.engine import TrainConfig
from app.ml.points_csv import parse_points_csv

CPU = torch.device("cpu")


class Recorder:
    """Callbacks that keep everything, and can ask the engine to stop."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.losses: list[float] = []
        self.val_losses: list[float] = []
        self.checkpoints: dict[int, dict[str, Any]] = {}
        self.stop_after = stop_after
        self.first_epoch: int | None = None

    def on_progress(
        self, first_epoch: int, losses: list[float], val_losses: list[float] | None
    ) -> bool:
        if self.first_epoch is None:
            self.first_epoch = first_epoch
        assert first_epoch == self.first_epoch + len(self.losses), "reports must be contiguous"
        self.losses += losses
        self.val_losses += val_losses or []
        return self.stop_after is None or first_epoch + len(losses) < self.stop_after

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        self.checkpoints[epoch] = state


def points(name: str, folder: Path = PROJECT_ROOT / "data") -> Points:
    return parse_points_csv((folder / f"{name}.csv").read_bytes(), 10_000)


def config(architecture: str = "complex", **values: Any) -> TrainConfig:
    return TrainConfig(network=network_spec(architecture), **{"epochs": 200, **values})
