"""Shape checks on decoded JSON values that every mapper shares (spec §0 "null is absent")."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from mapping.reasons import Reason
from mapping.results import Problem

T = TypeVar("T")

_NAMES = {int: "a number", float: "a number", str: "a string", dict: "an object", list: "an array"}


def json_type(value: Any) -> str:
    """The JSON type of a decoded value with its article ("a string", "null"), for details."""
    if value is True or value is False:
        return "a boolean"
    return _NAMES.get(type(value), "null")


def optional_object(value: Any, where: str) -> dict[str, Any] | Problem:
    """An optional JSON object field: null/absent gives `{}`, a non-object `invalid_body`."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return Problem(Reason.INVALID_BODY, f"{where} is {json_type(value)}, not an object")


def required_object(value: Any, where: str) -> dict[str, Any] | Problem:
    """A required JSON object field: anything else (null included) gives `invalid_body`."""
    if isinstance(value, dict):
        return value
    return Problem(Reason.INVALID_BODY, f"{where} is {json_type(value)}, not an object")


def required_text(value: Any, where: str) -> str | Problem:
    """A required non-empty string field that is not an identifier (metric, token): else `invalid_body`."""
    if isinstance(value, str) and value:
        return value
    return Problem(Reason.INVALID_BODY, f"{where} is missing or not a non-empty string")


def decode_body(decoder: msgspec.json.Decoder[T], raw: msgspec.Raw, what: str) -> T | Problem:
    """Decode a body (or batch element) straight into its type, or say it is `invalid_body`.

    The envelope already proved the text is valid JSON, so what can fail here is its shape, a
    number too large to represent, or nesting too deep to decode.
    """
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError) as error:
        return Problem(Reason.INVALID_BODY, f"{what}: {error}")
