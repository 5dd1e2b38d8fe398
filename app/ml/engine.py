"""The training loop: the tutorial's loop, made resumable, observable and stoppable, for one
run or for a sweep's runs trained together as one stack.

It knows nothing of HTTP or databases. It takes the runs' configs, the points and a device, and
reports through callbacks: per-epoch losses in batches (one host sync per report, not per
step), checkpoint states, and each run's end. The loss of epoch `e` is the full-data loss
computed before that epoch's update, exactly what the tutorial prints as `Epoch e, Loss: ...`.

A run trained alone is the one-member case. Runs that share the points, the network's shape,
the batch size, the number of epochs, the optimizer and the loss (`group_key`) differ only in
numbers (learning rate, momentum, seed), so R of them train as one stacked step (`app.ml.step`)
while everything else stays each run's own: its seed (the initial weights, validation split and
shuffling it gets when trained alone), its losses, its checkpoints, its stop and its end. A run
that stops, diverges or finishes leaves the stack and the rest go on; on the CPU each run's
numbers are its solo run's, bit for bit (`tests/ml/test_stacked.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from app.ml.architectures import COMPLEX, NetworkSpec, build_network
from app.ml.checkpoints import to_cpu
from app.ml.inference import evaluate, pointwise_loss
from app.ml.step import Step, make_step, runs_tensor
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
# On the CPU a wider network's products cost more than the calls stacking saves: the tutorial's
# 128-wide network trains slower stacked than run by run (`python -m bench --only together`).
CPU_STACK_WIDTH = 64
# Most bytes of activations and gradients one group holds: how many runs of a wide network on
# many points may train together.
STACK_BYTES = 256 * 2**20


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


def group_key(config: TrainConfig) -> tuple[object, ...]:
    """What runs on the same points must share to train together; they may differ in learning
    rate, momentum, seed and checkpoint interval."""
    return (
        config.network,
        config.epochs,
        Optimizer(config.optimizer),
        config.batch_size,
        config.validation_split,
        LossFunction(config.loss),
    )


def most_runs_stacked(network: NetworkSpec, n_points: int, *, on_cpu: bool) -> int:
    """How many runs of this network on n points train together: as many as fit in
    STACK_BYTES, and on the CPU only networks no wider than CPU_STACK_WIDTH."""
    if on_cpu and max(network.hidden_layers, default=0) > CPU_STACK_WIDTH:
        return 1
    floats_per_point = 4 * (sum(network.hidden_layers) + 1)  # outputs, activated, gradients
    return max(1, STACK_BYTES // (4 * floats_per_point * max(n_points, 1)))


@dataclass(frozen=True)
class Member:
    """One run to train: its config, and the checkpoint it resumes from, if any."""

    config: TrainConfig
    resume: dict[str, Any] | None = None


@dataclass(frozen=True)
class Report:
    """A member's losses of epochs first_epoch, first_epoch + 1, ..."""

    member: int
    first_epoch: int
    losses: list[float]
    val_losses: list[float] | None


@dataclass
class TrainResult:
    outcome: TrainOutcome
    epochs_done: int
    final_loss: float | None = None
    final_val_loss: float | None = None
    accuracy: float | None = None
    diverged_at: int | None = None
    device: str = "cpu"


class Callbacks(Protocol):
    def on_progress(self, reports: list[Report]) -> Collection[int]:
        """Each member's losses since the last report; return the members to stop."""
        ...

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        """A member's checkpoint after `epoch` epochs; CPU tensors and plain values."""
        ...

    def on_end(self, member: int, result: TrainResult) -> None:
        """A member's training ended (the others go on)."""
        ...


