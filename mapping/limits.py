"""Track API size limits (spec §12): one reason code per limit, exact measurement, cheap bounds first.

Measurement (spec §12): a string is measured by its UTF-8 bytes, without quotes; any other value,
and every "compact size", is the UTF-8 length of
`json.dumps(v, separators=(",", ":"), ensure_ascii=False)`, keys in received order.

Exact sizes cost a Python-level serialisation, so every check first tries bounds that cannot be
wrong, computed in C:

* a string of n code points has at most 4n UTF-8 bytes;
* a value decoded from n bytes of JSON text has a compact size of at most `EXPANSION` * n.
  Compact output never spends more bytes than the input on whitespace, strings (escapes only
  shrink or stay the same length), integers, literals or containers; only floats can grow, the
  worst case being a four-byte token such as `9e15` printed as the eighteen bytes
  `9000000000000000.0` (4.5 times). Callers pass the length of the raw JSON holding the value
  (`within`) for this bound;
* msgspec's compact encoding differs from `json.dumps` only in how floats are printed, and
  `json.dumps` is never more than 5/4 of it (`1e16` against `1e+16`), so a value whose msgspec
  encoding is at most 4/5 of a limit is within it. The map's own encoding bounds each of its
  values, whose string measure (no quotes, no escapes) is never more than its JSON.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from mapping.reasons import Reason
from mapping.results import Problem
from mapping.routes import Endpoint

ID_BYTES = 150
ATTRIBUTE_NAME_BYTES = 150
ATTRIBUTE_VALUE_BYTES = 1000
ATTRIBUTES = 300
OBJECT_ATTRIBUTES_BYTES = 102_400
EVENT_NAME_BYTES = 100
EVENT_DATA_BYTES = 100_000
ENTITY_BYTES = 32_768
BATCH_BYTES = 512_000

REQUEST_BYTES: dict[Endpoint, int] = {Endpoint.V2_ENTITY: ENTITY_BYTES, Endpoint.V2_BATCH: BATCH_BYTES}
"""The endpoints whose whole request body has a size limit (spec §12), and that limit."""

EXPANSION = 5
"""Upper bound of compact size / raw JSON length for any decoded value (see the module docstring)."""

_ENCODER = msgspec.json.Encoder()
_SMALL = frozenset({type(None), bool, float})  # at most 24 bytes: never over any limit here


def request_size_over(endpoint: Endpoint, raw_length: int, body: Any) -> int | None:
    """The compact size of a request body (decoded as `body` from `raw_length` bytes of JSON) when
    it is over its endpoint's limit (`REQUEST_BYTES`), else None; measured as the worker measures
    it, so an HTTP edge refuses exactly the bodies the worker would reject as too large."""
    limit = REQUEST_BYTES.get(endpoint)
    if limit is None or raw_length * EXPANSION <= limit:
        return None
    size = json_size(body)
    return size if size > limit else None


def string_size(text: str) -> int:
    """UTF-8 byte length of a string (spec §12: no quotes). Never raises, even on a lone surrogate."""
    return len(text.encode("utf-8", "surrogatepass"))


def json_size(value: Any) -> int:
    """Compact JSON size of a decoded JSON value (spec §12), exactly as `json.dumps` measures it."""
    try:
        return string_size(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    except RecursionError:
        # json.dumps recurses in C once per nesting level; a value msgspec decoded near the
        # interpreter's limit can still be measured by walking it without recursion.
        return _walked_size(value)


def _walked_size(root: Any) -> int:
    """`json_size` by an explicit walk: the same count of braces, separators and scalars."""
    size = 0
    pending = [root]
    while pending:
        value = pending.pop()
        if type(value) is dict:
            size += 2 + max(2 * len(value) - 1, 0)  # braces, colons and commas
            for key, item in value.items():
                size += json_size(key)
                pending.append(item)
        elif type(value) is list:
            size += 2 + max(len(value) - 1, 0)
            pending.extend(value)
        else:
            size += json_size(value)
    return size


def value_size(value: Any) -> int:
    """Size of one attribute value or identifier: a string's bytes, else its compact JSON size."""
    return string_size(value) if type(value) is str else json_size(value)


def _string_over(text: str, limit: int) -> bool:
    return len(text) * 4 > limit and string_size(text) > limit


def json_over(value: Any, limit: int, within: int) -> bool:
    """Whether a value's compact size exceeds `limit`; `within` is the raw JSON length holding it."""
    return within * EXPANSION > limit and _encoded_over(value, limit)


