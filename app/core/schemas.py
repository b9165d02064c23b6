"""What every request body shares."""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

# Deeper JSON than this is refused: nobody's job parameters need it, and walking, storing and
# serializing deeper values is where recursion limits live.
MAX_JSON_DEPTH = 32


def _check_json_value(value: Any) -> None:
    """Refuses NUL characters anywhere (PostgreSQL text and JSON cannot store them) and
    nesting past MAX_JSON_DEPTH. Iterative, so a hostile value cannot exhaust the stack."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("must not contain NUL characters")
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
            if isinstance(item, dict):
                pending.extend((key, depth + 1) for key in item)
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused, and no string may hold a NUL."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _reject_hostile_values(cls, value: Any) -> Any:
        _check_json_value(value)
        return value
