"""Runs trained together as one stacked model: each run's numbers are its solo run's at every
epoch, bit for bit on the CPU, and each run's stop, divergence and checkpoints are its own."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from app.ml.architectures import network_spec
from app.ml.checkpoints import load_checkpoint, serialize_checkpoint, write_checkpoint_bytes
from app.ml.engine import (
    Member,
    TrainConfig,
    group_key,
    make_optimizer,
    most_runs_stacked,
    train,
    train_group,
)
from app.ml.inference import model_from_checkpoint
from app.vocabulary import LossFunction, Optimizer, TrainOutcome
from tests.ml.training import Recorder, RunRecord, points

CPU = torch.device("cpu")


def solo(config: TrainConfig, data: NDArray[np.float64], **kwargs: Any) -> Any:
    callbacks = Recorder()
    return callbacks, train(config, data, CPU, callbacks, **kwargs)


def assert_same_as_alone(alone: Recorder, together: RunRecord) -> None:
    """Every epoch's loss and validation loss, bit for bit."""
    assert len(together.losses) == len(alone.losses)
    assert together.losses == alone.losses, first_difference(alone.losses, together.losses)
    assert together.val_losses == alone.val_losses


def first_difference(alone: list[float], together: list[float]) -> str:
    epoch = next(e for e, (a, b) in enumerate(zip(alone, together, strict=True)) if a != b)
    return f"epoch {epoch}: alone {alone[epoch]!r}, together {together[epoch]!r}"


def configs(network: str = "complex", **values: Any) -> list[TrainConfig]:
    layers = values.pop("hidden_layers", None)
    activation = values.pop("activation", None)
    rates = values.pop("rates", [0.0003, 0.001, 0.003, 0.01])
    spec = network_spec(network, layers, activation)
    return [
        TrainConfig(network=spec, learning_rate=rate, seed=seed, **values)
        for seed, rate in enumerate(rates)
    ]


def test_the_tutorials_network_trained_together_learns_as_each_run_alone() -> None:
    data = points("curve")
    group = configs(epochs=500, checkpoint_every=250, rates=[0.001, 0.003, 0.01])
    recorder = Recorder(len(group))
    train_group([Member(config) for config in group], data, CPU, recorder)
    for member, config in enumerate(group):
        alone, result = solo(config, data)
        assert_same_as_alone(alone, recorder.runs[member])
        ended = recorder.ends[member]
        assert ended.outcome == TrainOutcome.COMPLETED
        assert (ended.epochs_done, ended.accuracy) == (500, result.accuracy)
        assert ended.final_loss == result.final_loss
        assert (
            sorted(recorder.runs[member].checkpoints) == sorted(alone.checkpoints) == [0, 250, 500]
        )


OPTIMIZERS: dict[str, dict[str, Any]] = {
    "adam": {"optimizer": Optimizer.ADAM},
    "sgd": {"optimizer": Optimizer.SGD, "rates": [0.05, 0.5]},
    "sgd-momentum": {"optimizer": Optimizer.SGD, "momentum": 0.9},
    "rmsprop": {"optimizer": Optimizer.RMSPROP},
    "rmsprop-momentum": {"optimizer": Optimizer.RMSPROP, "momentum": 0.5},
}
NETWORKS: dict[str, dict[str, Any]] = {
    "sigmoid": {"network": "mlp", "hidden_layers": [5], "activation": "sigmoid"},
    "tanh": {"network": "mlp", "hidden_layers": [16, 16], "activation": "tanh"},
    "gelu": {"network": "mlp", "hidden_layers": [16, 8], "activation": "gelu"},
    "odd widths": {"network": "mlp", "hidden_layers": [3, 1, 7], "activation": "relu"},
    "simple": {"network": "simple"},
}
BATCHING: dict[str, dict[str, Any]] = {
    "full batch": {},
    # 160 training points in batches of 48: the last batch holds 16.
    "mini-batches, validation": {"batch_size": 48, "validation_split": 0.2},
}


