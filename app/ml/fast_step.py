"""The engine's fast path: a hand-written training step for the service's networks.

The networks are small (the tutorial's has 17,025 parameters and sees 200 points), so a step
through autograd and `torch.optim` spends most of its time in Python and the dispatcher, not in
arithmetic. This step does the same arithmetic with far fewer calls:

- the parameters, their gradients and the optimizer's moments each live in one flat buffer, and
  the optimizer updates every layer in one call (Adam) or a few (SGD, RMSprop);
- the activations and gradients live in buffers allocated once per batch size, and the losses
  are computed at each report for all the epochs since the last, not once an epoch;
- the backward pass calls the kernels autograd calls, in the same order (addmm's derivatives,
  each activation's own backward function, BCE-with-logits' gradient), so on the CPU the losses
  and weights are the autograd loop's bit for bit (`tests/ml/test_fast_step.py` holds it to that).

The module's parameters become views into the flat buffer, so `model(x)`, `model.state_dict()`
and checkpoints work as before. The optimizer's state goes to and from `torch.optim`'s own
format, so a checkpoint written by either path resumes in the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from app.ml.checkpoints import STATE_NAMES, kept_buffers
from app.vocabulary import Activation, Optimizer


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


def parameter_views(buffer: Tensor, parameters: list[Tensor], offsets: list[int]) -> list[Tensor]:
    """Each parameter's part of a flat buffer, starting at its offset, shaped as it."""
    return [
        buffer[offset : offset + parameter.numel()].view_as(parameter)
        for parameter, offset in zip(parameters, offsets, strict=True)
    ]


class _Buffers:
    """Activations and gradients for one batch size, allocated once."""

    def __init__(
        self, n: int, widths: list[int], device: torch.device, *, saves_input: bool
    ) -> None:
        self.outputs = [torch.empty(n, width, device=device) for width in widths]
        # An activation whose backward needs its input cannot work in place: it writes here.
        self.activated = (
            [torch.empty(n, width, device=device) for width in widths]
            if saves_input
            else self.outputs
        )
        self.grads = [torch.empty(n, width, device=device) for width in widths]
        # Made once: a view, or a Python number turned into a tensor, costs microseconds a call.
        self.grads_t = [grad.t() for grad in self.grads]
        self.count = torch.tensor(float(n), device=device)


