"""msgspec's validation messages in a configuration's own words: one translator for every config.

msgspec says "Expected `int` >= 1 - at `$.batch_size`"; a user wants the key they wrote and the
problem, on one line. `parts` splits the message from its path, and `in_words` rewrites msgspec's
type names and common complaints the way a TOML or environment user reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

import msgspec

_AT_PATH: Final = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_FIELD: Final = re.compile(r"Object contains unknown field `(.*)`")
_MISSING_FIELD: Final = re.compile(r"Object missing required field `(.*)`")
_TYPE_NAME: Final = re.compile(r"`([^`]*)`")
_TYPE_WORDS: Final = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "object": "a table",
    "array": "an array",
    "null": "null",
    "datetime": "a date-time",
}


def one_line(text: str) -> str:
    """`text` with every run of white space (newlines included) as one space."""
    return " ".join(text.split())


def parts(error: msgspec.ValidationError) -> tuple[str, str]:
    """(path, message): the path as msgspec gives it without `$` (`.a[0].b`, `` at the top)."""
    match = _AT_PATH.match(one_line(str(error)))
    assert match is not None  # the pattern matches any text
    return match["path"] or "", match["message"]


def in_words(path: str, message: str, key: Callable[[str], str] = str) -> tuple[str, str]:
    """(path, message) with an unknown or missing key moved into the path (written by `key`) and
    type names in words."""
    if field := _UNKNOWN_FIELD.fullmatch(message):
        return f"{path}.{key(field[1])}", "unknown key"
    if field := _MISSING_FIELD.fullmatch(message):
        return f"{path}.{key(field[1])}", "required key is missing"
    message = _TYPE_NAME.sub(_type_words, message)
    return path, message[:1].lower() + message[1:]


def _type_words(match: re.Match[str]) -> str:
    """`array | null` -> "an array" (null means "leave the key out", which TOML cannot write)."""
    names = [name for name in match[1].split(" | ") if name != "null"] or ["null"]
    return " or ".join(_TYPE_WORDS.get(name, name) for name in names)
