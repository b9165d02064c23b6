"""What every request body shares."""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from app.core.json_values import check_json_value


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused, and every field value obeys the JSON
    value rules (app/core/json_values.py), also when it came from a form."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _reject_hostile_values(cls, value: Any) -> Any:
        check_json_value(value)
        return value
