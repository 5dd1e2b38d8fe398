"""Runs trained together as one stacked model: each run's numbers are its solo run's, and each
run's stop, divergence and checkpoints are its own."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from app.ml.architectures import network_spec
from app.ml.checkpoints import load_checkpoint, serialize_checkpoint, write_checkpoint_bytes
from app.ml.engine import TrainConfig, TrainResult, make_optimizer, train
from app.ml.inference import model_from_checkpoint
from app.ml.stacked import Member, Report, group_key, most_runs_stacked, train_group
from app.vocabulary import LossFunction, Optimizer, TrainOutcome
from tests.ml.training import Recorder, points

CPU = torch.device("cpu")
TOLERANCE = 1e-5  # relative, over the first 100 epochs: the float32 tolerance


class GroupRecorder:
    """What a group reports, kept per member as a solo run's callbacks keep it."""

    def __init__(self, members: int, stop_after: dict[int, int] | None = None) -> None:
        stop_after = stop_after or {}  # member -> the epoch after which its callbacks say stop
        self.runs = [Recorder(stop_after.get(member)) for member in range(members)]
        self.ends: dict[int, TrainResult] = {}

    def on_progress(self, reports: list[Report]) -> Collection[int]:
        return [
            report.member
            for report in reports
            if not self.runs[report.member].on_progress(
                report.first_epoch, report.losses, report.val_losses
            )
        ]

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        self.runs[member].on_checkpoint(epoch, state)

    def on_end(self, member: int, result: TrainResult) -> None:
        assert member not in self.ends, "a member ended twice"
        self.ends[member] = result


def solo(config: TrainConfig, data: NDArray[np.float64], **kwargs: Any) -> Any:
    callbacks = Recorder()
    return callbacks, train(config, data, CPU, callbacks, **kwargs)


def assert_same_losses(solo_losses: list[float], group_losses: list[float]) -> None:
    assert len(group_losses) == len(solo_losses)
    first = np.array(solo_losses[:100])
    worst = np.max(np.abs(np.array(group_losses[:100]) - first) / np.abs(first))
    assert worst <= TOLERANCE, f"relative difference {worst:.2e} over the first 100 epochs"


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
    recorder = GroupRecorder(len(group))
    train_group([Member(config) for config in group], data, CPU, recorder)
    for member, config in enumerate(group):
        alone, result = solo(config, data)
        assert_same_losses(alone.losses, recorder.runs[member].losses)
        ended = recorder.ends[member]
        assert ended.outcome == TrainOutcome.COMPLETED
        assert (ended.epochs_done, ended.accuracy) == (500, result.accuracy)
        assert ended.final_loss == pytest.approx(result.final_loss, rel=TOLERANCE)
        assert (
            sorted(recorder.runs[member].checkpoints) == sorted(alone.checkpoints) == [0, 250, 500]
        )


@pytest.mark.parametrize(
    "values",
    [
        {"network": "mlp", "hidden_layers": [16, 16], "activation": "tanh"},
        {"network": "mlp", "hidden_layers": [16, 8], "activation": "gelu", "momentum": 0.9,
         "optimizer": Optimizer.SGD},
        {"network": "mlp", "hidden_layers": [5], "activation": "sigmoid",
         "optimizer": Optimizer.RMSPROP, "loss": LossFunction.MSE},
        {"network": "mlp", "hidden_layers": [12], "activation": "relu", "batch_size": 48,
         "validation_split": 0.2},
        {"network": "simple", "optimizer": Optimizer.SGD, "rates": [0.01, 0.5]},
    ],
    ids=["tanh-adam", "gelu-sgd-momentum", "sigmoid-rmsprop-mse", "minibatch-validation",
         "simple-sgd"],
)  # fmt: skip
def test_each_optimizer_loss_and_batching_matches_the_run_alone(values: dict[str, Any]) -> None:
    data = points("curve")
    group = configs(epochs=120, checkpoint_every=60, **values)
    recorder = GroupRecorder(len(group))
    train_group([Member(config) for config in group], data, CPU, recorder)
    for member, config in enumerate(group):
        alone, result = solo(config, data)
        assert_same_losses(alone.losses, recorder.runs[member].losses)
        if config.validation_split:
            assert_same_losses(alone.val_losses, recorder.runs[member].val_losses)
        assert recorder.ends[member].accuracy == result.accuracy


def test_a_members_checkpoint_is_a_solo_runs_and_resumes_as_one(tmp_path: Any) -> None:
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[16], activation="tanh", epochs=60,
                    checkpoint_every=30)  # fmt: skip
    recorder = GroupRecorder(len(group))
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
    assert resumed.losses == pytest.approx(alone.losses[30:], rel=TOLERANCE)
    make_optimizer(group[2], model_from_checkpoint(loaded).module.parameters()).load_state_dict(
        loaded["optimizer"]
    )