@pytest.mark.parametrize("batching", BATCHING.values(), ids=BATCHING.keys())
@pytest.mark.parametrize("loss", list(LossFunction))
@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_every_optimizer_loss_and_batching_matches_the_run_alone_at_every_epoch(
    optimizer: dict[str, Any], loss: LossFunction, batching: dict[str, Any]
) -> None:
    data = points("curve")
    group = configs(epochs=150, checkpoint_every=75, loss=loss, **NETWORKS["sigmoid"],
                    **{"rates": [0.003, 0.01, 0.03], **optimizer, **batching})  # fmt: skip
    recorder = Recorder(len(group))
    train_group([Member(config) for config in group], data, CPU, recorder)
    for member, config in enumerate(group):
        alone, result = solo(config, data)
        assert_same_as_alone(alone, recorder.runs[member])
        assert recorder.ends[member].accuracy == result.accuracy
        for name, tensor in alone.checkpoints[150]["model"].items():
            assert torch.equal(recorder.runs[member].checkpoints[150]["model"][name], tensor)


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """A worker trains with one torch thread by default; more is a setting away."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("network", NETWORKS.values(), ids=NETWORKS.keys())
def test_every_activation_and_shape_matches_the_run_alone_at_every_epoch(
    network: dict[str, Any], threads: int
) -> None:
    data = points("curve")
    group = configs(epochs=150, checkpoint_every=150, validation_split=0.1, **network)
    recorder = Recorder(len(group))
    train_group([Member(config) for config in group], data, CPU, recorder)
    for member, config in enumerate(group):
        alone, _ = solo(config, data)
        assert_same_as_alone(alone, recorder.runs[member])


def test_a_members_checkpoint_is_a_solo_runs_and_resumes_as_one(tmp_path: Any) -> None:
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[16], activation="tanh", epochs=60,
                    checkpoint_every=30)  # fmt: skip
    recorder = Recorder(len(group))
    train_group([Member(config) for config in group], data, CPU, recorder)
    state = recorder.runs[2].checkpoints[30]
    alone, _ = solo(group[2], data)
    for name, tensor in alone.checkpoints[30]["model"].items():
        assert torch.equal(state["model"][name], tensor), name
    assert state["optimizer"]["param_groups"][0]["lr"] == group[2].learning_rate
    # Through a file and back, it rebuilds the model, and a solo run resumes from it.
    sha256, _ = write_checkpoint_bytes(tmp_path, "c.pt", serialize_checkpoint(state))
    loaded = load_checkpoint(tmp_path, "c.pt", sha256)
    assert model_from_checkpoint(loaded).epoch == 30
    resumed, _ = solo(group[2], data, resume=loaded)
    assert resumed.losses == alone.losses[30:]
    make_optimizer(group[2], model_from_checkpoint(loaded).module.parameters()).load_state_dict(
        loaded["optimizer"]
    )


def test_members_resumed_from_different_epochs_train_together() -> None:
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[16], activation="relu", epochs=80,
                    checkpoint_every=20, rates=[0.003, 0.01])  # fmt: skip
    first = Recorder(2, stop_after={0: 20, 1: 40})
    train_group([Member(config) for config in group], data, CPU, first)
    assert [first.ends[m].epochs_done for m in (0, 1)] == [20, 40]
    resumes = [first.runs[0].checkpoints[20], first.runs[1].checkpoints[40]]
    second = Recorder(2)
    train_group(
        [Member(config, resume) for config, resume in zip(group, resumes, strict=True)],
        data,
        CPU,
        second,
    )
    for member, start in ((0, 20), (1, 40)):
        alone, result = solo(group[member], data)
        assert second.runs[member].losses == alone.losses[start:]
        assert second.ends[member].accuracy == result.accuracy


def test_stopping_one_member_leaves_the_others_training() -> None:
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[16, 16], activation="tanh", epochs=150,
                    checkpoint_every=50)  # fmt: skip
    asked: set[int] = set()
    recorder = Recorder(len(group))

    def stop_requests() -> Collection[int]:
        if 50 in recorder.runs[1].checkpoints:
            asked.add(1)  # asked once its epoch-50 checkpoint is in, as a cancel might come
        return asked

    train_group(
        [Member(config) for config in group],
        data,
        CPU,
        recorder,
        report_interval_s=0.0,
        stop_requests=stop_requests,
    )
    stopped = recorder.ends[1]
    assert stopped.outcome == TrainOutcome.STOPPED
    assert 50 <= stopped.epochs_done < 150
    assert max(recorder.runs[1].checkpoints) == stopped.epochs_done  # its state at the stop
    assert len(recorder.runs[1].losses) == stopped.epochs_done
    for member in (0, 2, 3):
        alone, result = solo(group[member], data)
        assert recorder.ends[member].outcome == TrainOutcome.COMPLETED
        assert_same_as_alone(alone, recorder.runs[member])
        assert recorder.ends[member].accuracy == result.accuracy


def test_a_member_that_diverges_ends_alone() -> None:
    data = points("curve")
    # A deep linear network under a large step: its weights grow without bound, to inf.
    group = configs(network="mlp", hidden_layers=[8, 8], activation="none", epochs=200,
                    optimizer=Optimizer.SGD, rates=[0.01, 100.0])  # fmt: skip
    recorder = Recorder(2)
    train_group([Member(config) for config in group], data, CPU, recorder)
    diverged = recorder.ends[1]
    assert diverged.outcome == TrainOutcome.DIVERGED
    assert diverged.diverged_at == len(recorder.runs[1].losses) < 200
    assert list(recorder.runs[1].checkpoints) == [0]  # none after the loss went bad
    alone, _ = solo(group[0], data)
    assert recorder.ends[0].outcome == TrainOutcome.COMPLETED
    assert_same_as_alone(alone, recorder.runs[0])


def test_only_runs_that_share_the_shape_and_schedule_are_grouped() -> None:
    base = configs(network="mlp", hidden_layers=[16], activation="tanh", epochs=10)
    assert len({group_key(config) for config in base}) == 1  # rates and seeds may differ
    other = configs(network="mlp", hidden_layers=[16], activation="relu", epochs=10)[0]
    assert group_key(other) != group_key(base[0])
    with pytest.raises(ValueError, match="must share the network"):
        train_group([Member(base[0]), Member(other)], points("curve"), CPU,
                    Recorder(2))  # fmt: skip
    # Memory bounds a group: many runs of a small network, few of a wide one on many points;
    # on the CPU, where they would be slower stacked, wide networks train alone.
    complex_network = network_spec("complex")
    assert most_runs_stacked(complex_network, 200, on_cpu=False) > 64
    assert most_runs_stacked(complex_network, 100_000, on_cpu=False) == 1
    assert most_runs_stacked(complex_network, 200, on_cpu=True) == 1
    assert most_runs_stacked(network_spec("mlp", [64, 64], "tanh"), 200, on_cpu=True) > 64


class AskAfter:
    """`stop_requests` that names `members` from its `calls`-th call on: with mini-batches of 4
    out of 160 training points it is asked 40 times an epoch (at the epoch's start and before
    each batch but the first), so call 95 falls in the third epoch's middle."""

    def __init__(self, members: list[int], calls: int = 95) -> None:
        self.members, self.calls, self.asked = members, calls, 0

    def __call__(self) -> list[int]:
        self.asked += 1
        return self.members if self.asked >= self.calls else []