class PendingLosses:
    """Epoch losses not yet reported, kept on the device, so a report costs one host sync.

    In full-batch training an epoch's loss is that of its logits: the logits are kept, and the
    losses of all pending epochs come from one call at the report, not one call per epoch. With
    mini-batches the epoch's loss is the batches' weighted mean, kept as a tensor.
    """

    def __init__(self, targets: Tensor, capacity: int, loss: LossFunction) -> None:
        self.targets = targets  # (n, 1) for one run, (R, n, 1) for a stack
        self.loss = loss
        self.capacity = capacity
        self.count = 0
        self._logits: Tensor | None = None
        self._losses: list[Tensor] = []

    @staticmethod
    def capacity_for(n_points: int) -> int:
        return max(16, min(LOSS_BUFFER_EPOCHS, LOSS_BUFFER_BYTES // (4 * max(n_points, 1))))

    def next_row(self) -> Tensor:
        """Where the next epoch's logits go; `commit()` once they are written."""
        if self._logits is None:
            # Each epoch's and run's logits apart, as a stack's activations are: the losses'
            # elementwise kernels then go through each on its own, the same way for a run
            # alone as in any stack, and round alike.
            *runs, n, _ = self.targets.shape
            rows = self.capacity * math.prod(runs)
            apart = runs_tensor(rows, n, 1, self.targets.device, apart=True)
            self._logits = apart.view(self.capacity, *self.targets.shape)
        # A view made when needed: unbind() would make them all at once, at 10 us each.
        return self._logits[self.count]

    def commit(self) -> None:
        self.count += 1

    def record(self, logits: Tensor) -> None:
        self.next_row().copy_(logits)
        self.count += 1

    def add_loss(self, loss: Tensor) -> None:
        self._losses.append(loss)
        self.count += 1

    def drop_to(self, count: int) -> None:
        """Forget the pending epochs past `count`: an epoch stopped half way has no loss."""
        del self._losses[count:]
        self.count = min(self.count, count)

    def pop_row(self) -> Tensor:
        """The last epoch's logits, taken back: a copy, for an epoch that goes on after the
        epochs before it are reported."""
        assert self._logits is not None
        assert self.count
        assert not self._losses
        self.count -= 1
        return self._logits[self.count].clone()

    @property
    def full(self) -> bool:
        return self.count == self.capacity

    def take(self, runs: int) -> list[list[float]]:
        """Each run's pending losses, in epoch order; the buffer is empty afterwards."""
        if self._losses:
            values = torch.stack(self._losses)
        elif self._logits is not None and self.count:
            logits = self._logits[: self.count]
            per_point = pointwise_loss(logits, self.targets.expand_as(logits), self.loss)
            values = per_point.mean(dim=(-2, -1))  # over each run's points
        else:
            values = torch.empty(0, runs)
        self.count = 0
        self._losses.clear()
        result: list[list[float]] = values.reshape(-1, runs).t().tolist()
        return result


class StopTraining(Exception):
    """Raised by the stop check inside an epoch, before the parameters change."""


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


class Split(NamedTuple):
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
    # Contiguous copies, as the fast step's products need them.
    return Split(
        data[train, :2].to(device),
        data[train, 2:].to(device),
        data[val, :2].to(device),
        data[val, 2:].to(device),
    )


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


def divergence(values: list[float], val_values: list[float] | None) -> int | None:
    """Where the losses, or failing that the validation losses, stop being finite."""
    for series in (values, val_values or []):
        for index, value in enumerate(series):
            if not math.isfinite(value):
                return index
    return None


@dataclass
class _Run:
    """A member still training: its own module, optimizer and shuffling."""

    member: int
    config: TrainConfig
    model: nn.Sequential
    optimizer: torch.optim.Optimizer
    shuffle: torch.Generator
    start: int  # its epoch when the loop began
    last_loss: float | None = None
    last_val_loss: float | None = None
    checkpointed_at: int | None = None


class _Loop:
    """The loop over the members' epochs; each member has its own epoch count (runs resumed
    from different checkpoints train together too): its start plus the epochs done here."""

    def __init__(
        self,
        members: list[Member],
        points: NDArray[np.float64],
        device: torch.device,
        callbacks: Callbacks,
        *,
        report_interval_s: float,
        stop_requests: Callable[[], Collection[int]] | None,
        fast: bool,
    ) -> None:
        self.callbacks, self.device = callbacks, device
        self.report_interval_s = report_interval_s
        self.stop_requests = stop_requests
        self.data = torch.as_tensor(points, dtype=torch.float32)
        self.runs = []
        for index, member in enumerate(members):
            model, optimizer, shuffle, start = build(member.config, device, member.resume)
            model.train()
            run = _Run(index, member.config, model, optimizer, shuffle, start)
            run.checkpointed_at = start if member.resume is not None else None
            self.runs.append(run)
        config = members[0].config
        self.loss = LossFunction(config.loss)
        kinds = [
            (run.config.optimizer, run.config.learning_rate, run.config.momentum)
            for run in self.runs
        ]
        models = [run.model for run in self.runs]
        optimizers = [run.optimizer for run in self.runs]
        self.step: Step = make_step(
            models, optimizers, kinds, config.network.activation, self.loss, fast=fast
        )
        # Each run's points, split by its own seed; a stack's stacked.
        splits = [split_points(self.data, run.config, device) for run in self.runs]
        self.x = self._stacked([split.x for split in splits])
        self.y = self._stacked([split.y for split in splits])
        self.x_val = self._stacked([split.x_val for split in splits])
        self.y_val = self._stacked([split.y_val for split in splits])
        n = self.x.shape[-2]
        self.batch_size = config.batch_size if config.batch_size and config.batch_size < n else None
        if self.batch_size is None and stop_requests is not None:
            # A full-batch epoch is stopped before its update; a mini-batch one between batches.
            self.step.interrupt = self._interrupt
        self.results: list[TrainResult | None] = [None] * len(members)
        self.done = 0  # epochs done here
        self.last_report = time.monotonic()
        self._pending()
        self._schedule()

    def epoch(self, run: _Run) -> int:
        return run.start + self.done

    def _pending(self) -> None:
        """The loss buffers for the runs in the stack."""
        capacity = PendingLosses.capacity_for(len(self.data) * len(self.runs))
        self.losses = PendingLosses(self.y, capacity, self.loss)
        self.val_losses = (
            PendingLosses(self.y_val, capacity, self.loss) if self.y_val.shape[-2] else None
        )

    def _schedule(self) -> None:
        """The next epoch (counted here) a report is due at: a run's checkpoint or end."""

        def next_due(run: _Run) -> int:
            epoch, every = self.epoch(run), run.config.checkpoint_every
            next_checkpoint = epoch - epoch % every + every
            return min(next_checkpoint, max(run.config.epochs, epoch + 1)) - run.start

        self.next_due = min((next_due(run) for run in self.runs), default=0)

    def _asked(self) -> list[_Run]:
        if self.stop_requests is None:
            return []
        asked = self.stop_requests()
        return [run for run in self.runs if run.member in asked] if asked else []

    def _interrupt(self) -> None:
        if self._asked():
            raise StopTraining

    def train(self) -> list[TrainResult]:
        for run in self.runs:
            if run.checkpointed_at is None:
                self._checkpoint(run)  # the untrained network: pictures start where it started
        self._complete([run for run in self.runs if run.start >= run.config.epochs])
        self._leave()
        while self.runs:
            if self.stop_requests is not None and (asked := self._asked()):
                self._stop(asked + self._report())
                self._leave()
                continue
            try:
                if self.val_losses is not None:  # before the update, as the loss
                    self.val_losses.record(self.step.logits(self.x_val))
                self._epoch()
            except StopTraining:  # before any update: the loop's top stops who asked
                if self.val_losses is not None:
                    self.val_losses.drop_to(self.losses.count)
                continue
            if not self.runs:  # every run was stopped inside the epoch
                break
            self.done += 1
            if (
                self.done >= self.next_due
                or self.losses.full
                or time.monotonic() - self.last_report >= self.report_interval_s
            ):
                self._report_and_checkpoint()
        return [result for result in self.results if result is not None]

    def _epoch(self) -> None:
        """One pass over each run's training points: one update on them all (the tutorial),
        or one per shuffled mini-batch. The epoch's loss is pending once the pass is done."""
        if self.batch_size is None:
            self.step(self.x, self.y, out=self.losses.next_row())
            self.losses.commit()
            return
        n = self.x.shape[-2]
        orders = [torch.randperm(n, generator=run.shuffle) for run in self.runs]
        order = self._stacked(orders).to(self.device)
        total = torch.zeros(order.shape[:-1], device=self.device)
        rows = torch.arange(len(self.runs), device=self.device)[:, None]
        for begin in range(0, n, self.batch_size):
            if begin and (asked := self._asked()):  # the loop's top asked before the first
                kept = self._stop_within_epoch(asked)
                if not kept:
                    return
                order, total = self._select_runs(order, kept), self._select_runs(total, kept)
                rows = torch.arange(len(self.runs), device=self.device)[:, None]
            batch = order[..., begin : begin + self.batch_size]
            if self.step.stacked:
                x, y = self.x[rows, batch], self.y[rows, batch]
            else:
                x, y = self.x[batch], self.y[batch]
            per_point = pointwise_loss(self.step(x, y), y, self.loss)
            total += per_point.mean(dim=(-2, -1)) * batch.shape[-1]
        self.losses.add_loss(total / n)

    def _stacked(self, tensors: list[Tensor]) -> Tensor:
        return torch.stack(tensors) if self.step.stacked else tensors[0]

    def _select_runs(self, tensor: Tensor, rows: list[int]) -> Tensor:
        """These runs' rows of a tensor shaped for the stack before it lost some runs, shaped
        for the stack as it is now (one run has no run dimension)."""
        if self.step.stacked:
            return tensor.index_select(0, torch.tensor(rows, device=tensor.device))
        return tensor[rows[0]]

    def _stop_within_epoch(self, asked: list[_Run]) -> list[int]:
        """Stop the asked runs between two mini-batches: the half-done epoch is not counted
        and not checkpointed (the run resumes from its last checkpoint). The others go on with
        the epoch. Returns the rows of the runs that go on."""
        current_val = self.val_losses.pop_row() if self.val_losses is not None else None
        stopping = asked + self._report()  # the epochs done so far, of every run
        for run in self._going():
            if run in stopping:
                self._end(run, TrainResult(TrainOutcome.STOPPED, self.epoch(run)))
        kept = self._leave()
        if current_val is not None and self.val_losses is not None and kept:
            self.val_losses.record(self._select_runs(current_val, kept))  # the epoch's, from before
        return kept

    def _report_and_checkpoint(self) -> None:
        asked = self._report()
        going = self._going()
        for run in going:
            epoch = self.epoch(run)
            if epoch % run.config.checkpoint_every == 0 or epoch == run.config.epochs:
                self._checkpoint(run)
        self._stop(asked)
        self._complete([run for run in self._going() if self.epoch(run) >= run.config.epochs])
        self._leave()
        self._schedule()

    def _going(self) -> list[_Run]:
        """The runs in the stack that have not ended."""
        return [run for run in self.runs if self.results[run.member] is None]

    def _report(self) -> list[_Run]:
        """Send every run's pending losses; end the runs that diverged. Returns the others the
        callbacks asked to stop."""
        self.last_report = time.monotonic()
        values = self.losses.take(len(self.runs))
        val_values = None
        if self.val_losses is not None:
            # An epoch stopped half way recorded its validation loss but not its loss.
            self.val_losses.drop_to(len(values[0]))
            val_values = self.val_losses.take(len(self.runs))
        reports, diverged = [], []
        for row, run in enumerate(self.runs):
            losses, val = values[row], val_values[row] if val_values is not None else None
            first = self.epoch(run) - len(losses)
            bad = divergence(losses, val)
            if bad is not None:
                losses, val = losses[:bad], val[:bad] if val is not None else None
                diverged.append((run, first + bad))
            elif losses:
                run.last_loss = losses[-1]
                run.last_val_loss = val[-1] if val else None
            reports.append(Report(run.member, first, losses, val))
        asked = self.callbacks.on_progress(reports)
        for run, epoch in diverged:
            self._end(run, TrainResult(TrainOutcome.DIVERGED, epoch, diverged_at=epoch))
        return [run for run in self._going() if run.member in asked]

    def _stop(self, runs: list[_Run]) -> None:
        """Stop these runs where they are, checkpointed there."""
        for run in self._going():
            if run in runs:
                if run.checkpointed_at != self.epoch(run):
                    self._checkpoint(run)
                self._end(run, TrainResult(TrainOutcome.STOPPED, self.epoch(run)))

    def _complete(self, runs: list[_Run]) -> None:
        for run in runs:
            _, accuracy = evaluate(run.model, self.data.to(self.device), self.loss)
            result = TrainResult(
                TrainOutcome.COMPLETED,
                max(run.config.epochs, self.epoch(run)),
                final_loss=run.last_loss,
                final_val_loss=run.last_val_loss,
                accuracy=accuracy,
            )
            self._end(run, result)

    def _end(self, run: _Run, result: TrainResult) -> None:
        result.device = str(self.device)
        self.results[run.member] = result
        self.callbacks.on_end(run.member, result)

    def _checkpoint(self, run: _Run) -> None:
        self.step.export(self.runs.index(run), run.optimizer)
        state = checkpoint_state(run.config, self.epoch(run), run.model, run.optimizer, run.shuffle)
        self.callbacks.on_checkpoint(run.member, self.epoch(run), state)
        run.checkpointed_at = self.epoch(run)

    def _leave(self) -> list[int]:
        """Take the runs that ended out of the stack; their pending losses were reported.
        Returns the rows of the runs that stay."""
        rows = [row for row, run in enumerate(self.runs) if self.results[run.member] is None]
        if len(rows) == len(self.runs):
            return rows
        self.runs = [self.runs[row] for row in rows]
        if rows:
            self.step.keep(rows)
            self.x, self.y = self._select_runs(self.x, rows), self._select_runs(self.y, rows)
            self.x_val, self.y_val = (
                self._select_runs(self.x_val, rows),
                self._select_runs(self.y_val, rows),
            )
            self._pending()
            self._schedule()
        return rows


def train_group(
    members: list[Member],
    points: NDArray[np.float64],
    device: torch.device,
    callbacks: Callbacks,
    *,
    report_interval_s: float = REPORT_INTERVAL_S,
    stop_requests: Callable[[], Collection[int]] | None = None,
    fast: bool = True,
) -> list[TrainResult]:
    """Train the members together until each has done its epochs, diverged or been stopped;
    `callbacks.on_end` tells each one's end as it comes, and the results come back in the
    members' order.

    `stop_requests()` names the members to stop; it is asked at each epoch's start, between
    layers in full-batch training (the others' epoch is then done again from where it was,
    since no update was made) and between mini-batches (the others' epoch goes on), so a stop
    takes effect within about a second however long an epoch takes; an epoch stopped half way
    is not counted. `fast=False` trains through autograd, the reference.
    """
    if not members:
        raise ValueError("a group needs at least one member")
    if len({group_key(member.config) for member in members}) != 1:
        raise ValueError(
            "a group's members must share the network, epochs, optimizer, batch size, "
            "validation split and loss"
        )
    loop = _Loop(
        members,
        points,
        device,
        callbacks,
        report_interval_s=report_interval_s,
        stop_requests=stop_requests,
        fast=fast,
    )
    return loop.train()


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
    """Train one run (member 0 to the callbacks): `train_group`'s one-member case."""

    def stop_requests() -> tuple[int, ...]:
        return (0,) if should_stop is not None and should_stop() else ()

    (result,) = train_group(
        [Member(config, resume)],
        points,
        device,
        callbacks,
        report_interval_s=report_interval_s,
        stop_requests=stop_requests if should_stop is not None else None,
        fast=fast,
    )
    return result


class _Discard:
    def on_progress(self, reports: list[Report]) -> Collection[int]:
        return ()

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        pass

    def on_end(self, member: int, result: TrainResult) -> None:
        pass


def warm_up() -> None:
    """Pay torch's one-time costs before a process's first run instead of during it.

    The first optimizer built imports torch._dynamo (about 2 s on a 2-core machine), and the
    first products, checkpoint states and losses load their kernels.
    """
    corners = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    config = TrainConfig(network=COMPLEX, epochs=2, checkpoint_every=1)
    train(config, corners, torch.device("cpu"), _Discard())