def _encoded_over(value: Any, limit: int) -> bool:
    """Whether a value's compact size exceeds `limit`, trying msgspec's encoding as a bound first."""
    encoded = _encoded_size(value)
    if encoded is not None and encoded * 5 <= limit * 4:
        return False
    return json_size(value) > limit


def _encoded_size(value: Any) -> int | None:
    """msgspec's compact size of a value, or None when it is nested too deeply to encode."""
    try:
        return len(_ENCODER.encode(value))
    except RecursionError:
        return None


def id_fits(value: str) -> bool:
    """Whether an identifier is at most 150 bytes (spec §12)."""
    return not _string_over(value, ID_BYTES)


def check_id(value: str, where: str) -> Problem | None:
    """An identifier used in an output is at most 150 bytes (`id_too_long`)."""
    if _string_over(value, ID_BYTES):
        return Problem(Reason.ID_TOO_LONG, f"{where} is {string_size(value)} bytes; limit {ID_BYTES}")
    return None


def check_event_name(name: str) -> Problem | None:
    """Track event and screen names are at most 100 bytes (`event_name_too_long`); pages are exempt."""
    if _string_over(name, EVENT_NAME_BYTES):
        return Problem(
            Reason.EVENT_NAME_TOO_LONG,
            f"event name is {string_size(name)} bytes; limit {EVENT_NAME_BYTES}",
        )
    return None


def check_event_data(data: dict[str, Any], within: int) -> Problem | None:
    """Event data (v1 `data`, v2 event/page/screen `attributes`) is at most 100,000 bytes compact."""
    if json_over(data, EVENT_DATA_BYTES, within):
        return Problem(
            Reason.EVENT_DATA_TOO_LARGE,
            f"event data is {json_size(data)} bytes; limit {EVENT_DATA_BYTES}",
        )
    return None


def check_attributes(attributes: dict[str, Any], within: int, where: str, *, total: bool) -> Problem | None:
    """Check one attribute map: identify traits, object attributes or relationship attributes.

    In the spec's order: at most 300 keys, names at most 150 bytes, top-level values at most
    1000 bytes, and with `total` (object and relationship attributes) a compact size of at most
    102,400 bytes. `within` is the raw JSON length that holds the map.
    """
    if len(attributes) > ATTRIBUTES:
        return Problem(
            Reason.TOO_MANY_ATTRIBUTES, f"{where} has {len(attributes)} attributes; limit {ATTRIBUTES}"
        )
    if not attributes or within <= ATTRIBUTE_NAME_BYTES:
        return None  # too little JSON to break any of these limits
    if max(map(len, attributes)) * 4 > ATTRIBUTE_NAME_BYTES:
        for name in attributes:
            if string_size(name) > ATTRIBUTE_NAME_BYTES:
                return Problem(
                    Reason.ATTRIBUTE_NAME_TOO_LONG,
                    f"{where} name {name[:40]!r}… is {string_size(name)} bytes; limit {ATTRIBUTE_NAME_BYTES}",
                )
    if within * EXPANSION <= ATTRIBUTE_VALUE_BYTES:
        return None
    encoded = _encoded_size(attributes)
    if encoded is not None and encoded * 5 <= ATTRIBUTE_VALUE_BYTES * 4:
        return None  # the whole map is small enough, so is each value and its total
    for name, value in attributes.items():
        if _value_over(value):
            return Problem(
                Reason.ATTRIBUTE_VALUE_TOO_LONG,
                f"{where}[{name[:40]!r}] is {value_size(value)} bytes; limit {ATTRIBUTE_VALUE_BYTES}",
            )
    if total and (encoded is None or encoded * 5 > OBJECT_ATTRIBUTES_BYTES * 4):
        size = json_size(attributes)
        if size > OBJECT_ATTRIBUTES_BYTES:
            return Problem(
                Reason.OBJECT_ATTRIBUTES_TOO_LARGE,
                f"{where} is {size} bytes; limit {OBJECT_ATTRIBUTES_BYTES}",
            )
    return None


def _value_over(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return _string_over(value, ATTRIBUTE_VALUE_BYTES)
    if kind is int:
        # Integers of up to 18 digits are far below the limit; longer ones are printed exactly.
        return not -(10**17) < value < 10**18 and len(str(value)) > ATTRIBUTE_VALUE_BYTES
    if kind in _SMALL:
        return False
    return _encoded_over(value, ATTRIBUTE_VALUE_BYTES)
