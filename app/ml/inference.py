"""Using a trained network: rebuild it from a checkpoint, predict, and evaluate on a grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional

from app.ml.architectures import NetworkSpec, build_network
from app.vocabulary import Activation, Architecture, LossFunction

# Points per forward pass: bounds memory for the widest networks on the largest requests.
PREDICT_CHUNK = 4096


class Float64Gelu(nn.Module):
    """GELU computed in float64 and rounded once. torch's float32 GELU kernel is a few ulp
    off, enough to move a served probability by 1e-6 after two layers; rounded once, the
    answers agree with other runtimes (the ONNX export computes the same) to float32's
    precision."""

    def forward(self, x: Tensor) -> Tensor:
        return functional.gelu(x.double()).float()


@dataclass(frozen=True)
class TrainedModel:
    network: NetworkSpec
    module: nn.Sequential
    epoch: int
    loss: LossFunction = LossFunction.BCE  # what it was trained on


def model_from_checkpoint(state: dict[str, Any]) -> TrainedModel:
    """A checkpoint carries its config, so the model is rebuilt from the file alone."""
    network = state["config"]["network"]
    spec = NetworkSpec(
        Architecture(network["architecture"]),
        tuple(network["hidden_layers"]),
        Activation(network["activation"]),
    )
    module = build_network(spec)
    module.load_state_dict(state["model"])
    module = nn.Sequential(*(Float64Gelu() if isinstance(m, nn.GELU) else m for m in module))
    module.eval()
    # Checkpoints from before the loss was a choice were all trained on the tutorial's.
    loss = LossFunction(state["config"].get("loss", LossFunction.BCE))
    return TrainedModel(spec, module, int(state["epoch"]), loss)


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


def pointwise_loss(logits: Tensor, targets: Tensor, loss: LossFunction) -> Tensor:
    """Each point's loss: binary cross-entropy from the logits (the tutorial's, computed
    stably), or the squared error of the sigmoid's probability."""
    if loss == LossFunction.MSE:
        return (torch.sigmoid(logits) - targets) ** 2
    return functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def mean_loss(logits: Tensor, targets: Tensor, loss: LossFunction) -> Tensor:
    """The mean loss, BCE through torch's own mean reduction (the fast step is held to it bit
    for bit)."""
    if loss == LossFunction.MSE:
        return pointwise_loss(logits, targets, loss).mean()
    return functional.binary_cross_entropy_with_logits(logits, targets)


def evaluate(
    model: nn.Module, data: Tensor, loss_function: LossFunction = LossFunction.BCE
) -> tuple[float, float]:
    """(loss, accuracy) on labelled points, rows of (x, y, label): the loss as training computes
    it, the accuracy as a count over n in float64 (0.81, not float32's 0.8100000023841858)."""
    model.eval()
    with torch.inference_mode():
        logits = model(data[:, :2])
        labels = data[:, 2:]
        loss = mean_loss(logits, labels, loss_function).item()
        correct = int(((logits > 0).float() == labels).sum().item())
    return loss, correct / len(data)


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
    return pad_bounds((lows[0], highs[0], lows[1], highs[1]), margin)


def pad_bounds(
    bounds: tuple[float, float, float, float], margin: float = 0.1
) -> tuple[float, float, float, float]:
    """(x_min, x_max, y_min, y_max) widened by `margin` of each side's span, at least 0.05."""
    x_min, x_max, y_min, y_max = bounds
    pad_x = max((x_max - x_min) * margin, 0.05)
    pad_y = max((y_max - y_min) * margin, 0.05)
    return (
        float(x_min - pad_x),
        float(x_max + pad_x),
        float(y_min - pad_y),
        float(y_max + pad_y),
    )
