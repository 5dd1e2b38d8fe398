"""A trained network taken away: as an ONNX model (points [N, 2] float32 in, probabilities [N]
out) for onnxruntime or any ONNX runtime, or as its weights in plain JSON for NumPy.

Imported on first use only (the exporter pulls in onnx and onnxscript, seconds of import)."""

from __future__ import annotations

import logging
import math
import threading
import warnings
from typing import Any

import onnx
import torch
from torch import nn

from app.ml.inference import Float64Gelu, TrainedModel

INPUT_NAME = "points"
OUTPUT_NAME = "probabilities"
# torch.export traces through global state: one export at a time in a process.
_EXPORT_LOCK = threading.Lock()
# The exporter logs a warning per torchvision operator it cannot register; there are none here.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)


# erfc's Chebyshev fit (Numerical Recipes' erfcc): fractional error under 1.2e-7 everywhere.
_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


class _ElementaryGelu(nn.Module):
    """What the served model's Float64Gelu computes, from operations onnxruntime has in float64
    (it has no float64 Erf): GELU in float64, rounded once to float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.double() * math.sqrt(0.5)
        t = 1.0 / (1.0 + 0.5 * z.abs())
        poly = torch.full_like(z, _ERFC[-1])
        for coefficient in reversed(_ERFC[:-1]):
            poly = poly * t + coefficient
        tail = t * torch.exp(poly - z * z)  # erfc(|z|)
        erfc = torch.where(z >= 0, tail, 2.0 - tail)
        return (x.double() * (1.0 - 0.5 * erfc)).float()


class _Probabilities(nn.Module):
    """The network with its sigmoid: what POST /predict answers, as one graph."""

    def __init__(self, network: nn.Sequential) -> None:
        super().__init__()
        self.network = nn.Sequential(
            *(_ElementaryGelu() if isinstance(layer, Float64Gelu) else layer for layer in network)
        )

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.network(points)).squeeze(1)


def onnx_bytes(model: TrainedModel, metadata: dict[str, str]) -> bytes:
    """The model as ONNX (torch.onnx's dynamo exporter, not TorchScript), N dynamic, with
    `metadata` in the model's metadata_props."""
    wrapped = _Probabilities(model.module).eval()
    example = torch.zeros(4, 2)
    with _EXPORT_LOCK, warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            wrapped,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={INPUT_NAME: {0: torch.export.Dim("n")}},
            dynamo=True,
            verbose=False,
        )
    assert program is not None  # dynamo=True always returns the program
    proto = program.model_proto
    proto.doc_string = "P(label 1) for each [x, y] row of points"
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    data: bytes = proto.SerializeToString()
    return data


def weights(model: TrainedModel) -> dict[str, Any]:
    """The Linear layers in order, each {"weight": [out][in], "bias": [out]}: with x rows of
    [x, y], h = activation(h @ W.T + b) after every layer but the last, then the sigmoid."""
    linears = [layer for layer in model.module.modules() if isinstance(layer, nn.Linear)]
    return {
        "layers": [
            {"weight": layer.weight.detach().tolist(), "bias": layer.bias.detach().tolist()}
            for layer in linears
        ],
        "activation": model.network.activation.value,
        "output": "sigmoid",
    }
