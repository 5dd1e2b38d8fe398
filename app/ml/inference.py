"""Using a trained network: rebuild it from a checkpoint, predict, and evaluate on a grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from app.ml.architectures import NetworkSpec, build_network

# Points per forward pass: bounds memory for the widest networks on the largest requests.
PREDICT_CHUNK = 4096


@dataclass(frozen=True)
class TrainedModel:
    network: NetworkSpec
    module: nn.Module
    epoch: int


def model_from_checkpoint(state: dict[str, Any]) -> TrainedModel:
    """A checkpoint carries its config, so the model is rebuilt from the file alone."""
    network = state["config"]["network"]
    spec = NetworkSpec(
        network["architecture"], tuple(network["hidden_layers"]), network["activation"]
    )
    module = build_network(spec)
    module.load_state_dict(state["model"])
    module.eval()
    return TrainedModel(spec, module, int(state["epoch"]))


def predict_probabilities(model: nn.Module, xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """P(label 1) for each (x, y) row."""
    inputs = torch.as_tensor(np.asarray(xy, dtype=np.float32).reshape(-1, 2))
    out = np.empty(len(inputs), dtype=np.float64)
    with torch.inference_mode():
        for begin in range(0, len(inputs), PREDICT_CHUNK):
            chunk = inputs[begin : begin + PREDICT_CHUNK]
            out[begin : begin + len(chunk)] = (
                torch.sigmoid(model(chunk)).squeeze(1).double().numpy()
            )
    return out


def evaluate(model: nn.Module, points: NDArray[np.float64]) -> tuple[float, float]:
    """(binary cross-entropy, accuracy) of the model on labelled points."""
    probabilities = predict_probabilities(model, points[:, :2])
    labels = points[:, 2]
    clipped = np.clip(probabilities, 1e-12, 1 - 1e-12)
    loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
    accuracy = float(np.mean((probabilities > 0.5) == (labels == 1)))
    return loss, accuracy


@dataclass(frozen=True)
class ProbabilityGrid:
    xs: NDArray[np.float64]
    ys: NDArray[np.float64]
    probabilities: NDArray[np.float64]  # shape (len(ys), len(xs))


def probability_grid(
    model: nn.Module, bounds: tuple[float, float, float, float], resolution: int = 200
) -> ProbabilityGrid:
    x_min, x_max, y_min, y_max = bounds
    xs = np.linspace(x_min, x_max, resolution)
    ys = np.linspace(y_min, y_max, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    flat = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    return ProbabilityGrid(xs, ys, predict_probabilities(model, flat).reshape(grid_x.shape))


def padded_bounds(
    points: NDArray[np.float64], margin: float = 0.1
) -> tuple[float, float, float, float]:
    """The data's bounds with a margin, never narrower than 0.1 on a side."""
    lows, highs = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    pad = np.maximum((highs - lows) * margin, 0.05)
    return (
        float(lows[0] - pad[0]),
        float(highs[0] + pad[0]),
        float(lows[1] - pad[1]),
        float(highs[1] + pad[1]),
    )
