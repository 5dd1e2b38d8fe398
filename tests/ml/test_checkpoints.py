"""How large a run's checkpoints are, from the optimizer state torch.optim really keeps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from app.ml.checkpoints import estimated_checkpoint_bytes, kept_buffers, run_checkpoint_bytes
from app.vocabulary import Optimizer


def _torch_optimizer(
    kind: Optimizer, params: list[nn.Parameter], momentum: float
) -> torch.optim.Optimizer:
    if kind == Optimizer.ADAM:
        return torch.optim.Adam(params, lr=0.01)
    if kind == Optimizer.SGD:
        return torch.optim.SGD(params, lr=0.01, momentum=momentum)
    return torch.optim.RMSprop(params, lr=0.01, momentum=momentum)


@pytest.mark.parametrize("kind", list(Optimizer))
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_kept_buffers_are_the_per_parameter_state_torch_optim_keeps(
    kind: Optimizer, momentum: float
) -> None:
    layer = nn.Linear(2, 3)
    optimizer = _torch_optimizer(kind, list(layer.parameters()), momentum)
    layer(torch.ones(4, 2)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()["state"].get(0, {})  # the weight's (none: no state)
    per_parameter = {
        name
        for name, value in state.items()
        if isinstance(value, torch.Tensor) and value.shape == layer.weight.shape
    }
    kept = {name for name, keeps in kept_buffers(kind, momentum).items() if keeps}
    assert kept == per_parameter


@pytest.mark.parametrize(
    ("kind", "momentum", "buffers"),
    [
        (Optimizer.ADAM, 0.0, 2),
        (Optimizer.SGD, 0.0, 0),
        (Optimizer.SGD, 0.9, 1),
        (Optimizer.RMSPROP, 0.0, 1),
        (Optimizer.RMSPROP, 0.9, 2),
    ],
)
def test_a_run_checkpoint_counts_each_buffer_its_optimizer_keeps(
    kind: Optimizer, momentum: float, buffers: int
) -> None:
    expected = estimated_checkpoint_bytes(17_025, buffers)
    assert run_checkpoint_bytes(17_025, kind, momentum) == expected
