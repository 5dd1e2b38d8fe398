"""The networks a run can train. Each ends in one logit; the sigmoid lives in the loss and in
prediction, which is the tutorial's `Linear ... Sigmoid` + `BCELoss`, computed stably."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module] | None] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "none": None,
}
MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 1024


@dataclass(frozen=True)
class NetworkSpec:
    architecture: str  # simple | complex | mlp
    hidden_layers: tuple[int, ...]  # widths of the hidden layers, input to output
    activation: str  # after each hidden layer

    def as_dict(self) -> dict[str, object]:
        return {
            "architecture": self.architecture,
            "hidden_layers": list(self.hidden_layers),
            "activation": self.activation,
        }


# The tutorial's two models, and the family a user can shape.
BUILT_IN: dict[str, NetworkSpec] = {
    "simple": NetworkSpec("simple", (), "none"),
    "complex": NetworkSpec("complex", (128, 128), "relu"),
}
DESCRIPTIONS = {
    "simple": "the tutorial's linear model: Linear(2,1) + sigmoid",
    "complex": "the tutorial's network: Linear(2,128), ReLU, Linear(128,128), ReLU, Linear(128,1) + sigmoid",
    "mlp": "a network you shape: hidden_layers (1 to 8 widths of 1 to 1024) and an activation",
}
DEFAULT_MLP = NetworkSpec("mlp", (64, 64), "relu")


class InvalidArchitecture(ValueError):
    """The architecture, layers or activation asked for cannot be built; the message says why."""


def network_spec(
    architecture: str, hidden_layers: list[int] | None = None, activation: str | None = None
) -> NetworkSpec:
    """Validate a request's architecture fields and fill in the defaults."""
    if architecture in BUILT_IN:
        spec = BUILT_IN[architecture]
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
    if architecture != "mlp":
        raise InvalidArchitecture(
            f"architecture: {architecture!r} is not one of simple, complex, mlp"
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
    if activation not in ACTIVATIONS:
        raise InvalidArchitecture(
            f"activation: {activation!r} is not one of {', '.join(ACTIVATIONS)}"
        )
    return NetworkSpec("mlp", layers, activation)


def build_network(spec: NetworkSpec) -> nn.Sequential:
    layers: list[nn.Module] = []
    width_in = 2
    activation = ACTIVATIONS[spec.activation]
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
