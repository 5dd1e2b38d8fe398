"""The networks a run can train, as the API and the dashboard's form list them."""

from __future__ import annotations

from app.ml.architectures import BUILT_IN, DEFAULT_MLP, DESCRIPTIONS, parameter_count
from app.schemas.runs import ArchitecturePublic


def list_architectures() -> list[ArchitecturePublic]:
    """The built-in architectures and the default shaped network, with parameter counts."""
    specs = [*BUILT_IN.values(), DEFAULT_MLP]
    return [
        ArchitecturePublic.model_validate(
            {
                "name": spec.architecture,
                "description": DESCRIPTIONS[spec.architecture],
                "hidden_layers": list(spec.hidden_layers),
                "activation": spec.activation,
                "parameter_count": parameter_count(spec),
            }
        )
        for spec in specs
    ]
