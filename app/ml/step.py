"""One optimizer update of one network, or of R networks of one shape at once.

Two kinds of step do the same arithmetic. `AutogradStep` goes through autograd and
`torch.optim`: the reference. `FastStep` is hand-written for the service's small networks (the
tutorial's has 17,025 parameters and sees 200 points), where a step through autograd spends most
of its time in Python and the dispatcher, not in arithmetic:

- the parameters, their gradients and the optimizer's moments live in flat buffers, one row per
  run, and the optimizer updates every layer in one call (Adam) or a few (SGD, RMSprop);
- the activations and gradients live in buffers allocated once per batch size;
- the backward pass calls the kernels autograd calls, in the same order (addmm's derivatives,
  each activation's own backward function, each loss's gradient as autograd computes it), so on
  the CPU the losses and weights are autograd's bit for bit (`tests/ml/test_fast_step.py`);
- R runs of one shape (a sweep's group) train as one stack: each layer is one batched product
  for all the runs. On the CPU a batched product is the runs' own products one after another,
  except where the result has one column (the output layer, and its weight gradient): those are
  one product a run. So each run's numbers are those it gets trained alone, bit for bit
  (`tests/ml/test_stacked.py`), and R runs cost little more than one.

A module's parameters are views into its row of the flat buffer, so `model(x)` reads what the
step writes; `export` puts the optimizer's state into `torch.optim`'s format for a checkpoint,
and a checkpoint written by either kind of step resumes in the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from app.ml.checkpoints import STATE_NAMES, kept_buffers
from app.ml.inference import mean_loss
from app.vocabulary import Activation, LossFunction, Optimizer


@dataclass(frozen=True)
class _Kernels:
    """An activation's forward and its backward as autograd computes them.

    `forward(pre, spare)` activates in place where it can, else into `spare`. `backward(grad,
    saved)` writes over the incoming gradient, since a fresh tensor each step costs more in
    page faults than the arithmetic does; `saved` is the activation's output, or its input when
    `saves_input` (gelu's backward needs the input).
    """

    forward: Callable[[Tensor, Tensor], Tensor]
    backward: Callable[[Tensor, Tensor], Tensor]
    saves_input: bool = False


ACTIVATIONS: dict[Activation, _Kernels | None] = {
    Activation.RELU: _Kernels(
        lambda pre, _: pre.relu_(),
        lambda grad, out: torch.ops.aten.threshold_backward.grad_input(
            grad, out, 0, grad_input=grad
        ),
    ),
    Activation.TANH: _Kernels(
        lambda pre, _: pre.tanh_(),
        lambda grad, out: torch.ops.aten.tanh_backward.grad_input(grad, out, grad_input=grad),
    ),
    Activation.SIGMOID: _Kernels(
        lambda pre, _: pre.sigmoid_(),
        lambda grad, out: torch.ops.aten.sigmoid_backward.grad_input(grad, out, grad_input=grad),
    ),
    Activation.GELU: _Kernels(
        lambda pre, spare: torch.ops.aten.gelu.out(pre, out=spare),
        lambda grad, pre: torch.ops.aten.gelu_backward.grad_input(grad, pre, grad_input=grad),
        saves_input=True,
    ),
    Activation.NONE: None,
}
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which the tutorial uses
ADAM_EPS = 1e-8
RMSPROP_ALPHA = 0.99  # torch.optim.RMSprop's defaults
RMSPROP_EPS = 1e-8
# The square root of an exact zero takes about six times as long as that of a normal number on
# the CPUs measured, and many moments are zero (a dead ReLU unit's weights get no gradient).
# RMSprop raises them to this floor before the root: sqrt(TINY) is about 1e-19, far under half a
# float32 step of eps (1e-8), so the denominator, eps plus the root, comes out the same.
TINY = torch.finfo(torch.float32).tiny
COUNTS_AHEAD = 4096
# Each parameter starts this many floats (64 bytes) into the flat buffer: matrix products give
# the same bits as autograd's only when their operands and results are aligned as torch's own
# allocations are.
ALIGNMENT = 16
# Elements an elementwise kernel takes at a time on its vectorised path: two AVX-512 vectors
# of float32, a multiple of the AVX2 and NEON blocks.
VECTOR_BLOCK = 32
# With one thread, a batched product on the CPU is each run's own product, bit for bit, except
# where torch takes another path for one of them: fewer multiply-adds than this in all (a naive
# loop), or a result of one row or column (a matrix-vector path). Those are multiplied one run
# at a time (measured; `tests/ml/test_stacked.py` holds every shape the service trains to it).
SMALL_PRODUCT = 400


def multiplied_by_run(n: int, fan_in: int, out: int, device: torch.device) -> tuple[bool, bool]:
    """Whether a stack's layer of this shape, on n points, multiplies one run at a time: its
    forward and weight gradient, (n, fan_in) x (fan_in, out) and (out, n) x (n, fan_in); and
    its input gradient, (n, out) x (out, fan_in). Elsewhere than on the CPU no product is held
    to its solo bits: only a one-column forward goes run by run there, the batched one being
    slow."""
    if device.type != "cpu":
        return out == 1, False
    small = n * fan_in * out < SMALL_PRODUCT or n == 1
    return small or min(fan_in, out) == 1, small or fan_in == 1


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


class RunLayout:
    """Where one run's parameters and their gradients lie: its rows of the flat buffers."""

    def __init__(
        self, flat: Tensor, flat_grad: Tensor, parameters: list[Tensor], offsets: list[int]
    ) -> None:
        self.flat, self.flat_grad, self.offsets = flat, flat_grad, offsets
        self.parameters = parameters  # the module's, in order: the keys of torch.optim's state
        self.device = flat.device

    def views(self, buffer: Tensor) -> list[Tensor]:
        """Each parameter's part of a buffer laid out as `flat`, shaped as the parameter."""
        return [
            buffer[offset : offset + parameter.numel()].view_as(parameter)
            for parameter, offset in zip(self.parameters, self.offsets, strict=True)
        ]


class FlatOptimizer:
    """Adam, SGD or RMSprop as `torch.optim` computes them, over every parameter in a few calls.

    Adam is the kernel of `torch.optim.Adam(fused=True)`, which the autograd step uses too; SGD
    and RMSprop are `torch.optim`'s single-tensor formulas, as `_foreach_` calls. Each call takes
    the parameters as a list of views, never the flat buffer whole: a vectorised kernel rounds a
    tensor's last few elements differently from the rest, so only tensor-by-tensor calls give
    torch.optim's bits.
    """

    def __init__(
        self, kind: Optimizer, learning_rate: float, momentum: float, layout: RunLayout
    ) -> None:
        self.kind = Optimizer(kind)
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.steps = 0
        zeros = layout.flat.new_zeros
        # Adam's first moment; for SGD and RMSprop, the momentum buffer.
        self.exp_avg = zeros(layout.flat.numel())
        # Adam's second moment; for RMSprop, the running average of squared gradients.
        self.exp_avg_sq = zeros(layout.flat.numel())
        self.rms_denominator = zeros(layout.flat.numel())  # RMSprop's eps + sqrt(square_avg)
        self.attach(layout)
        self.exp_avgs = layout.views(self.exp_avg)
        self.exp_avg_sqs = layout.views(self.exp_avg_sq)
        self.rms_denominators = layout.views(self.rms_denominator)
        # Adam's step count, where its fused kernel reads it: a view into a run of counts made
        # ahead, since adding 1 to a tensor each step costs more than the kernel itself.
        self._counts = zeros(0)
        self._next_count = 0

    def attach(self, layout: RunLayout) -> None:
        """Update the parameters and gradients `layout` holds (moved, when a stack of runs
        loses some); the optimizer's own state stays."""
        self.layout = layout
        self.params = layout.views(layout.flat)
        self.grads = layout.views(layout.flat_grad)

    def step(self) -> None:
        self.steps += 1
        lr = self.learning_rate
        if self.kind == Optimizer.ADAM:
            torch._fused_adam_(
                self.params,
                self.grads,
                self.exp_avgs,
                self.exp_avg_sqs,
                [],
                [self._count(self.steps)] * len(self.params),
                lr=lr,
                beta1=ADAM_BETAS[0],
                beta2=ADAM_BETAS[1],
                weight_decay=0.0,
                eps=ADAM_EPS,
                amsgrad=False,
                maximize=False,
            )
        elif self.kind == Optimizer.RMSPROP:
            torch._foreach_mul_(self.exp_avg_sqs, RMSPROP_ALPHA)
            torch._foreach_addcmul_(
                self.exp_avg_sqs, self.grads, self.grads, value=1 - RMSPROP_ALPHA
            )
            # Clamp, root and sum round once each, the same way in any kernel: done flat.
            torch.clamp_min(self.exp_avg_sq, TINY, out=self.rms_denominator).sqrt_().add_(
                RMSPROP_EPS
            )
            if self.momentum > 0:
                torch._foreach_mul_(self.exp_avgs, self.momentum)
                torch._foreach_addcdiv_(self.exp_avgs, self.grads, self.rms_denominators)
                torch._foreach_add_(self.params, self.exp_avgs, alpha=-lr)
            else:
                torch._foreach_addcdiv_(self.params, self.grads, self.rms_denominators, value=-lr)
        elif self.momentum != 0:  # sgd with momentum
            if self.steps == 1:
                self.exp_avg.copy_(self.layout.flat_grad)
            else:
                torch._foreach_mul_(self.exp_avgs, self.momentum)
                torch._foreach_add_(self.exp_avgs, self.grads)
            torch._foreach_add_(self.params, self.exp_avgs, alpha=-lr)
        else:
            torch._foreach_add_(self.params, self.grads, alpha=-lr)

    def _count(self, step: int) -> Tensor:
        if self._next_count >= len(self._counts):
            counts = torch.arange(step, step + COUNTS_AHEAD, device=self.layout.device)
            self._counts = counts.float()
            self._next_count = 0
        count = self._counts[self._next_count]
        self._next_count += 1
        return count

    def export_to(self, optimizer: torch.optim.Optimizer) -> None:
        """Put this state into `optimizer`, so its `state_dict()` is what torch would write."""
        optimizer.state.clear()
        if self.steps == 0:
            return
        first_name, second_name = STATE_NAMES[self.kind]
        kept = kept_buffers(self.kind, self.momentum)
        for parameter, first, second in zip(
            self.layout.parameters, self.exp_avgs, self.exp_avg_sqs, strict=True
        ):
            state = {"step": torch.tensor(float(self.steps))} if second_name else {}
            if kept[first_name]:
                state[first_name] = first
            if second_name is not None:
                state[second_name] = second
            if state:
                optimizer.state[parameter] = state

    def import_from(self, optimizer: torch.optim.Optimizer) -> None:
        """Take the state of `optimizer`, as loaded from a checkpoint."""
        self.steps = 0
        self._counts = self._counts[:0]
        self.exp_avg.zero_()
        self.exp_avg_sq.zero_()
        first_name, second_name = STATE_NAMES[self.kind]
        for parameter, first, second in zip(
            self.layout.parameters, self.exp_avgs, self.exp_avg_sqs, strict=True
        ):
            state = optimizer.state.get(parameter, {})
            if "step" in state:
                self.steps = int(state["step"])
            elif state.get("momentum_buffer") is not None:
                self.steps = max(self.steps, 1)  # SGD keeps no count; only "started" matters
            if state.get(first_name) is not None:
                first.copy_(state[first_name])
            if second_name is not None and state.get(second_name) is not None:
                second.copy_(state[second_name])


class _Buffers:
    """Activations and gradients of every run for one batch size, allocated once. One run's
    are (n, width); a stack's (R, n, width), each run's apart where an elementwise kernel
    works on them (`runs_tensor`)."""

    def __init__(
        self,
        runs: int | None,
        n: int,
        shapes: list[tuple[int, int]],
        device: torch.device,
        *,
        saves_input: bool,
    ) -> None:
        def tensor(width: int, *, apart: bool = True) -> Tensor:
            if runs is None:
                return torch.empty(n, width, device=device)
            return runs_tensor(runs, n, width, device, apart=apart)

        widths = [out for _, out in shapes]
        self.outputs = [tensor(width) for width in widths]
        # An activation whose backward needs its input cannot work in place: it writes here.
        self.activated = [tensor(width) for width in widths] if saves_input else self.outputs
        # The output layer's gradient is a product's operand, kept whole; it is computed apart.
        self.grads = [tensor(width, apart=width > 1) for width in widths]
        # Made once: a view, or a Python number turned into a tensor, costs microseconds a call.
        self.grads_t = [grad.transpose(-2, -1) for grad in self.grads]
        # A stack's weight gradients are computed whole, then copied into the runs' rows: a
        # batched product into strided rows is slower.
        self.weight_grads = [
            torch.empty(runs, out, fan_in, device=device) for fan_in, out in shapes if runs
        ]
        by_run = [multiplied_by_run(n, *shape, device) for shape in shapes]
        self.by_run = [runs is not None and forward for forward, _ in by_run]
        self.by_run_input = [runs is not None and backward for _, backward in by_run]
        self.probabilities = tensor(1)
        self.errors = tensor(1)
        self.count = torch.tensor(float(n), device=device)
        # autograd's mean backward: 1 / n, rounded to float32 once.
        self.inverse_count = torch.ones((), device=device) / n


class FastStep:
    """Forward, backward and optimizer update of R networks of one shape: one, or a stack.

    The runs' parameters and gradients are the rows of two (R, P) buffers, each parameter laid
    out and aligned as torch would allocate it, and each run's update is a `FlatOptimizer` of
    its own. One run's tensors are (n, width) and its products torch's 2-D ones; a stack's are
    (R, n, width) and its products batched.
    """

    def __init__(
        self,
        models: list[nn.Sequential],
        optimizers: list[torch.optim.Optimizer],
        kinds: list[tuple[Optimizer, float, float]],
        activation: Activation,
        loss: LossFunction,
    ) -> None:
        self.bce = LossFunction(loss) == LossFunction.BCE
        self.kernels = ACTIVATIONS[Activation(activation)]
        linears = [module for module in models[0] if isinstance(module, nn.Linear)]
        self.shapes = [(layer.in_features, layer.out_features) for layer in linears]
        self.widths = [out for _, out in self.shapes]
        self.offsets = []
        size = 0
        for fan_in, out in self.shapes:
            self.offsets += [size, size + _aligned(fan_in * out)]
            size += _aligned(fan_in * out) + _aligned(out)
        self.device = linears[0].weight.device
        # Zeros: the padding between parameters stays zero, and so do its gradients and moments.
        self.params = torch.zeros(len(models), size, device=self.device)
        self.grads = torch.zeros(len(models), size, device=self.device)
        self.models = models
        self.optimizers = []
        for row, (model, optimizer, (kind, rate, momentum)) in enumerate(
            zip(models, optimizers, kinds, strict=True)
        ):
            layout = self._layout(row)
            with torch.no_grad():
                for own, parameter in zip(
                    layout.views(layout.flat), model.parameters(), strict=True
                ):
                    own.copy_(parameter)
            flat = FlatOptimizer(kind, rate, momentum, layout)
            flat.import_from(optimizer)
            self.optimizers.append(flat)
        # Called between layers, forward and backward: it may raise to stop a long epoch
        # before the parameters change (the engine's stop check).
        self.interrupt: Callable[[], None] | None = None
        self.updates = 0
        self._views()

    def _layout(self, row: int) -> RunLayout:
        parameters: list[Tensor] = list(self.models[row].parameters())
        return RunLayout(self.params[row], self.grads[row], parameters, self.offsets)

    def _views(self) -> None:
        """Views made once, after every change of the buffers: a view costs microseconds. Each
        module's parameters become views into its row: the module reads what the step writes.
        """
        # Whether this trains several runs: its tensors have a leading run dimension.
        self.stacked = len(self.models) > 1
        for row, model in enumerate(self.models):
            for parameter, view in zip(
                model.parameters(), self._layout(row).views(self.params[row]), strict=True
            ):
                parameter.data = view
        runs = None if not self.stacked else len(self.models)
        self.weights: list[Tensor] = []
        self.biases: list[Tensor] = []
        self.weight_grads: list[Tensor] = []
        self.bias_grads: list[Tensor] = []
        for (fan_in, out), weight_at, bias_at in zip(
            self.shapes, self.offsets[::2], self.offsets[1::2], strict=True
        ):
            weights = slice(weight_at, weight_at + fan_in * out)
            biases = slice(bias_at, bias_at + out)
            if runs is None:
                self.weights.append(self.params[0, weights].view(out, fan_in))
                self.biases.append(self.params[0, biases])
                self.weight_grads.append(self.grads[0, weights].view(out, fan_in))
                self.bias_grads.append(self.grads[0, biases])
            else:
                self.weights.append(self.params[:, weights].view(runs, out, fan_in))
                self.biases.append(self.params[:, biases].view(runs, 1, out))
                self.weight_grads.append(self.grads[:, weights].view(runs, out, fan_in))
                self.bias_grads.append(self.grads[:, biases])
        self.weights_t = [weight.transpose(-2, -1) for weight in self.weights]
        # For a stack's products one run at a time: by layer, each run's (bias, weight_t,
        # weight, weight_grad).
        self._per_run = [
            [
                (bias[row, 0], weight_t[row], weight[row], weight_grad[row])
                for row in range(runs or 0)
            ]
            for bias, weight_t, weight, weight_grad in zip(
                self.biases, self.weights_t, self.weights, self.weight_grads, strict=True
            )
        ]
        self._cache: dict[int, _Buffers] = {}

    def keep(self, rows: list[int]) -> None:
        """Keep only these runs (rows), in this order."""
        index = torch.tensor(rows, device=self.device)
        self.params = self.params.index_select(0, index)
        self.grads = self.grads.index_select(0, index)
        self.models = [self.models[row] for row in rows]
        self.optimizers = [self.optimizers[row] for row in rows]
        for row, optimizer in enumerate(self.optimizers):
            optimizer.attach(self._layout(row))
        self._views()

    def export(self, row: int, optimizer: torch.optim.Optimizer) -> None:
        """Put a run's optimizer state into `optimizer`, as torch.optim would hold it: a
        checkpoint then reads it (the module already holds the run's parameters)."""
        self.optimizers[row].export_to(optimizer)

    def _buffers_for(self, n: int) -> _Buffers:
        buffers = self._cache.get(n)
        if buffers is None:
            saves_input = self.kernels is not None and self.kernels.saves_input
            runs = len(self.models) if self.stacked else None
            buffers = self._cache[n] = _Buffers(
                runs, n, self.shapes, self.device, saves_input=saves_input
            )
        return buffers

    def logits(self, x: Tensor) -> Tensor:
        """Every run's logits on its points x, (n, 2) -> (n, 1) or (R, n, 2) -> (R, n, 1); the
        step's buffers are left as they are."""
        n, runs = x.shape[-2], len(self.models)

        def tensor(width: int) -> Tensor:
            if not self.stacked:
                return torch.empty(n, width, device=self.device)
            return runs_tensor(runs, n, width, self.device, apart=True)

        with torch.no_grad():
            for layer, (shape, width) in enumerate(zip(self.shapes, self.widths, strict=True)):
                by_run = self.stacked and multiplied_by_run(n, *shape, self.device)[0]
                x = self._affine(layer, x, tensor(width), by_run)
                if layer < len(self.widths) - 1 and self.kernels is not None:
                    x = self.kernels.forward(x, tensor(width))
            return x

    def _affine(self, layer: int, x: Tensor, out: Tensor, by_run: bool) -> Tensor:
        """A layer's product and bias: one run's, the stack's batched, or the stack's one run
        at a time (`multiplied_by_run`)."""
        if not self.stacked:
            return torch.addmm(self.biases[layer], x, self.weights_t[layer], out=out)
        if not by_run:
            return torch.baddbmm(self.biases[layer], x, self.weights_t[layer], out=out)
        for row, (bias, weight_t, _, _) in enumerate(self._per_run[layer]):
            torch.addmm(bias, x[row], weight_t, out=out[row])
        return out

    def __call__(self, x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
        """One update of every run on its batch (x, y); returns the logits before it, written
        to `out` if given."""
        logits = self.forward_backward(x, y, out)
        if self.interrupt is not None:
            self.interrupt()
        for optimizer in self.optimizers:
            optimizer.step()
        self.updates += 1
        return logits

    def forward_backward(self, x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
        """The logits on x (written to `out` when given); in `grads`, the gradient of each
        run's mean loss on its (x, y)."""
        buffers = self._buffers_for(x.shape[-2])
        last = len(self.widths) - 1
        inputs = [x]  # each layer's input: x, then the activations
        saved = []  # what each hidden activation's backward needs
        interrupt, kernels, stacked = self.interrupt, self.kernels, self.stacked
        for layer in range(last + 1):
            if interrupt is not None:
                interrupt()
            target = out if layer == last and out is not None else buffers.outputs[layer]
            result = self._affine(layer, inputs[-1], target, buffers.by_run[layer])
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
            by_run = buffers.by_run[layer]
            if not stacked:
                torch.mm(buffers.grads_t[layer], inputs[layer], out=self.weight_grads[layer])
            elif by_run:
                for row, (_, _, _, weight_grad) in enumerate(self._per_run[layer]):
                    torch.mm(buffers.grads_t[layer][row], inputs[layer][row], out=weight_grad)
            else:
                whole = buffers.weight_grads[layer]
                torch.bmm(buffers.grads_t[layer], inputs[layer], out=whole)
                self.weight_grads[layer].copy_(whole)
            torch.sum(grad, -2, out=self.bias_grads[layer])
            if layer > 0:
                into = buffers.grads[layer - 1]
                if not stacked:
                    grad = torch.mm(grad, self.weights[layer], out=into)
                elif buffers.by_run_input[layer]:
                    for row, (_, _, weight, _) in enumerate(self._per_run[layer]):
                        torch.mm(grad[row], weight, out=into[row])
                    grad = into
                else:
                    grad = torch.bmm(grad, self.weights[layer], out=into)
                if kernels is not None:
                    grad = kernels.backward(grad, saved[layer - 1])
        return logits

    def _loss_gradient(self, logits: Tensor, y: Tensor, buffers: _Buffers, out: Tensor) -> Tensor:
        """The gradient of each run's mean loss over its points, as autograd computes it. A
        stack computes it apart, run by run as the elementwise kernels go, then whole."""
        probabilities = buffers.probabilities if self.stacked else out
        torch.sigmoid(logits, out=probabilities)
        if self.bce:
            # BCE-with-logits' backward: (p - y) / n.
            grad = probabilities.sub_(y).div_(buffers.count)
        else:
            # Squared error of the probability, as autograd goes: mean's 1/n (rounded), times
            # the square's 2 (p - y), through the sigmoid's derivative.
            error = torch.sub(probabilities, y, out=buffers.errors).mul_(2)
            error.mul_(buffers.inverse_count)
            grad = torch.ops.aten.sigmoid_backward.grad_input(
                error, probabilities, grad_input=buffers.errors
            )
        return grad if grad is out else out.copy_(grad)


class AutogradStep:
    """A step through autograd and torch.optim, run by run: the reference the fast step is
    held to. A stack's tensors have a leading run dimension, as the fast step's."""

    def __init__(
        self,
        models: list[nn.Sequential],
        optimizers: list[torch.optim.Optimizer],
        loss: LossFunction,
    ) -> None:
        self.models, self.optimizers, self.loss = models, optimizers, loss
        self.interrupt: Callable[[], None] | None = None
        self.updates = 0

    @property
    def stacked(self) -> bool:
        return len(self.models) > 1

    def _each(self, x: Tensor) -> list[Tensor]:
        return list(x) if self.stacked else [x]

    def __call__(self, x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
        results = []
        for model, optimizer, inputs, targets in zip(
            self.models, self.optimizers, self._each(x), self._each(y), strict=True
        ):
            optimizer.zero_grad(set_to_none=True)
            logits = model(inputs)
            objective: Any = mean_loss(logits, targets, self.loss)  # backward is untyped
            objective.backward()
            results.append(logits.detach())
        if self.interrupt is not None:
            self.interrupt()
        for optimizer in self.optimizers:
            optimizer.step()
        self.updates += 1
        logits = torch.stack(results) if self.stacked else results[0]
        return logits if out is None else out.copy_(logits)

    def logits(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            results = [
                model(inputs) for model, inputs in zip(self.models, self._each(x), strict=True)
            ]
        return torch.stack(results) if self.stacked else results[0]

    def keep(self, rows: list[int]) -> None:
        self.models = [self.models[row] for row in rows]
        self.optimizers = [self.optimizers[row] for row in rows]

    def export(self, row: int, optimizer: torch.optim.Optimizer) -> None:
        """torch.optim's state is the optimizer's own already."""


# One optimizer update of every run: `step(x, y, out)` returns the logits before it.
Step = AutogradStep | FastStep


def make_step(
    models: list[nn.Sequential],
    optimizers: list[torch.optim.Optimizer],
    kinds: list[tuple[Optimizer, float, float]],
    activation: Activation,
    loss: LossFunction,
    *,
    fast: bool,
) -> Step:
    """The hand-written step, or autograd's with `fast=False`. `kinds` are each run's
    (optimizer, learning rate, momentum)."""
    if not fast:
        return AutogradStep(models, optimizers, loss)
    return FastStep(models, optimizers, kinds, activation, loss)
