"""The engine's hand-written fast path against autograd, and against the tutorial's own loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from app.ml import engine
from app.ml.architectures import build_network, network_spec
from app.ml.engine import TrainConfig, make_optimizer, train
from app.ml.step import FastStep
from app.vocabulary import Activation, LossFunction, Optimizer
from tests.ml.training import CPU, Recorder, points

CASES: dict[str, dict[str, Any]] = {
    "simple": {"architecture": "simple"},
    "complex": {"architecture": "complex"},
    "tanh": {"architecture": "mlp", "hidden_layers": [16, 8], "activation": "tanh"},
    "sigmoid": {"architecture": "mlp", "hidden_layers": [12], "activation": "sigmoid"},
    "gelu": {"architecture": "mlp", "hidden_layers": [8, 8, 8], "activation": "gelu"},
    "linear": {"architecture": "mlp", "hidden_layers": [5], "activation": "none"},
    "odd widths": {"architecture": "mlp", "hidden_layers": [3, 1, 7], "activation": "relu"},
}
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adam": {},
    "sgd": {"optimizer": "sgd", "learning_rate": 0.05},
    "sgd momentum": {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    "rmsprop": {"optimizer": "rmsprop", "learning_rate": 0.002},
    "rmsprop momentum": {"optimizer": "rmsprop", "learning_rate": 0.002, "momentum": 0.5},
    "batches and validation": {"batch_size": 48, "validation_split": 0.2},
}


def make_config(network: dict[str, Any], **values: Any) -> TrainConfig:
    return TrainConfig(network=network_spec(**network), **{"epochs": 60, "seed": 4, **values})


def run(config: TrainConfig, *, fast: bool, **options: Any) -> Recorder:
    recorder = Recorder()
    train(config, points("curve"), CPU, recorder, fast=fast, **options)
    return recorder


@pytest.mark.parametrize("loss", list(LossFunction))
@pytest.mark.parametrize("network", CASES.values(), ids=CASES.keys())
def test_fast_path_gives_autograds_history_and_weights_bit_for_bit(
    network: dict[str, Any], loss: LossFunction
) -> None:
    config = make_config(network, checkpoint_every=30, validation_split=0.1, loss=loss)
    reference, fast = run(config, fast=False), run(config, fast=True)
    assert len(fast.losses) == 60
    assert fast.losses == reference.losses
    assert fast.val_losses == reference.val_losses
    for epoch in (30, 60):
        for name, tensor in reference.checkpoints[epoch]["model"].items():
            assert torch.equal(fast.checkpoints[epoch]["model"][name], tensor), name


@pytest.mark.parametrize("loss", list(LossFunction))
@pytest.mark.parametrize("options", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_every_optimizer_on_the_fast_path_matches_torch_optim_and_its_state(
    options: dict[str, Any], loss: LossFunction
) -> None:
    config = make_config(CASES["complex"], epochs=40, checkpoint_every=40, loss=loss, **options)
    reference, fast = run(config, fast=False), run(config, fast=True)
    assert fast.losses == reference.losses
    expected = reference.checkpoints[40]["optimizer"]
    written = fast.checkpoints[40]["optimizer"]
    assert written["param_groups"] == expected["param_groups"]
    assert written["state"].keys() == expected["state"].keys()
    for index, state in expected["state"].items():
        assert written["state"][index].keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(written["state"][index][key], value), (index, key)


@pytest.mark.parametrize(("first", "then"), [(True, False), (False, True)])
def test_a_checkpoint_from_either_path_resumes_on_the_other(first: bool, then: bool) -> None:
    config = make_config(CASES["tanh"], epochs=80, checkpoint_every=30, optimizer="adam")
    straight = run(config, fast=first)
    resumed = run(config, fast=then, resume=straight.checkpoints[30])
    assert resumed.first_epoch == 30
    assert resumed.losses == straight.losses[30:]


def test_resuming_sgd_with_momentum_continues_its_momentum() -> None:
    config = make_config(
        CASES["complex"], epochs=50, checkpoint_every=25, **OPTIMIZERS["sgd momentum"]
    )
    straight = run(config, fast=True)
    resumed = run(config, fast=True, resume=straight.checkpoints[25])
    assert resumed.losses == straight.losses[25:]


def test_the_model_reads_the_flat_buffer_the_optimizer_writes() -> None:
    torch.manual_seed(0)
    model = build_network(network_spec("complex"))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    step = FastStep(
        [model], [optimizer], [(Optimizer.ADAM, 0.01, 0.0)], Activation.RELU, LossFunction.BCE
    )
    data = torch.as_tensor(points("curve"), dtype=torch.float32)
    step(data[:, :2], data[:, 2:])
    after = model.state_dict()
    assert all(not torch.equal(after[name], before[name]) for name in before)
    assert torch.equal(step.weights[0], step.params[0, : 2 * 128].view(128, 2))
    assert step.weights[0].data_ptr() == next(model.parameters()).data_ptr()


def test_an_empty_optimizer_state_exports_as_torch_writes_it() -> None:
    model = build_network(network_spec("simple"))
    config = make_config(CASES["simple"])
    optimizer = make_optimizer(config, model.parameters())
    step = FastStep(
        [model], [optimizer], [(Optimizer.ADAM, 0.003, 0.0)], Activation.NONE, LossFunction.BCE
    )
    step.export(0, optimizer)
    assert optimizer.state_dict()["state"] == {}


def tutorial_loop(network: nn.Sequential, epochs: int) -> list[float]:
    """The tutorial's own loop: a sigmoid output, BCELoss and torch.optim.Adam's default kernel."""
    data = torch.as_tensor(points("curve"), dtype=torch.float32)
    x, y = data[:, :2], data[:, 2:]
    model = nn.Sequential(*network, nn.Sigmoid())
    criterion = nn.BCELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    losses = []
    for _epoch in range(epochs):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize(("architecture", "epochs"), [("simple", 3000), ("complex", 100)])
def test_the_engine_follows_the_tutorials_loop_within_float32_rounding(
    architecture: str, epochs: int
) -> None:
    torch.manual_seed(9)
    tutorial = tutorial_loop(build_network(network_spec(architecture)), epochs)
    ours = run(TrainConfig(network=network_spec(architecture), epochs=epochs, seed=9), fast=True)
    # A few float32 steps apart (float32 rounding is 6e-8 relative). The simple model is convex,
    # so that holds for the whole run; the complex one is not, and such tiny differences grow
    # over thousands of epochs as they would between two machines, so only its start is held.
    np.testing.assert_allclose(ours.losses, tutorial, rtol=1e-6)


def test_a_small_loss_buffer_reports_often_and_the_same_losses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Many points make the logits buffer hold few epochs; the history must not change.
    assert engine.PendingLosses.capacity_for(200) == 4096
    assert engine.PendingLosses.capacity_for(100_000) == 41  # 16 MiB of logits at most
    config = make_config(CASES["complex"], epochs=100, validation_split=0.2)
    roomy = run(config, fast=True)
    monkeypatch.setattr(engine, "LOSS_BUFFER_BYTES", 1)
    assert engine.PendingLosses.capacity_for(200) == 16
    tight = run(config, fast=True)  # Recorder checks that reports are contiguous
    assert tight.losses == roomy.losses
    assert tight.val_losses == roomy.val_losses


def test_warm_up_leaves_no_trace_and_the_next_run_is_unchanged() -> None:
    config = make_config(CASES["simple"], epochs=30)
    before = run(config, fast=True)
    engine.warm_up()
    assert run(config, fast=True).losses == before.losses
