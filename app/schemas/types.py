"""Number types for request bodies: JSON numbers only.

Pydantic's lax mode would take `true` as 1 and `"1.5"` as 1.5; the schema says "number", so a
boolean or a string there is refused like any other wrong type. Floats take pydantic's strict
mode, which does exactly that. Integers cannot: strict mode also refuses `1.0` and `1e2`, which
JSON encoders write for whole numbers, so integers keep the small validator below.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Strict


def json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a JSON number, got {type(value).__name__}")
    return value


# Constraints go before the validator inside one Annotated (as below, or at a use site), or the
# JSON schema loses them: `Annotated[int, Field(ge=1), BeforeValidator(json_number)]`.
Integer = Annotated[int, BeforeValidator(json_number)]
Number = Annotated[float, Strict()]