def test_members_resumed_from_different_epochs_train_together() -> None:
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[16], activation="relu", epochs=80,
                    checkpoint_every=20, rates=[0.003, 0.01])  # fmt: skip
    first = GroupRecorder(2, stop_after={0: 20, 1: 40})
    train_group([Member(config) for config in group], data, CPU, first)
    assert [first.ends[m].epochs_done for m in (0, 1)] == [20, 40]
    resumes = [first.runs[0].checkpoints[20], first.runs[1].checkpoints[40]]
    second = GroupRecorder(2)
    train_group(
        [Member(config, resume) for config, resume in zip(group, resumes, strict=True)],
        data,
        CPU,
        second,
    )
    for member, start in ((0, 20), (1, 40)):
        alone, result = solo(group[member], data)
        assert_same_losses(alone.losses[start:], second.runs[member].losses)
        assert second.ends[member].accuracy == result.accuracy


def test_stopping_one_member_leaves_the_others_training() -> None:
    data = points("curve")
    group = configs(network="mlp", hidden_layers=[16, 16], activation="tanh", epochs=150,
                    checkpoint_every=50)  # fmt: skip
    asked: set[int] = set()
    recorder = GroupRecorder(len(group))

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
        assert_same_losses(alone.losses, recorder.runs[member].losses)
        assert recorder.ends[member].accuracy == result.accuracy


def test_a_member_that_diverges_ends_alone() -> None:
    data = points("curve")
    # A deep linear network under a large step: its weights grow without bound, to inf.
    group = configs(network="mlp", hidden_layers=[8, 8], activation="none", epochs=200,
                    optimizer=Optimizer.SGD, rates=[0.01, 100.0])  # fmt: skip
    recorder = GroupRecorder(2)
    train_group([Member(config) for config in group], data, CPU, recorder)
    diverged = recorder.ends[1]
    assert diverged.outcome == TrainOutcome.DIVERGED
    assert diverged.diverged_at == len(recorder.runs[1].losses) < 200
    assert list(recorder.runs[1].checkpoints) == [0]  # none after the loss went bad
    alone, _ = solo(group[0], data)
    assert recorder.ends[0].outcome == TrainOutcome.COMPLETED
    assert_same_losses(alone.losses, recorder.runs[0].losses)


def test_only_runs_that_share_the_shape_and_schedule_are_grouped() -> None:
    base = configs(network="mlp", hidden_layers=[16], activation="tanh", epochs=10)
    assert len({group_key(config) for config in base}) == 1  # rates and seeds may differ
    other = configs(network="mlp", hidden_layers=[16], activation="relu", epochs=10)[0]
    assert group_key(other) != group_key(base[0])
    with pytest.raises(ValueError, match="must share the network"):
        train_group([Member(base[0]), Member(other)], points("curve"), CPU,
                    GroupRecorder(2))  # fmt: skip
    # Memory bounds a group: many runs of a small network, few of a wide one on many points;
    # on the CPU, where they would be slower stacked, wide networks train alone.
    complex_network = network_spec("complex")
    assert most_runs_stacked(complex_network, 200, on_cpu=False) > 64
    assert most_runs_stacked(complex_network, 100_000, on_cpu=False) == 1
    assert most_runs_stacked(complex_network, 200, on_cpu=True) == 1
    assert most_runs_stacked(network_spec("mlp", [64, 64], "tanh"), 200, on_cpu=True) > 64


class AskAfter:
    """`stop_requests` that names `members` from its `calls`-th call on: with mini-batches of 4
    out of 160 training points it is asked 41 times an epoch (at the epoch's start and before
    each batch), so call 95 falls in the third epoch's middle."""

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
    recorder = GroupRecorder(len(group))
    ask = AskAfter([1])
    train_group([Member(config) for config in group], data, CPU, recorder, stop_requests=ask)
    stopped = recorder.ends[1]
    assert (stopped.outcome, stopped.epochs_done) == (TrainOutcome.STOPPED, 2)
    assert len(recorder.runs[1].losses) == len(recorder.runs[1].val_losses) == 2
    assert sorted(recorder.runs[1].checkpoints) == [0]  # no checkpoint of half an epoch
    for member in (0, 2):
        alone, result = solo(group[member], data)
        assert_same_losses(alone.losses, recorder.runs[member].losses)
        assert_same_losses(alone.val_losses, recorder.runs[member].val_losses)
        assert len(recorder.runs[member].losses) == 8
        assert recorder.ends[member].accuracy == result.accuracy
        assert sorted(recorder.runs[member].checkpoints) == [0, 4, 8]


def test_a_shutdown_inside_a_mini_batch_epoch_stops_every_member_there() -> None:
    data = points("curve")
    group = configs(**MINI_BATCHES)
    recorder = GroupRecorder(len(group))
    ask = AskAfter([0, 1, 2])
    train_group([Member(config) for config in group], data, CPU, recorder, stop_requests=ask)
    assert ask.asked == 95  # nothing trained after the request
    for member in range(len(group)):
        ended = recorder.ends[member]
        assert (ended.outcome, ended.epochs_done) == (TrainOutcome.STOPPED, 2)
        assert len(recorder.runs[member].losses) == 2
