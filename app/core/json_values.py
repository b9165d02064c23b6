"""What a JSON value must be to enter the service: the one definition, applied to every JSON body
where FastAPI parses it, and to every request-model field (forms included).

The rules are I-JSON's (RFC 7493) plus what PostgreSQL and our own limits need:
- numbers are finite and within IEEE 754 double range: no NaN, Infinity, -Infinity (Python's
  json module accepts them), no 1e309 (it parses to infinity), no integer past ~1.8e308;
- strings and object keys are valid Unicode: no lone surrogate (`"\\ud800"` parses to one);
- no NUL character (PostgreSQL text and jsonb cannot store U+0000);
- no duplicate object key (parsers disagree on which one wins);
- nesting at most MAX_JSON_DEPTH levels below the value.
PostgreSQL's jsonb refuses the first three with an error the request would answer 500 for.
"""

import json
import math
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# Deeper JSON than this is refused: nobody's job parameters need it, and walking, storing and
# serializing deeper values is where recursion limits live.
MAX_JSON_DEPTH = 32
# The longest integer literal that can be within double range: 1.8e308 has 309 digits. Longer
# ones are refused before Python converts them (that conversion is quadratic in the length).
_MAX_INTEGER_DIGITS = 309
_MAX_DOUBLE_INTEGER = int(sys.float_info.max)


class InvalidJSONValue(ValueError):
    pass


def _check_string(text: str, what: str) -> None:
    if "\x00" in text:
        raise InvalidJSONValue(f"{what} must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJSONValue(f"{what} must be valid Unicode (no lone surrogates)") from None


def check_json_value(value: Any) -> None:
    """Raises InvalidJSONValue (a ValueError, so pydantic reports it as a field error) when
    `value` breaks a rule above. Iterative, so a hostile value cannot exhaust the stack."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            _check_string(item, "strings")
        elif isinstance(item, bool):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidJSONValue("numbers must be finite (no NaN or Infinity)")
        elif isinstance(item, int):
            if abs(item) > _MAX_DOUBLE_INTEGER:
                raise InvalidJSONValue("numbers must be within the range of a double")
        elif isinstance(item, dict | list | tuple):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidJSONValue(f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str):
                        _check_string(key, "object keys")
                pending.extend((child, depth + 1) for child in item.values())
            else:
                pending.extend((child, depth + 1) for child in item)


def _refuse_constant(name: str) -> Any:
    raise InvalidJSONValue(f"numbers must be finite ({name} is not JSON)")


def _parse_int(literal: str) -> int:
    if len(literal.lstrip("-")) > _MAX_INTEGER_DIGITS:
        raise InvalidJSONValue("numbers must be within the range of a double")
    return int(literal)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidJSONValue("object keys must be unique")
    return result


class InvalidJSONBody(json.JSONDecodeError):
    """FastAPI answers a JSONDecodeError from the body parser as a 422 `json_invalid` error."""

    def __init__(self, reason: str, body: str) -> None:
        super().__init__(reason, body, 0)


def loads_request_json(body: bytes) -> Any:
    """Parses a request body, refusing what check_json_value refuses."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidJSONBody("the body must be UTF-8", "") from None
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_parse_int,
            object_pairs_hook=_unique_keys,
        )
    except InvalidJSONValue as exc:
        raise InvalidJSONBody(str(exc), text) from None
    except RecursionError:
        raise InvalidJSONBody(
            f"must not be nested more than {MAX_JSON_DEPTH} levels deep", text
        ) from None
    # A JSONDecodeError (bad syntax) propagates as it is: FastAPI renders it as a 422.
    try:
        check_json_value(value)
    except InvalidJSONValue as exc:
        raise InvalidJSONBody(str(exc), text) from None
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        # FastAPI reads every JSON body through Request.json(): this is the one hook for all.
        if not hasattr(self, "_json"):
            self._json = loads_request_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """The route class of every router: JSON bodies are parsed by loads_request_json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler  # no body to parse: the dashboard's polls pay nothing for this

        async def strict_json_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_json_handler
