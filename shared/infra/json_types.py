"""Field types for what clients send as JSON, where pydantic's strict mode is narrower than JSON
Schema, the language the API's document speaks: JSON Schema's "integer" is a number with no
fraction, however it is spelled, so ``999999.0`` is one. A strict model refuses it (pydantic
2's strict int takes only ints); these types take it, and still refuse a boolean, a string or a
number with a fraction, as strict mode does.

Put it after the field's constraints, so that they stay JSON Schema's own keywords in the
document: ``Annotated[int, Field(ge=0), JSON_INTEGER]``."""

from __future__ import annotations

from typing import Any

from pydantic import BeforeValidator


def _integral(value: Any) -> Any:
    """A float with no fraction as the int it is; anything else as it came."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JSON_INTEGER = BeforeValidator(_integral)