MINI_BATCHES: dict[str, Any] = {
    "network": "mlp",
    "hidden_layers": [12],
    "activation": "relu",
    "batch_size": 4,
    "validation_split": 0.2,
    "epochs": 8,
    "checkpoint_every": 4,
    "rates": [0.001, 0.003, 0.01],
}


def test_a_member_stopped_inside_a_mini_batch_epoch_stops_there_and_the_others_go_on() -> None:
    """A cancel lands between two mini-batches, not at the epoch's end (at 100,000 points and
    batch size 1 an epoch takes minutes); the half-done epoch is not counted nor checkpointed,
    as for a run alone, and the other runs finish as they would alone."""
    data = points("curve")
    group = configs(**MINI_BATCHES)
    recorder = Recorder(len(group))
    ask = AskAfter([1])
    train_group([Member(config) for config in group], data, CPU, recorder, stop_requests=ask)
    stopped = recorder.ends[1]
    assert (stopped.outcome, stopped.epochs_done) == (TrainOutcome.STOPPED, 2)
    assert len(recorder.runs[1].losses) == len(recorder.runs[1].val_losses) == 2
    assert sorted(recorder.runs[1].checkpoints) == [0]  # no checkpoint of half an epoch
    for member in (0, 2):
        alone, result = solo(group[member], data)
        assert_same_as_alone(alone, recorder.runs[member])
        assert len(recorder.runs[member].losses) == 8
        assert recorder.ends[member].accuracy == result.accuracy
        assert sorted(recorder.runs[member].checkpoints) == [0, 4, 8]


