"""Runs of one shape trained together: a sweep's group of runs as one stacked model.

Runs that share the points, the network's shape, the batch size, the number of epochs, the
optimizer and the loss differ only in numbers (learning rate, momentum, seed), so R of them
train as one model whose every tensor has a leading run dimension: each layer is one batched
matrix product for all the runs, and one optimizer update moves every run's parameters, each by
its own learning rate. A small network's step is mostly the fixed cost of each kernel call, so
R runs cost little more than one.

Everything else stays each run's own: its seed (the initial weights, validation split and
shuffling it gets when trained alone), its losses, its checkpoints (in `engine.train`'s format,
so resume, pictures, predict and export work as for any run), its stop and its end. A run that
stops, diverges or finishes leaves the stack and the rest go on. The arithmetic is training
alone's up to float32 rounding (a batched product adds in another order than `addmm`):
`tests/ml/test_stacked.py` holds each run's losses to its solo run's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from app.ml.architectures import NetworkSpec
from app.ml.engine import (
    PendingLosses,
    StopTraining,
    TrainConfig,
    TrainResult,
    build,
    checkpoint_state,
    divergence,
    split_points,
)
from app.ml.fast_step import ACTIVATIONS, ALIGNMENT, FlatOptimizer, parameter_views
from app.ml.inference import evaluate, pointwise_loss
from app.vocabulary import REPORT_INTERVAL_S, LossFunction, Optimizer, TrainOutcome

# Elements an elementwise kernel takes at a time on its vectorised path: two AVX-512 vectors
# of float32, a multiple of the AVX2 and NEON blocks.
VECTOR_BLOCK = 32
# On the CPU a wider network's products cost more than the calls stacking saves: the tutorial's
# 128-wide network trains slower stacked than run by run (`python -m bench --only together`).
CPU_STACK_WIDTH = 64
# Most bytes of activations and gradients one group holds: how many runs of a wide network on
# many points may train together.
STACK_BYTES = 256 * 2**20


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
    """One run of a group: its config, and the checkpoint it resumes from, if any."""

    config: TrainConfig
    resume: dict[str, Any] | None = None


@dataclass(frozen=True)
class Report:
    """A member's losses of epochs first_epoch, first_epoch + 1, ..."""

    member: int
    first_epoch: int
    losses: list[float]
    val_losses: list[float] | None


class GroupCallbacks(Protocol):
    def on_progress(self, reports: list[Report]) -> Collection[int]:
        """Each member's losses since the last report; return the members to stop."""
        ...

    def on_checkpoint(self, member: int, epoch: int, state: dict[str, Any]) -> None:
        """A member's checkpoint after `epoch` epochs, as `engine.train` writes one."""
        ...

    def on_end(self, member: int, result: TrainResult) -> None:
        """A member's training ended (the others go on)."""
        ...


