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
from typing import Any, Literal, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional

from app.ml.architectures import BUILT_IN, NetworkSpec, build_network
from app.ml.checkpoints import to_cpu
from app.ml.fast_step import FastStep, FlatOptimizer

OPTIMIZERS = ("adam", "sgd", "rmsprop")
# Most epochs whose losses are held on the device between two reports, and most bytes of logits
# held for them.
LOSS_BUFFER_EPOCHS = 4096
LOSS_BUFFER_BYTES = 16 * 2**20


@dataclass(frozen=True)
class TrainConfig:
    network: NetworkSpec
    epochs: int  # optimizer passes in all; the tutorial's loop is 20001
    learning_rate: float = 0.003  # the tutorial's Adam learning rate
    optimizer: str = "adam"  # adam (default betas, as the tutorial), sgd or rmsprop
    momentum: float = 0.0  # for sgd and rmsprop
    batch_size: int | None = None  # None: full batch, as the tutorial; else shuffled mini-batches
    seed: int = 0  # seeds the weights, the validation split and the shuffling
    validation_split: float = 0.0  # fraction held out; its loss is recorded too
    checkpoint_every: int = 1000  # epochs between checkpoints (also always at 0 and at the end)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["network"] = self.network.as_dict()
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
    outcome: Literal["completed", "stopped", "diverged"]
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

    def __init__(self, targets: torch.Tensor, capacity: int) -> None:
        self.targets = targets
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

    def add_loss(self, loss: torch.Tensor) -> None:
        self._losses.append(loss)
        self.count += 1

    @property
    def full(self) -> bool:
        return self.count == self.capacity

    def take(self) -> list[float]:
        """The pending losses, in epoch order; the buffer is empty afterwards."""
        if self._losses:
            values = torch.stack(self._losses)
        elif self._logits is not None and self.count:
            logits = self._logits[: self.count]
            per_point = functional.binary_cross_entropy_with_logits(
                logits, self.targets.expand_as(logits), reduction="none"
            )
            values = per_point.flatten(1).mean(dim=1)
        else:
            values = torch.empty(0)
        self.count = 0
        self._losses.clear()
        result: list[float] = values.tolist()
        return result


class StopTraining(Exception):
    """Raised by the stop check inside an epoch, before that epoch changed the parameters
    (full batch) or between its mini-batches."""


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
    config = TrainConfig(network=BUILT_IN["complex"], epochs=2, checkpoint_every=1)
    train(config, corners, torch.device("cpu"), _Discard())


def split_indices(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded hold-out: (training indices, validation indices)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    held_out = round(n * fraction) if fraction > 0 else 0
    if fraction > 0:
        held_out = min(max(held_out, 1), n - 1)
    return order[held_out:].sort().values, order[:held_out].sort().values


def make_optimizer(config: TrainConfig, parameters: Any) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # The fused kernel: one pass over the parameters per step instead of eight, on CPU and
        # CUDA; its results differ from the default kernel's by float32 rounding.
        return torch.optim.Adam(parameters, lr=config.learning_rate, fused=True)
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.learning_rate, momentum=config.momentum)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=config.learning_rate, momentum=config.momentum)
    raise ValueError(f"optimizer {config.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")


def first_non_finite(values: list[float]) -> int | None:
    for index, value in enumerate(values):
        if not math.isfinite(value):
            return index
    return None