class FastStep:
    """Forward and backward of an MLP under the mean BCE-with-logits loss, into flat buffers."""

    def __init__(self, model: nn.Sequential, activation: Activation) -> None:
        linears = [module for module in model if isinstance(module, nn.Linear)]
        parameters = [p for layer in linears for p in (layer.weight, layer.bias)]
        device = parameters[0].device
        self.offsets = []
        total = 0
        for parameter in parameters:
            self.offsets.append(total)
            total += -(-parameter.numel() // ALIGNMENT) * ALIGNMENT
        self.parameters = parameters
        # Zeros: the padding between parameters stays zero, and so do its gradients and moments.
        self.flat = torch.zeros(total, device=device)
        self.flat_grad = torch.zeros(total, device=device)
        self.weights: list[Tensor] = []
        self.biases: list[Tensor] = []
        self.weight_grads: list[Tensor] = []
        self.bias_grads: list[Tensor] = []
        for index, (parameter, view, grad_view) in enumerate(
            zip(parameters, self.views(self.flat), self.views(self.flat_grad), strict=True)
        ):
            view.copy_(parameter.detach())
            # The module reads and writes the flat buffer from now on.
            parameter.data = view
            (self.weights if index % 2 == 0 else self.biases).append(view)
            (self.weight_grads if index % 2 == 0 else self.bias_grads).append(grad_view)
        self.weights_t = [weight.t() for weight in self.weights]
        self.widths = [layer.out_features for layer in linears]
        self.kernels = ACTIVATIONS[Activation(activation)]
        self.device = device
        self._buffers: dict[int, _Buffers] = {}
        # Called between layers, forward and backward: it may raise to stop a long epoch
        # before the parameters change (the engine's stop check).
        self.interrupt: Callable[[], None] | None = None

    def views(self, buffer: Tensor) -> list[Tensor]:
        """Each parameter's part of a flat buffer, shaped as the parameter."""
        return parameter_views(buffer, self.parameters, self.offsets)

    def _buffers_for(self, n: int) -> _Buffers:
        buffers = self._buffers.get(n)
        if buffers is None:
            saves_input = self.kernels is not None and self.kernels.saves_input
            buffers = self._buffers[n] = _Buffers(
                n, self.widths, self.device, saves_input=saves_input
            )
        return buffers

    def forward_backward(self, x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
        """The model's logits on x (written to `out` when given); in `flat_grad`, the gradient
        of the mean BCE-with-logits loss on (x, y)."""
        buffers = self._buffers_for(x.shape[0])
        last = len(self.weights) - 1
        inputs = [x]  # each layer's input: x, then the activations
        saved = []  # what each hidden activation's backward needs
        interrupt, kernels = self.interrupt, self.kernels
        for layer, (weight_t, bias) in enumerate(zip(self.weights_t, self.biases, strict=True)):
            if interrupt is not None:
                interrupt()
            target = out if layer == last and out is not None else buffers.outputs[layer]
            result = torch.addmm(bias, inputs[-1], weight_t, out=target)
            if layer < last and kernels is not None:
                activated = kernels.forward(result, buffers.activated[layer])
                saved.append(result if kernels.saves_input else activated)
                result = activated
            inputs.append(result)
        logits = inputs.pop()
        # BCE-with-logits' gradient, as autograd computes it; the loss itself is left to the
        # caller, which can compute many epochs' losses in one call.
        grad = torch.sigmoid(logits, out=buffers.grads[last]).sub_(y).div_(buffers.count)
        for layer in range(last, -1, -1):
            if interrupt is not None:
                interrupt()
            torch.mm(buffers.grads_t[layer], inputs[layer], out=self.weight_grads[layer])
            torch.sum(grad, 0, out=self.bias_grads[layer])
            if layer > 0:
                grad = torch.mm(grad, self.weights[layer], out=buffers.grads[layer - 1])
                if kernels is not None:
                    grad = kernels.backward(grad, saved[layer - 1])
        return logits


class FlatLayout(Protocol):
    """Where one network's parameters and their gradients lie in two flat buffers."""

    flat: Tensor
    flat_grad: Tensor
    parameters: list[Tensor]  # the module's, in order: the keys of torch.optim's state
    device: torch.device

    def views(self, buffer: Tensor) -> list[Tensor]:
        """Each parameter's part of a buffer laid out as `flat`, shaped as the parameter."""
        ...


class FlatOptimizer:
    """Adam, SGD or RMSprop as `torch.optim` computes them, over every parameter in a few calls.

    Adam is the kernel of `torch.optim.Adam(fused=True)`, which the autograd path uses too; SGD
    and RMSprop are `torch.optim`'s single-tensor formulas, as `_foreach_` calls. Each call takes
    the parameters as a list of views, never the flat buffer whole: a vectorised kernel rounds a
    tensor's last few elements differently from the rest, so only tensor-by-tensor calls give
    torch.optim's bits.
    """

    def __init__(
        self, kind: Optimizer, learning_rate: float, momentum: float, step: FlatLayout
    ) -> None:
        self.kind = Optimizer(kind)
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.steps = 0
        zeros = step.flat.new_zeros
        # Adam's first moment; for SGD and RMSprop, the momentum buffer.
        self.exp_avg = zeros(step.flat.numel())
        # Adam's second moment; for RMSprop, the running average of squared gradients.
        self.exp_avg_sq = zeros(step.flat.numel())
        self.rms_denominator = zeros(step.flat.numel())  # RMSprop's eps + sqrt(square_avg)
        self.attach(step)
        self.exp_avgs = step.views(self.exp_avg)
        self.exp_avg_sqs = step.views(self.exp_avg_sq)
        self.rms_denominators = step.views(self.rms_denominator)
        # Adam's step count, where its fused kernel reads it: a view into a run of counts made
        # ahead, since adding 1 to a tensor each step costs more than the kernel itself.
        self._counts = zeros(0)
        self._next_count = 0

    def attach(self, layout: FlatLayout) -> None:
        """Update the parameters and gradients `layout` holds (moved, when a stack of runs
        loses some); the optimizer's own state stays."""
        self.fast = layout
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
                self.exp_avg.copy_(self.fast.flat_grad)
            else:
                torch._foreach_mul_(self.exp_avgs, self.momentum)
                torch._foreach_add_(self.exp_avgs, self.grads)
            torch._foreach_add_(self.params, self.exp_avgs, alpha=-lr)
        else:
            torch._foreach_add_(self.params, self.grads, alpha=-lr)

    def _count(self, step: int) -> Tensor:
        if self._next_count >= len(self._counts):
            counts = torch.arange(step, step + COUNTS_AHEAD, device=self.fast.device)
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
            self.fast.parameters, self.exp_avgs, self.exp_avg_sqs, strict=True
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
            self.fast.parameters, self.exp_avgs, self.exp_avg_sqs, strict=True
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


class FastTrainingStep:
    """The engine's step on the fast path: `FastStep`'s forward and backward, then
    `FlatOptimizer`'s update, with the state kept in step with a torch.optim optimizer."""

    def __init__(
        self,
        model: nn.Sequential,
        optimizer: torch.optim.Optimizer,
        activation: Activation,
        kind: Optimizer,
        *,
        learning_rate: float,
        momentum: float,
        stop: Callable[[], None] | None,
    ) -> None:
        self.fast = FastStep(model, activation)
        self.fast.interrupt = stop
        self.flat = FlatOptimizer(kind, learning_rate, momentum, self.fast)
        self.flat.import_from(optimizer)
        self.optimizer = optimizer
        self.stop = stop
        self.updates = 0

    def __call__(self, x: Tensor, y: Tensor, out: Tensor | None = None) -> Tensor:
        logits = self.fast.forward_backward(x, y, out)
        if self.stop is not None:
            self.stop()
        self.flat.step()
        self.updates += 1
        return logits

    def sync(self) -> None:
        self.flat.export_to(self.optimizer)