def _aligned(size: int) -> int:
    return -(-size // ALIGNMENT) * ALIGNMENT


def runs_tensor(
    runs: int, n: int, width: int, device: torch.device, *, apart: bool = False
) -> Tensor:
    """An (R, n, width) tensor, its runs apart where elementwise kernels need them to be.

    An elementwise kernel vectorises the bulk of what it is given, VECTOR_BLOCK elements at a
    time, and finishes the rest one by one; the two paths round sigmoid, tanh and gelu
    differently. Unless each run's size is a whole number of blocks (then the stack splits
    where the runs do), a gap between runs makes the kernel go run by run, each with its own
    bulk and remainder, as on the run's own tensor. Batched products into a tensor with gaps
    take a slow path, so the gap is left out where it is not needed (or `apart` is False).
    """
    if not apart or (n * width) % VECTOR_BLOCK == 0:
        return torch.empty(runs, n, width, device=device)
    stride = _aligned(n * width) + ALIGNMENT
    return torch.empty(runs, stride, device=device)[:, : n * width].view(runs, n, width)


class _Buffers:
    """Activations and gradients of every run for one batch size, allocated once."""

    def __init__(
        self,
        runs: int,
        n: int,
        shapes: list[tuple[int, int]],
        device: torch.device,
        *,
        saves_input: bool,
    ) -> None:
        widths = [out for _, out in shapes]
        self.outputs = [runs_tensor(runs, n, width, device, apart=True) for width in widths]
        self.activated = (
            [runs_tensor(runs, n, width, device, apart=True) for width in widths]
            if saves_input
            else self.outputs
        )
        # The output layer's gradient is a product's operand, kept whole; it is computed apart.
        self.grads = [runs_tensor(runs, n, width, device, apart=width > 1) for width in widths]
        self.weight_grads = [
            torch.empty(runs, out, fan_in, device=device) for fan_in, out in shapes
        ]
        self.probabilities = runs_tensor(runs, n, 1, device, apart=True)
        self.errors = runs_tensor(runs, n, 1, device, apart=True)
        self.count = torch.tensor(float(n), device=device)


class _RunLayout:
    """One run's row of the stacked buffers, as `fast_step.FlatOptimizer` takes a network."""

    def __init__(
        self, flat: Tensor, flat_grad: Tensor, parameters: list[Tensor], offsets: list[int]
    ) -> None:
        self.flat, self.flat_grad, self.parameters = flat, flat_grad, parameters
        self.offsets = offsets
        self.device = flat.device

    def views(self, buffer: Tensor) -> list[Tensor]:
        return parameter_views(buffer, self.parameters, self.offsets)


class StackedStep:
    """Forward, backward and optimizer update of R networks of one shape at once.

    The runs' parameters and gradients are the rows of two (R, P) buffers, each parameter laid
    out and aligned as `fast_step` lays out a solo run's, and each run's update is a
    `fast_step.FlatOptimizer` of its own. Batched products on the CPU are the solo run's
    products one run after another, so on the CPU each run's numbers are its solo run's bit
    for bit (`tests/ml/test_stacked.py`); the gain is in the calls, one for all the runs.
    """

    def __init__(
        self,
        models: list[nn.Sequential],
        optimizers: list[torch.optim.Optimizer],
        configs: list[TrainConfig],
        device: torch.device,
    ) -> None:
        first = configs[0]
        self.loss = LossFunction(first.loss)
        self.kernels = ACTIVATIONS[first.network.activation]
        linears = [module for module in models[0] if isinstance(module, nn.Linear)]
        self.shapes = [(layer.in_features, layer.out_features) for layer in linears]
        self.widths = [out for _, out in self.shapes]
        self.offsets = []
        size = 0
        for fan_in, out in self.shapes:
            self.offsets += [size, size + _aligned(fan_in * out)]
            size += _aligned(fan_in * out) + _aligned(out)
        self.device = device
        self.params = torch.zeros(len(models), size, device=device)
        self.grads = torch.zeros(len(models), size, device=device)
        self.modules = models
        self.optimizers = []
        for row, (model, optimizer, config) in enumerate(
            zip(models, optimizers, configs, strict=True)
        ):
            layout = self._layout(row, model)
            with torch.no_grad():
                for own, parameter in zip(
                    layout.views(layout.flat), model.parameters(), strict=True
                ):
                    own.copy_(parameter)
            flat = FlatOptimizer(config.optimizer, config.learning_rate, config.momentum, layout)
            flat.import_from(optimizer)
            self.optimizers.append(flat)
        self.interrupt: Callable[[], None] | None = None
        self._views()

    def _layout(self, row: int, model: nn.Module) -> _RunLayout:
        return _RunLayout(self.params[row], self.grads[row], list(model.parameters()), self.offsets)

    def _views(self) -> None:
        """Views made once, after every change of the buffers: a view costs microseconds."""
        runs = self.params.shape[0]
        self.weights: list[Tensor] = []
        self.biases: list[Tensor] = []
        self.weight_grads: list[Tensor] = []
        self.bias_grads: list[Tensor] = []
        for (fan_in, out), (weight_at, bias_at) in zip(
            self.shapes, zip(self.offsets[::2], self.offsets[1::2], strict=True), strict=True
        ):
            for buffer, weights, biases in (
                (self.params, self.weights, self.biases),
                (self.grads, self.weight_grads, self.bias_grads),
            ):
                weights.append(
                    buffer[:, weight_at : weight_at + fan_in * out].view(runs, out, fan_in)
                )
                biases.append(buffer[:, bias_at : bias_at + out].view(runs, 1, out))
        self.weights_t = [weight.transpose(1, 2) for weight in self.weights]
        self._output_rows = [
            (self.biases[-1][row, 0], self.weights_t[-1][row]) for row in range(runs)
        ]
        self._cache: dict[int, _Buffers] = {}

    def keep(self, rows: list[int]) -> None:
        """Keep only these runs (rows), in this order."""
        index = torch.tensor(rows, device=self.device)
        self.params = self.params.index_select(0, index)
        self.grads = self.grads.index_select(0, index)
        self.modules = [self.modules[row] for row in rows]
        self.optimizers = [self.optimizers[row] for row in rows]
        for row, (model, optimizer) in enumerate(zip(self.modules, self.optimizers, strict=True)):
            optimizer.attach(self._layout(row, model))
        self._views()

    def export(self, row: int, optimizer: torch.optim.Optimizer) -> None:
        """Put a run's parameters into its module and its state into `optimizer`, as a solo
        run's would be: a checkpoint then reads them."""
        flat = self.optimizers[row]
        with torch.no_grad():
            for parameter, own in zip(flat.fast.parameters, flat.params, strict=True):
                parameter.copy_(own)
        flat.export_to(optimizer)

    def _buffers_for(self, n: int) -> _Buffers:
        buffers = self._cache.get(n)
        if buffers is None:
            saves_input = self.kernels is not None and self.kernels.saves_input
            buffers = self._cache[n] = _Buffers(
                self.params.shape[0], n, self.shapes, self.device, saves_input=saves_input
            )
        return buffers

    def logits(self, x: Tensor) -> Tensor:
        """Every run's logits on its points x, (R, n, 2) -> (R, n, 1); nothing is kept."""
        last = len(self.weights) - 1
        runs, n = x.shape[0], x.shape[1]
        with torch.no_grad():
            for layer in range(last):
                width = self.widths[layer]
                pre = runs_tensor(runs, n, width, self.device, apart=True)
                x = torch.baddbmm(self.biases[layer], x, self.weights_t[layer], out=pre)
                if self.kernels is not None:
                    spare = runs_tensor(runs, n, width, self.device, apart=True)
                    x = self.kernels.forward(x, spare)
            return self._output_layer(x, torch.empty(runs, n, 1, device=self.device))

    def _output_layer(self, x: Tensor, out: Tensor) -> Tensor:
        """The last layer, one logit a point. A batched product gives a one-column result
        other bits than `addmm`, which takes a matrix-vector path then: one call a run."""
        for row, (bias, weight_t) in enumerate(self._output_rows):
            torch.addmm(bias, x[row], weight_t, out=out[row])
        return out

    def __call__(self, x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
        """One update of every run on its batch (x, y), (R, n, 2) and (R, n, 1); returns the
        logits before it, written to `out` if given."""
        logits = self._forward_backward(x, y, out)
        if self.interrupt is not None:
            self.interrupt()
        self._update()
        return logits

    def _forward_backward(self, x: Tensor, y: Tensor, out: Tensor | None) -> Tensor:
        buffers = self._buffers_for(x.shape[1])
        last = len(self.weights) - 1
        inputs = [x]
        saved = []
        interrupt, kernels = self.interrupt, self.kernels
        for layer, bias in enumerate(self.biases):
            if interrupt is not None:
                interrupt()
            if layer == last:
                result = self._output_layer(
                    inputs[-1], buffers.outputs[layer] if out is None else out
                )
            else:
                result = torch.baddbmm(
                    bias, inputs[-1], self.weights_t[layer], out=buffers.outputs[layer]
                )
            if layer < last and kernels is not None:
                activated = kernels.forward(result, buffers.activated[layer])
                saved.append(result if kernels.saves_input else activated)
                result = activated
            inputs.append(result)
        logits = inputs.pop()
        grad = self._loss_gradient(logits, y, buffers, buffers.grads[last])
        for layer in range(last, -1, -1):
            if interrupt is not None:
                interrupt()
            # Into a whole tensor, then copied: a batched product into strided rows is slower.
            torch.bmm(grad.transpose(1, 2), inputs[layer], out=buffers.weight_grads[layer])
            self.weight_grads[layer].copy_(buffers.weight_grads[layer])
            torch.sum(grad, 1, keepdim=True, out=self.bias_grads[layer])
            if layer > 0:
                grad = torch.bmm(grad, self.weights[layer], out=buffers.grads[layer - 1])
                if kernels is not None:
                    grad = kernels.backward(grad, saved[layer - 1])
        return logits

    def _loss_gradient(self, logits: Tensor, y: Tensor, buffers: _Buffers, out: Tensor) -> Tensor:
        """The gradient of each run's mean loss over its points, as autograd computes it."""
        probabilities = torch.sigmoid(logits, out=buffers.probabilities)
        if self.loss == LossFunction.BCE:
            return out.copy_(probabilities.sub_(y).div_(buffers.count))
        # Squared error of the probability: 2 (p - y) / n, through the sigmoid's derivative.
        error = torch.sub(probabilities, y, out=buffers.errors).mul_(2).div_(buffers.count)
        return out.copy_(torch.ops.aten.sigmoid_backward(error, probabilities))

    def _update(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()


@dataclass
class _Run:
    """A member still training: its own module, optimizer and shuffling, and where it is."""

    member: int
    config: TrainConfig
    model: nn.Sequential
    optimizer: torch.optim.Optimizer
    shuffle: torch.Generator
    epoch: int
    last_loss: float | None = None
    last_val_loss: float | None = None
    checkpointed_at: int | None = None


class _Group:
    """`engine.train`'s loop over a stack of runs, each with its own epoch count: runs resumed
    from different checkpoints train together too."""

    def __init__(
        self,
        members: list[Member],
        points: NDArray[np.float64],
        device: torch.device,
        callbacks: GroupCallbacks,
        report_interval_s: float,
        stop_requests: Callable[[], Collection[int]] | None,
    ) -> None:
        self.callbacks, self.device = callbacks, device
        self.report_interval_s = report_interval_s
        self.stop_requests = stop_requests
        self.data = torch.as_tensor(points, dtype=torch.float32)
        self.runs: list[_Run] = []
        for index, member in enumerate(members):
            model, optimizer, shuffle, start = build(member.config, device, member.resume)
            model.train()
            self.runs.append(_Run(index, member.config, model, optimizer, shuffle, start))
        self.step = StackedStep(
            [run.model for run in self.runs],
            [run.optimizer for run in self.runs],
            [run.config for run in self.runs],
            device,
        )
        splits = [split_points(self.data, run.config, device) for run in self.runs]
        self.x = torch.stack([split.x for split in splits])
        self.y = torch.stack([split.y for split in splits])
        self.x_val = torch.stack([split.x_val for split in splits])
        self.y_val = torch.stack([split.y_val for split in splits])
        config = members[0].config
        self.loss = LossFunction(config.loss)
        n = self.x.shape[1]
        self.batch_size = config.batch_size if config.batch_size and config.batch_size < n else None
        if self.batch_size is None:
            # A full-batch epoch is stopped before its update; a mini-batch one between batches
            # (`_stop_within_epoch`).
            self.step.interrupt = self._interrupt
        self._pending()
        self.last_report = time.monotonic()

    def _pending(self) -> None:
        capacity = PendingLosses.capacity_for(len(self.data) * len(self.runs))
        self.losses = PendingLosses(self.y, capacity, self.loss)
        self.val_losses = (
            PendingLosses(self.y_val, capacity, self.loss) if self.y_val.shape[1] else None
        )

    def _asked(self) -> list[_Run]:
        asked = self.stop_requests() if self.stop_requests is not None else ()
        return [run for run in self.runs if run.member in asked] if asked else []

    def _interrupt(self) -> None:
        if self._asked():
            raise StopTraining

    def train(self) -> None:
        for run in self.runs:
            if run.epoch == 0:
                self._checkpoint(run)  # the untrained network, as a solo run's
        self._leave(self._ended([run for run in self.runs if run.epoch >= run.config.epochs]))
        while self.runs:
            asked = self._asked()
            if asked:
                diverged, also_asked = self._report()
                stopping = [run for run in self.runs if run in asked or run in also_asked]
                self._leave(diverged + self._stop([r for r in stopping if r not in diverged]))
                continue
            try:
                if self.val_losses is not None:  # before the update, as the loss
                    self.val_losses.next_row().copy_(self.step.logits(self.x_val))
                    self.val_losses.commit()
                self._epoch()
            except StopTraining:  # before any update: the loop's top stops who asked
                if self.val_losses is not None:
                    self.val_losses.drop_to(self.losses.count)
                continue
            if not self.runs:  # every run was stopped inside the epoch
                return
            for run in self.runs:
                run.epoch += 1
            due = [
                run
                for run in self.runs
                if run.epoch % run.config.checkpoint_every == 0 or run.epoch == run.config.epochs
            ]
            waited = time.monotonic() - self.last_report
            if not due and not self.losses.full and waited < self.report_interval_s:
                continue
            diverged, asked = self._report()
            for run in due:
                if run not in diverged:
                    self._checkpoint(run)
            ended = diverged + self._stop([run for run in asked if run not in diverged])
            ended += self._ended(
                [run for run in self.runs if run not in ended and run.epoch >= run.config.epochs]
            )
            self._leave(ended)

    def _epoch(self) -> None:
        if self.batch_size is None:
            self.step(self.x, self.y, out=self.losses.next_row())
            self.losses.commit()
            return
        runs, n = self.x.shape[0], self.x.shape[1]
        orders = torch.stack([torch.randperm(n, generator=run.shuffle) for run in self.runs])
        orders = orders.to(self.device)
        rows = torch.arange(runs, device=self.device)[:, None]
        total = torch.zeros(runs, device=self.device)
        for begin in range(0, n, self.batch_size):
            if asked := self._asked():
                kept = self._stop_within_epoch(asked)
                if not kept:
                    return
                orders, total = orders[kept], total[kept]
                rows = torch.arange(len(kept), device=self.device)[:, None]
            batch = orders[:, begin : begin + self.batch_size]
            x, y = self.x[rows, batch], self.y[rows, batch]
            per_point = pointwise_loss(self.step(x, y), y, self.loss)
            total += per_point.mean(dim=(1, 2)) * batch.shape[1]
        self.losses.add_loss(total / n)

    def _stop_within_epoch(self, asked: list[_Run]) -> list[int]:
        """Stop the asked runs between two mini-batches, as a run alone stops: the half-done
        epoch is not counted and not checkpointed (the run resumes from its last checkpoint).
        The others go on with the epoch. Returns the rows of the runs that go on."""
        current_val = self.val_losses.pop_row() if self.val_losses is not None else None
        diverged, also_asked = self._report()  # the epochs done so far, of every run
        stopping = [
            run for run in self.runs if (run in asked or run in also_asked) and run not in diverged
        ]
        for run in stopping:
            self._end(run, TrainResult(TrainOutcome.STOPPED, run.epoch))
        ended = diverged + stopping
        kept = [row for row, run in enumerate(self.runs) if run not in ended]
        self._leave(ended)
        if current_val is not None and self.val_losses is not None and kept:
            self.val_losses.next_row().copy_(current_val[kept])  # the epoch's, before it began
            self.val_losses.commit()
        return kept

    def _report(self) -> tuple[list[_Run], list[_Run]]:
        """Send every run's pending losses. Returns the runs that diverged (ended here) and
        those the callbacks asked to stop (for the caller to stop)."""
        self.last_report = time.monotonic()
        values = self.losses.take_per_run(len(self.runs))
        val_values = None
        if self.val_losses is not None:
            self.val_losses.drop_to(len(values[0]))
            val_values = self.val_losses.take_per_run(len(self.runs))
        reports, diverged = [], []
        for row, run in enumerate(self.runs):
            losses, val = values[row], val_values[row] if val_values is not None else None
            first = run.epoch - len(losses)
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
            result = TrainResult(TrainOutcome.DIVERGED, epoch, diverged_at=epoch)
            self._end(run, result)
        gone = [run for run, _ in diverged]
        return gone, [run for run in self.runs if run.member in asked and run not in gone]

    def _stop(self, runs: list[_Run]) -> list[_Run]:
        for run in runs:
            if run.checkpointed_at != run.epoch:
                self._checkpoint(run)
            self._end(run, TrainResult(TrainOutcome.STOPPED, run.epoch))
        return runs

    def _ended(self, runs: list[_Run]) -> list[_Run]:
        for run in runs:
            self.step.export(self.runs.index(run), run.optimizer)
            _, accuracy = evaluate(run.model, self.data.to(self.device), self.loss)
            result = TrainResult(
                TrainOutcome.COMPLETED,
                max(run.config.epochs, run.epoch),
                final_loss=run.last_loss,
                final_val_loss=run.last_val_loss,
                accuracy=accuracy,
            )
            self._end(run, result)
        return runs

    def _end(self, run: _Run, result: TrainResult) -> None:
        result.device = str(self.device)
        self.callbacks.on_end(run.member, result)

    def _checkpoint(self, run: _Run) -> None:
        self.step.export(self.runs.index(run), run.optimizer)
        state = checkpoint_state(run.config, run.epoch, run.model, run.optimizer, run.shuffle)
        self.callbacks.on_checkpoint(run.member, run.epoch, state)
        run.checkpointed_at = run.epoch

    def _leave(self, ended: list[_Run]) -> None:
        """Take the ended runs out of the stack; their pending losses were reported."""
        if not ended:
            return
        rows = [row for row, run in enumerate(self.runs) if run not in ended]
        self.runs = [self.runs[row] for row in rows]
        if not rows:
            return
        self.step.keep(rows)
        index = torch.tensor(rows, device=self.device)
        self.x, self.y = self.x.index_select(0, index), self.y.index_select(0, index)
        self.x_val = self.x_val.index_select(0, index)
        self.y_val = self.y_val.index_select(0, index)
        self._pending()


def train_group(
    members: list[Member],
    points: NDArray[np.float64],
    device: torch.device,
    callbacks: GroupCallbacks,
    *,
    report_interval_s: float = REPORT_INTERVAL_S,
    stop_requests: Callable[[], Collection[int]] | None = None,
) -> None:
    """Train the members together until each has done its epochs, diverged or been stopped;
    `callbacks.on_end` tells each one's end as it comes.

    `stop_requests()` names the members to stop; it is asked at each epoch's start, between
    layers in full-batch training (the others' epoch is then done again from where it was,
    since no update was made) and between mini-batches (the others' epoch goes on), so a stop
    takes effect within about a second however long an epoch takes.
    """
    if len({group_key(member.config) for member in members}) != 1:
        raise ValueError(
            "a group's members must share the network, epochs, optimizer, batch size, "
            "validation split and loss"
        )
    _Group(members, points, device, callbacks, report_interval_s, stop_requests).train()
