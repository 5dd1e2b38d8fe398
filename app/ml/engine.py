"""The training loop: the tutorial's loop, made resumable, observable and stoppable.

It knows nothing of HTTP or databases. It takes a config, the points and a device, and reports
through callbacks: per-epoch losses in batches (one host sync per batch, not per step), and
checkpoint states. The loss of epoch `e` is the full-data loss computed before that epoch's
update, exactly what the tutorial prints as `Epoch e, Loss: ...`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from app.ml.architectures import COMPLEX, NetworkSpec, build_network
from app.ml.checkpoints import to_cpu
from app.ml.fast_step import FastTrainingStep
from app.ml.inference import evaluate, mean_loss, pointwise_loss
from app.vocabulary import (
    DEFAULT_CHECKPOINT_EVERY,
    REPORT_INTERVAL_S,
    TUTORIAL_LEARNING_RATE,
    LossFunction,
    Optimizer,
    TrainOutcome,
)

# Most epochs whose losses are held on the device between two reports, and most bytes of logits
# held for them.
LOSS_BUFFER_EPOCHS = 4096
LOSS_BUFFER_BYTES = 16 * 2**20


@dataclass(frozen=True)
class TrainConfig:
    network: NetworkSpec
    epochs: int  # optimizer passes in all; the tutorial's loop is TUTORIAL_EPOCHS
    learning_rate: float = TUTORIAL_LEARNING_RATE
    optimizer: Optimizer = Optimizer.ADAM  # default betas, as the tutorial
    momentum: float = 0.0  # for sgd and rmsprop
    batch_size: int | None = None  # None: full batch, as the tutorial; else shuffled mini-batches
    seed: int = 0  # seeds the weights, the validation split and the shuffling
    validation_split: float = 0.0  # fraction held out; its loss is recorded too
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY  # and always at 0 and at the end
    loss: LossFunction = LossFunction.BCE  # the tutorial's binary cross-entropy, or mse

    def as_dict(self) -> dict[str, Any]:
        """Plain values only: checkpoints carry this, and load with `weights_only`."""
        values = asdict(self)
        values["network"] = self.network.as_dict()
        values["optimizer"] = Optimizer(self.optimizer).value
        values["loss"] = LossFunction(self.loss).value
        return values


class Callbacks(Protocol):
    def on_progress(
        self, first_epoch: int, losses: list[float], val_losses: list[float] | None
    ) -> bool:
        """Losses of epochs first_epoch, first_epoch + 1, ...; return False to stop training."""
        ...

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        """A checkpoint after `epoch` epochs; `state` holds CPU tensors and plain values."""
        ...


@dataclass
class TrainResult:
    outcome: TrainOutcome
    epochs_done: int
    final_loss: float | None = None
    final_val_loss: float | None = None
    accuracy: float | None = None
    diverged_at: int | None = None
    device: str = "cpu"


class PendingLosses:
    """Epoch losses not yet reported, kept on the device, so a report costs one host sync.

    In full-batch training an epoch's loss is that of its logits: the logits are kept, and the
    losses of all pending epochs come from one call at the report, not one call per epoch. With
    mini-batches the epoch's loss is the batches' weighted mean, kept as a tensor.
    """

    def __init__(
        self, targets: torch.Tensor, capacity: int, loss: LossFunction = LossFunction.BCE
    ) -> None:
        self.targets = targets
        self.loss = loss
        self.capacity = capacity
        self.count = 0
        self._logits: torch.Tensor | None = None
        self._losses: list[torch.Tensor] = []

    @staticmethod
    def capacity_for(n_points: int) -> int:
        return max(16, min(LOSS_BUFFER_EPOCHS, LOSS_BUFFER_BYTES // (4 * max(n_points, 1))))

    def next_row(self) -> torch.Tensor:
        """Where the next epoch's logits go; `commit()` once they are written."""
        if self._logits is None:
            shape = (self.capacity, *self.targets.shape)
            self._logits = torch.empty(shape, device=self.targets.device)
        # A view made when needed: unbind() would make them all at once, at 10 us each.
        return self._logits[self.count]

    def commit(self) -> None:
        self.count += 1

    def drop_to(self, count: int) -> None:
        """Forget the pending epochs past `count`: an epoch stopped half way has no loss."""
        del self._losses[count:]
        self.count = min(self.count, count)

    def pop_row(self) -> torch.Tensor:
        """The last epoch's logits, taken back: a copy, for an epoch that goes on after the
        epochs before it are reported."""
        assert self._logits is not None
        assert self.count
        assert not self._losses
        self.count -= 1
        return self._logits[self.count].clone()

    def add_loss(self, loss: torch.Tensor) -> None:
        self._losses.append(loss)
        self.count += 1

    @property
    def full(self) -> bool:
        return self.count == self.capacity

    def record(self, model: nn.Module, x: Tensor) -> None:
        """The model's logits on x, as the next epoch's."""
        with torch.no_grad():
            self.next_row().copy_(model(x))
        self.commit()

    def take(self) -> list[float]:
        """The pending losses, in epoch order; the buffer is empty afterwards."""
        result: list[float] = self._take_values().tolist()
        return result

    def take_per_run(self, runs: int) -> list[list[float]]:
        """With targets stacked for several runs, (runs, n, 1): each run's pending losses."""
        values = self._take_values().reshape(-1, runs)
        result: list[list[float]] = values.t().tolist()
        return result

    def _take_values(self) -> torch.Tensor:
        if self._losses:
            values = torch.stack(self._losses)
        elif self._logits is not None and self.count:
            logits = self._logits[: self.count]
            per_point = pointwise_loss(logits, self.targets.expand_as(logits), self.loss)
            # Mean over each run's points: the last two dimensions of the targets.
            values = per_point.flatten(self.targets.dim() - 1).mean(dim=-1)
        else:
            values = torch.empty(0)
        self.count = 0
        self._losses.clear()
        return values


