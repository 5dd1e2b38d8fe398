"""The networks a run can train. Each ends in one logit; the sigmoid lives in the loss and in
prediction, which is the tutorial's `Linear ... Sigmoid` + `BCELoss`, computed stably."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from torch import nn

from app.vocabulary import Activation, Architecture

MODULES: dict[Activation, type[nn.Module] | None] = {
    Activation.RELU: nn.ReLU,
    Activation.TANH: nn.Tanh,
    Activation.SIGMOID: nn.Sigmoid,
    Activation.GELU: nn.GELU,
    Activation.NONE: None,
}
MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 1024
# The tutorial's hidden width, and the width of each layer of an mlp left unshaped.
TUTORIAL_WIDTH = 128
DEFAULT_MLP_WIDTH = 64


@dataclass(frozen=True)
class NetworkSpec:
    architecture: Architecture
    hidden_layers: tuple[int, ...]  # widths of the hidden layers, input to output
    activation: Activation  # after each hidden layer

    def as_dict(self) -> dict[str, object]:
        """Plain values only: checkpoints carry this, and load with `weights_only`."""
        return {
            "architecture": self.architecture.value,
            "hidden_layers": list(self.hidden_layers),
            "activation": self.activation.value,
        }


# The tutorial's two models, and the family a user can shape.
SIMPLE = NetworkSpec(Architecture.SIMPLE, (), Activation.NONE)
COMPLEX = NetworkSpec(Architecture.COMPLEX, (TUTORIAL_WIDTH, TUTORIAL_WIDTH), Activation.RELU)
BUILT_IN = {SIMPLE.architecture: SIMPLE, COMPLEX.architecture: COMPLEX}
DEFAULT_MLP = NetworkSpec(Architecture.MLP, (DEFAULT_MLP_WIDTH,) * 2, Activation.RELU)
DESCRIPTIONS = {
    Architecture.SIMPLE: "the tutorial's linear model: Linear(2,1) + sigmoid",
    Architecture.COMPLEX: f"the tutorial's network: Linear(2,{TUTORIAL_WIDTH}), ReLU, "
    f"Linear({TUTORIAL_WIDTH},{TUTORIAL_WIDTH}), ReLU, Linear({TUTORIAL_WIDTH},1) + sigmoid",
    Architecture.MLP: f"a network you shape: hidden_layers (1 to {MAX_HIDDEN_LAYERS} widths of 1 "
    f"to {MAX_WIDTH}) and an activation",
}


class InvalidArchitecture(ValueError):
    """The architecture, layers or activation asked for cannot be built; the message says why."""


def network_spec(
    architecture: str, hidden_layers: list[int] | None = None, activation: str | None = None
) -> NetworkSpec:
    """Validate a request's architecture fields and fill in the defaults."""
    if architecture in BUILT_IN:
        spec = BUILT_IN[Architecture(architecture)]
        if hidden_layers is not None and tuple(hidden_layers) != spec.hidden_layers:
            raise InvalidArchitecture(
                f"hidden_layers: architecture {architecture!r} is fixed at "
                f"{list(spec.hidden_layers)}; use architecture 'mlp' to choose layers"
            )
        if activation is not None and activation != spec.activation:
            raise InvalidArchitecture(
                f"activation: architecture {architecture!r} uses {spec.activation!r}; "
                "use architecture 'mlp' to choose the activation"
            )
        return spec
    if architecture != Architecture.MLP:
        raise InvalidArchitecture(
            f"architecture: {architecture!r} is not one of {', '.join(Architecture)}"
        )
    layers = tuple(hidden_layers) if hidden_layers is not None else DEFAULT_MLP.hidden_layers
    if not 1 <= len(layers) <= MAX_HIDDEN_LAYERS:
        raise InvalidArchitecture(
            f"hidden_layers: {len(layers)} layers given; 1 to {MAX_HIDDEN_LAYERS} are allowed"
        )
    for width in layers:
        if not 1 <= width <= MAX_WIDTH:
            raise InvalidArchitecture(
                f"hidden_layers: width {width} is not allowed; each layer is 1 to {MAX_WIDTH} wide"
            )
    activation = activation or DEFAULT_MLP.activation
    if activation not in tuple(Activation):
        raise InvalidArchitecture(
            f"activation: {activation!r} is not one of {', '.join(Activation)}"
        )
    return NetworkSpec(Architecture.MLP, layers, Activation(activation))


def build_network(spec: NetworkSpec) -> nn.Sequential:
    layers: list[nn.Module] = []
    width_in = 2
    activation = MODULES[spec.activation]
    for width in spec.hidden_layers:
        layers.append(nn.Linear(width_in, width))
        if activation is not None:
            layers.append(activation())
        width_in = width
    layers.append(nn.Linear(width_in, 1))
    return nn.Sequential(*layers)


def parameter_count(spec: NetworkSpec) -> int:
    widths = [2, *spec.hidden_layers, 1]
    return sum(a * b + b for a, b in pairwise(widths))
