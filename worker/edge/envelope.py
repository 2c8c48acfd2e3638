"""One Track API request as the spec §1 envelope, its request id, and its partition key.

The body goes into the envelope as the bytes the client sent (already checked to be JSON), so the
envelope carries exactly what was received: no number or key order is changed by re-encoding.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from mapping.routes import Endpoint, Route

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
"""A client's retry key: when present it is the envelope's `request_id`, so a retried request
yields the same messageIds downstream (spec §10)."""
IDEMPOTENCY_KEY_MAX: Final = 255

NULL: Final = msgspec.Raw(b"null")


class EdgeEnvelope(msgspec.Struct, frozen=True, gc=False):
    """The spec §1 envelope, fields in the spec's order; `query` and `authorization` may be null."""

    method: str
    path: str
    query: str | None
    authorization: str | None
    body: msgspec.Raw
    received_at: str
    request_id: str


_ENCODER = msgspec.json.Encoder()


def encode(envelope: EdgeEnvelope) -> bytes:
    return _ENCODER.encode(envelope)


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text


def received_at(now: float | None = None) -> str:
    """The edge's clock as an ISO-8601 UTC instant with microseconds (spec §1 `received_at`)."""
    now = time.time() if now is None else now
    second = int(now)
    if _second[0] != second:
        _second[0], _second[1] = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{int((now - second) * 1_000_000):06d}Z"


_PROCESS = os.urandom(10).hex()
_COUNT = itertools.count()


def new_request_id() -> str:
    """A request id unique to this request: 80 random bits drawn when the process starts (so no
    two edge processes share them), then this process's request count."""
    return f"{_PROCESS}-{next(_COUNT):x}"


def idempotency_key(value: str) -> str | None:
    """The `Idempotency-Key` header as a request id: 1 to 255 visible ASCII characters, else None."""
    if 0 < len(value) <= IDEMPOTENCY_KEY_MAX and value.isascii() and value.isprintable() and " " not in value:
        return value
    return None


_PERSON_PATH: Final = frozenset(
    {
        Endpoint.V1_IDENTIFY,
        Endpoint.V1_DELETE,
        Endpoint.V1_EVENT,
        Endpoint.V1_ADD_DEVICE,
        Endpoint.V1_DELETE_DEVICE,
        Endpoint.V1_SUPPRESS,
        Endpoint.V1_UNSUPPRESS,
    }
)


def partition_key(route: Route, body: Any) -> bytes | None:
    """The Kafka key that keeps one person's calls in order: the person (or object, or delivery)
    the call is about, spelled as a v1 path would spell it, so a person's v1 and v2 calls share
    a partition. None when the call names nobody (or, for a batch, more than one)."""
    endpoint = route.endpoint
    if endpoint in _PERSON_PATH:
        person = route.params[0] if route.params else None
        return None if not person else _bytes(person)
    if not isinstance(body, dict):
        return None
    if endpoint is Endpoint.V2_ENTITY:
        return _bytes(_operation_key(body))
    if endpoint is Endpoint.V2_BATCH:
        operations = body.get("batch")
        if not isinstance(operations, list) or not operations:
            return None
        keys = {_operation_key(op) if isinstance(op, dict) else None for op in operations}
        return _bytes(keys.pop()) if len(keys) == 1 else None
    if endpoint is Endpoint.V1_ANONYMOUS_EVENT:
        return _bytes(_scalar(body.get("anonymous_id")))
    if endpoint is Endpoint.V1_MERGE:
        primary = body.get("primary")
        return _bytes(_person_key(primary)) if isinstance(primary, dict) else None
    if endpoint in (Endpoint.V1_METRICS, Endpoint.V1_PUSH_EVENTS):
        return _bytes(_scalar(body.get("delivery_id")))
    return None


def _bytes(text: str | None) -> bytes | None:
    return None if not text else text.encode("utf-8", "surrogatepass")


def _scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _person_key(identifiers: dict[str, Any]) -> str | None:
    """`id`, `email` or `cio_<cio_id>` (the v1 path forms), else `phone`."""
    for name in ("id", "email"):
        value = _scalar(identifiers.get(name))
        if value:
            return value
    cio_id = _scalar(identifiers.get("cio_id"))
    if cio_id:
        return "cio_" + cio_id
    return _scalar(identifiers.get("phone"))


def _operation_key(op: dict[str, Any]) -> str | None:
    identifiers = op.get("identifiers")
    kind = op.get("type")
    if kind == "person":
        key = _person_key(identifiers) if isinstance(identifiers, dict) else None
        return key or _scalar(op.get("anonymous_id"))
    if not isinstance(identifiers, dict):
        return None
    if kind == "object":
        cio_object_id = _scalar(identifiers.get("cio_object_id"))
        if cio_object_id:
            return f"cio_object:{cio_object_id}"
        type_id, object_id = _scalar(identifiers.get("object_type_id")), _scalar(identifiers.get("object_id"))
        return f"object:{type_id}:{object_id}" if type_id and object_id else None
    if kind == "delivery":
        return _scalar(identifiers.get("id"))
    return None