class StopTraining(Exception):
    """Raised by the stop check inside an epoch, before the parameters change (full batch) or
    between mini-batches."""


class AutogradStep:
    """A step through autograd and torch.optim: the reference the fast step is held to."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        stop: Callable[[], None] | None,
        loss: LossFunction = LossFunction.BCE,
    ) -> None:
        self.model, self.optimizer, self.stop = model, optimizer, stop
        self.loss = loss
        self.updates = 0

    def __call__(self, x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(x)
        objective: Any = mean_loss(logits, y, self.loss)  # torch's backward is untyped
        objective.backward()
        if self.stop is not None:
            self.stop()
        self.optimizer.step()
        self.updates += 1
        return logits.detach() if out is None else out.copy_(logits.detach())

    def sync(self) -> None:
        """Bring `optimizer` up to date before its state_dict is read: it is already."""


# One optimizer update: `step(x, y, out)` returns the logits before it (written to `out` if
# given), `step.updates` counts them, `step.sync()` readies `step.optimizer` for a checkpoint.
Step = AutogradStep | FastTrainingStep


def make_step(
    config: TrainConfig,
    model: nn.Sequential,
    optimizer: torch.optim.Optimizer,
    *,
    fast: bool,
    stop: Callable[[], None] | None,
) -> Step:
    """The hand-written step of `app.ml.fast_step` (the tutorial's loss), or autograd's with
    `fast=False` or another loss."""
    if not fast or config.loss != LossFunction.BCE:
        return AutogradStep(model, optimizer, stop, config.loss)
    return FastTrainingStep(
        model,
        optimizer,
        config.network.activation,
        config.optimizer,
        learning_rate=config.learning_rate,
        momentum=config.momentum,
        stop=stop,
    )


class _Discard:
    def on_progress(self, first_epoch: int, losses: list[float], val: list[float] | None) -> bool:
        return True

    def on_checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        pass


def warm_up() -> None:
    """Pay torch's one-time costs before a process's first run instead of during it.

    The first optimizer built imports torch._dynamo (about 2 s on a 2-core machine), and the
    first products, checkpoint states and losses load their kernels.
    """
    corners = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    config = TrainConfig(network=COMPLEX, epochs=2, checkpoint_every=1)
    train(config, corners, torch.device("cpu"), _Discard())


def make_optimizer(config: TrainConfig, parameters: Any) -> torch.optim.Optimizer:
    match config.optimizer:
        case Optimizer.ADAM:
            # The fused kernel: one pass over the parameters per step instead of eight, on CPU
            # and CUDA; its results differ from the default kernel's by float32 rounding.
            return torch.optim.Adam(parameters, lr=config.learning_rate, fused=True)
        case Optimizer.SGD:
            return torch.optim.SGD(parameters, lr=config.learning_rate, momentum=config.momentum)
        case Optimizer.RMSPROP:
            return torch.optim.RMSprop(
                parameters, lr=config.learning_rate, momentum=config.momentum
            )
    raise ValueError(f"optimizer {config.optimizer!r} is not one of {', '.join(Optimizer)}")


def stop_check(should_stop: Callable[[], bool] | None) -> Callable[[], None] | None:
    """`should_stop` as a check that raises StopTraining; None costs nothing per call."""
    if should_stop is None:
        return None

    def check() -> None:
        if should_stop():
            raise StopTraining

    return check


@dataclass(frozen=True)
class Split:
    """The points on the device: training inputs and labels, and the held-out ones."""

    x: Tensor
    y: Tensor
    x_val: Tensor
    y_val: Tensor


def split_indices(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """A seeded hold-out: (training indices, validation indices)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held_out = round(n * fraction) if fraction > 0 else 0
    if fraction > 0:
        held_out = min(max(held_out, 1), n - 1)
    return order[held_out:].sort().values, order[:held_out].sort().values


def split_points(data: Tensor, config: TrainConfig, device: torch.device) -> Split:
    train, val = split_indices(len(data), config.validation_split, config.seed)
    # Contiguous copies, as the products of the fast step need them.
    return Split(
        data[train, :2].to(device),
        data[train, 2:].to(device),
        data[val, :2].to(device),
        data[val, 2:].to(device),
    )


def train_epoch(
    step: Step, split: Split, losses: PendingLosses, batch_size: int | None, shuffle: Any
) -> None:
    """One pass over the training points: one update on them all (the tutorial), or one per
    shuffled mini-batch. The epoch's loss goes to `losses` only once the pass is complete."""
    if batch_size is None:
        step(split.x, split.y, out=losses.next_row())
        losses.commit()
        return
    n = len(split.x)
    total = torch.zeros((), device=split.x.device)
    order = torch.randperm(n, generator=shuffle).to(split.x.device)
    for begin in range(0, n, batch_size):
        batch = order[begin : begin + batch_size]
        x, y = split.x[batch], split.y[batch]
        total += mean_loss(step(x, y), y, losses.loss) * len(batch)
    losses.add_loss(total / n)


def first_non_finite(values: list[float]) -> int | None:
    for index, value in enumerate(values):
        if not math.isfinite(value):
            return index
    return None


def divergence(values: list[float], val_values: list[float] | None) -> int | None:
    """Where the losses, or failing that the validation losses, stop being finite."""
    bad = first_non_finite(values)
    if bad is None and val_values is not None:
        bad = first_non_finite(val_values)
    return bad


class Reporter:
    """Sends the pending losses to the callbacks, and notes the last ones sent (the final
    losses) and the epoch the loss diverged at, if it did."""

    def __init__(
        self,
        callbacks: Callbacks,
        losses: PendingLosses,
        val_losses: PendingLosses | None,
        interval_s: float,
    ) -> None:
        self.callbacks, self.losses, self.val_losses = callbacks, losses, val_losses
        self.interval_s = interval_s
        self.last_time = time.monotonic()
        self.last_loss: float | None = None
        self.last_val_loss: float | None = None
        self.diverged_at: int | None = None

    def due(self) -> bool:
        return self.losses.full or time.monotonic() - self.last_time >= self.interval_s

    def send(self, epoch_after: int) -> bool:
        """Report every epoch before `epoch_after` not yet reported; False means stop."""
        first = epoch_after - self.losses.count
        values = self.losses.take()
        val_values = None
        if self.val_losses is not None:
            # An epoch stopped half way recorded its validation loss but not its loss.
            self.val_losses.drop_to(len(values))
            val_values = self.val_losses.take()
        self.last_time = time.monotonic()
        bad = divergence(values, val_values)
        if bad is not None:
            self.callbacks.on_progress(
                first, values[:bad], val_values[:bad] if val_values else None
            )
            self.diverged_at = first + bad
            return False
        if values:
            self.last_loss = values[-1]
            self.last_val_loss = val_values[-1] if val_values else None
        return self.callbacks.on_progress(first, values, val_values)


def build(
    config: TrainConfig, device: torch.device, resume: dict[str, Any] | None
) -> tuple[nn.Sequential, torch.optim.Optimizer, torch.Generator, int]:
    """The network, its optimizer and the shuffling generator, seeded, or as the checkpoint
    `resume` left them; and the epoch to start from."""
    torch.manual_seed(config.seed)
    model = build_network(config.network).to(device)
    optimizer = make_optimizer(config, model.parameters())
    shuffle = torch.Generator().manual_seed(config.seed + 1)
    if resume is None:
        return model, optimizer, shuffle, 0
    model.load_state_dict(resume["model"])
    optimizer.load_state_dict(resume["optimizer"])
    shuffle.set_state(resume["rng"]["shuffle"])
    torch.set_rng_state(resume["rng"]["torch"])
    return model, optimizer, shuffle, int(resume["epoch"])


def checkpoint_state(
    config: TrainConfig,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    shuffle: torch.Generator,
) -> dict[str, Any]:
    """What a checkpoint holds, CPU tensors and plain values: enough to rebuild the model from
    the file alone and to resume training where it stopped."""
    return {
        "epoch": epoch,
        "config": config.as_dict(),
        "model": to_cpu(model.state_dict()),
        "optimizer": to_cpu(optimizer.state_dict()),
        "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()},
    }


def train(
    config: TrainConfig,
    points: NDArray[np.float64],
    device: torch.device,
    callbacks: Callbacks,
    *,
    resume: dict[str, Any] | None = None,
    report_interval_s: float = REPORT_INTERVAL_S,
    fast: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train until `config.epochs` epochs are done, a callback says stop, or the loss diverges.

    `should_stop` is asked at each epoch's start and inside it (between layers and before each
    update), so a stop takes effect within about a second however long an epoch takes; an
    epoch stopped half way is not counted.
    """
    model, optimizer, shuffle, start = build(config, device, resume)
    stop = stop_check(should_stop)
    step = make_step(config, model, optimizer, fast=fast, stop=stop)
    data = torch.as_tensor(points, dtype=torch.float32)
    split = split_points(data, config, device)
    batch_size = (
        config.batch_size if config.batch_size and config.batch_size < len(split.x) else None
    )
    capacity = PendingLosses.capacity_for(len(data))
    losses = PendingLosses(split.y, capacity, config.loss)
    val_losses = PendingLosses(split.y_val, capacity, config.loss) if len(split.x_val) else None
    reporter = Reporter(callbacks, losses, val_losses, report_interval_s)

    def checkpoint(epoch: int) -> None:
        step.sync()
        callbacks.on_checkpoint(epoch, checkpoint_state(config, epoch, model, optimizer, shuffle))

    def ended(outcome: TrainOutcome, epochs_done: int) -> TrainResult:
        diverged_at = reporter.diverged_at
        return TrainResult(
            TrainOutcome.DIVERGED if diverged_at is not None else outcome,
            epochs_done if diverged_at is None else diverged_at,
            diverged_at=diverged_at,
            device=str(device),
        )

    model.train()
    if resume is None:
        checkpoint(0)  # the untrained network: pictures and animations start where it started
    for epoch in range(start, config.epochs):
        updates_before = step.updates
        try:
            if stop is not None:
                stop()
            if val_losses is not None:
                val_losses.record(model, split.x_val)  # before the update, as the loss
            train_epoch(step, split, losses, batch_size, shuffle)
        except StopTraining:
            reporter.send(epoch)
            if step.updates == updates_before and reporter.diverged_at is None:
                checkpoint(epoch)  # stopped before it changed anything: the state is epoch's
            return ended(TrainOutcome.STOPPED, epoch)
        done = epoch + 1
        checkpoint_due = done % config.checkpoint_every == 0 or done == config.epochs
        if checkpoint_due or reporter.due():
            go_on = reporter.send(done)
            if reporter.diverged_at is None and (checkpoint_due or not go_on):
                checkpoint(done)
            if not go_on:
                return ended(TrainOutcome.STOPPED, done)

    return TrainResult(
        TrainOutcome.COMPLETED,
        max(config.epochs, start),
        final_loss=reporter.last_loss,
        final_val_loss=reporter.last_val_loss,
        accuracy=evaluate(model, data.to(device), config.loss)[1],
        device=str(device),
    )