def test_a_shutdown_inside_a_mini_batch_epoch_stops_every_member_there() -> None:
    data = points("curve")
    group = configs(**MINI_BATCHES)
    recorder = Recorder(len(group))
    ask = AskAfter([0, 1, 2])
    train_group([Member(config) for config in group], data, CPU, recorder, stop_requests=ask)
    assert ask.asked == 95  # nothing trained after the request
    for member in range(len(group)):
        ended = recorder.ends[member]
        assert (ended.outcome, ended.epochs_done) == (TrainOutcome.STOPPED, 2)
        assert len(recorder.runs[member].losses) == 2


def test_a_wide_network_whose_last_batch_holds_one_point_matches_the_run_alone() -> None:
    """One-point products (a last batch of one) and wide layers: every path a product takes."""
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[32, 32], activation="tanh", epochs=40,
                    checkpoint_every=40, batch_size=179, validation_split=0.1)  # fmt: skip
    recorder = Recorder(len(group))
    train_group([Member(config) for config in group], data, CPU, recorder)
    for member, config in enumerate(group):
        alone, _ = solo(config, data)
        assert_same_as_alone(alone, recorder.runs[member])


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "autograd"])
def test_each_run_keeps_its_own_checkpoints_and_the_results_come_in_members_order(
    fast: bool,
) -> None:
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[8], activation="relu", epochs=20,
                    rates=[0.01, 0.003, 0.001])  # fmt: skip
    group = [
        replace(config, checkpoint_every=every)
        for config, every in zip(group, (3, 5, 20), strict=True)
    ]
    recorder = Recorder(len(group))
    results = train_group([Member(config) for config in group], data, CPU, recorder, fast=fast)
    assert results == [recorder.ends[member] for member in range(len(group))]
    assert sorted(recorder.runs[0].checkpoints) == [0, 3, 6, 9, 12, 15, 18, 20]
    assert sorted(recorder.runs[1].checkpoints) == [0, 5, 10, 15, 20]
    assert sorted(recorder.runs[2].checkpoints) == [0, 20]
    for member, config in enumerate(group):
        alone, _ = solo(config, data, fast=fast)
        assert_same_as_alone(alone, recorder.runs[member])


def test_a_stop_between_mini_batches_that_leaves_one_run_goes_on_as_that_run_alone() -> None:
    data = points("curve")
    group = configs(**{**MINI_BATCHES, "rates": [0.001, 0.01]})
    recorder = Recorder(len(group))
    train_group(
        [Member(config) for config in group], data, CPU, recorder, stop_requests=AskAfter([1])
    )
    assert (recorder.ends[1].outcome, recorder.ends[1].epochs_done) == (TrainOutcome.STOPPED, 2)
    alone, result = solo(group[0], data)
    assert_same_as_alone(alone, recorder.runs[0])
    assert recorder.ends[0].accuracy == result.accuracy


def test_an_empty_group_is_refused_as_such() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        train_group([], points("curve"), CPU, Recorder(0))