def train(
    config: TrainConfig,
    points: NDArray[np.float64],
    device: torch.device,
    callbacks: Callbacks,
    *,
    resume: dict[str, Any] | None = None,
    report_interval_s: float = 0.25,
    fast: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train until `config.epochs` epochs are done, a callback says stop, or the loss diverges.

    `fast` takes the hand-written step of `app.ml.fast_step`; without it each step goes through
    autograd and `torch.optim`, the reference the fast step is tested against. `should_stop`
    is asked inside each epoch too (between layers, and between mini-batches), so that a stop
    takes effect within about a second however long an epoch takes; an epoch stopped half way
    is not counted.
    """
    torch.manual_seed(config.seed)
    model = build_network(config.network).to(device)
    optimizer = make_optimizer(config, model.parameters())
    shuffle = torch.Generator().manual_seed(config.seed + 1)
    start = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        shuffle.set_state(resume["rng"]["shuffle"])
        torch.set_rng_state(resume["rng"]["torch"])
        start = int(resume["epoch"])

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise StopTraining

    # The fast path: the optimizer holds the step whose flat buffers it updates.
    flat_optimizer = None
    if fast:
        fast_step = FastStep(model, config.network.activation)
        if should_stop is not None:
            fast_step.interrupt = check_stop
        flat_optimizer = FlatOptimizer(
            config.optimizer, config.learning_rate, config.momentum, fast_step
        )
        flat_optimizer.import_from(optimizer)

    data = torch.as_tensor(points, dtype=torch.float32)
    train_idx, val_idx = split_indices(len(data), config.validation_split, config.seed)
    x_train, y_train = data[train_idx, :2].to(device), data[train_idx, 2:].to(device)
    x_val, y_val = data[val_idx, :2].to(device), data[val_idx, 2:].to(device)
    validating = len(val_idx) > 0
    n_train = len(train_idx)
    batch_size = config.batch_size if config.batch_size and config.batch_size < n_train else None
    loss_fn = nn.BCEWithLogitsLoss()

    capacity = PendingLosses.capacity_for(len(data))
    losses = PendingLosses(y_train, capacity)
    val_losses = PendingLosses(y_val, capacity) if validating else None
    last_report = time.monotonic()
    reported: list[float] = []  # the latest reported losses, for the result

    def state(epoch: int) -> dict[str, Any]:
        if flat_optimizer is not None:
            flat_optimizer.export_to(optimizer)
        return {
            "epoch": epoch,
            "config": config.as_dict(),
            "model": to_cpu(model.state_dict()),
            "optimizer": to_cpu(optimizer.state_dict()),
            "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()},
        }

    def report(epoch_after: int) -> tuple[bool, int | None]:
        """Send pending losses; (go on?, the epoch the loss diverged at, if it did)."""
        nonlocal last_report
        first = epoch_after - losses.count
        values = losses.take()
        val_values = val_losses.take() if val_losses is not None else None
        last_report = time.monotonic()
        bad = first_non_finite(values)
        if bad is None and val_values is not None:
            bad = first_non_finite(val_values)
        if bad is not None:
            callbacks.on_progress(first, values[:bad], val_values[:bad] if val_values else None)
            return False, first + bad
        reported[:] = values[-1:] + (val_values[-1:] if val_values else [])
        return callbacks.on_progress(first, values, val_values), None

    def step(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """One optimizer update on (x, y); the logits before it, written to `out` when given."""
        if flat_optimizer is not None:
            logits = flat_optimizer.fast.forward_backward(x, y, out)
            check_stop()
            flat_optimizer.step()
            return logits
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss_fn(logits, y).backward()
        check_stop()
        optimizer.step()
        return logits.detach() if out is None else out.copy_(logits.detach())

    def stopped_inside(epoch: int, parameters_unchanged: bool) -> TrainResult:
        """The end of a run stopped inside `epoch`: the epochs before it are reported, and
        checkpointed if the stopped epoch left the parameters as they were."""
        # The stopped epoch's training loss was never committed; its validation loss was.
        if val_losses is not None:
            val_losses.drop_to(losses.count)
        _, diverged_at = report(epoch)
        if diverged_at is not None:
            return TrainResult("diverged", diverged_at, diverged_at=diverged_at, device=str(device))
        if parameters_unchanged:
            callbacks.on_checkpoint(epoch, state(epoch))
        return TrainResult("stopped", epoch, device=str(device))

    model.train()
    if resume is None:
        # The untrained network, so a run's pictures and its animation start where it started.
        callbacks.on_checkpoint(0, state(0))
    for epoch in range(start, config.epochs):
        try:
            check_stop()
        except StopTraining:
            return stopped_inside(epoch, parameters_unchanged=True)
        if val_losses is not None:
            with torch.no_grad():
                val_losses.next_row().copy_(model(x_val))
            val_losses.commit()
        try:
            if batch_size is None:
                step(x_train, y_train, out=losses.next_row())
                losses.commit()
            else:
                total = torch.zeros((), device=device)
                order = torch.randperm(n_train, generator=shuffle).to(device)
                for begin in range(0, n_train, batch_size):
                    batch = order[begin : begin + batch_size]
                    x_batch, y_batch = x_train[batch], y_train[batch]
                    total += loss_fn(step(x_batch, y_batch), y_batch) * len(batch)
                losses.add_loss(total / n_train)
        except StopTraining:
            # Full batch: the stop came before the update. Mini-batches: some batches have
            # updated the parameters, so this state is no epoch's and is not checkpointed.
            return stopped_inside(epoch, parameters_unchanged=batch_size is None)
        done = epoch + 1
        checkpoint_due = done % config.checkpoint_every == 0 or done == config.epochs
        if checkpoint_due or losses.full or time.monotonic() - last_report >= report_interval_s:
            go_on, diverged_at = report(done)
            if diverged_at is not None:
                return TrainResult(
                    "diverged", diverged_at, diverged_at=diverged_at, device=str(device)
                )
            if checkpoint_due or not go_on:
                callbacks.on_checkpoint(done, state(done))
            if not go_on:
                return TrainResult("stopped", done, device=str(device))

    # The last epoch always reports and checkpoints inside the loop (checkpoint_due).
    model.eval()
    with torch.inference_mode():
        x_all, y_all = data[:, :2].to(device), data[:, 2:].to(device)
        correct = int(((model(x_all) > 0).float() == y_all).sum().item())
    # A count over n, divided in float64: 0.81, not float32's 0.8100000023841858.
    accuracy = correct / len(data)
    return TrainResult(
        "completed",
        max(config.epochs, start),
        final_loss=reported[0] if reported else None,
        final_val_loss=reported[1] if len(reported) > 1 else None,
        accuracy=accuracy,
        device=str(device),
    )
