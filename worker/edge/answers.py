"""What the edge answers, in the Track API's shapes.

Success is `{}` (the Track API's "empty object response"). Errors follow the API version of the
path: v1 answers `{"meta": {"error": "..."}}` (docs.customer.io, "Invalid Track API Requests"),
v2 answers `{"errors": [{"reason": "...", "message": "..."}]}` (the Track API OpenAPI file's
`errors` schema). Messages never quote the credentials.
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

SUCCESS: Final = b"{}"
JSON: Final = "application/json"
V2_PREFIX: Final = "/api/v2/"

_ENCODER = msgspec.json.Encoder()

MAX_BODY_BYTES: Final = 1_000_000
"""The largest request body the edge reads. No Track API call needs more (the largest spec limit
is /api/v2/batch's 512,000 bytes), and the envelope must fit the broker's default 1 MiB message."""
RETRY_AFTER_S: Final = 2
"""The `Retry-After` of a 503: Kafka did not acknowledge the envelope in time."""


class Refusal(enum.StrEnum):
    """Why the edge answered without producing (label `reason` of its refusal counter)."""

    UNKNOWN_PATH = "unknown_path"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAUTHORIZED = "unauthorized"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    INVALID_JSON = "invalid_json"
    BODY_TOO_LARGE = "body_too_large"
    REQUEST_TOO_LARGE = "request_too_large"
    KAFKA_UNAVAILABLE = "kafka_unavailable"

    @property
    def status(self) -> int:
        return _STATUS[self]


_STATUS: Final = {
    Refusal.UNKNOWN_PATH: 404,
    Refusal.METHOD_NOT_ALLOWED: 405,
    Refusal.UNAUTHORIZED: 401,
    Refusal.INVALID_IDEMPOTENCY_KEY: 400,
    Refusal.INVALID_JSON: 400,
    Refusal.BODY_TOO_LARGE: 400,  # the Track API documents 400 for a body over its limit
    Refusal.REQUEST_TOO_LARGE: 413,
    Refusal.KAFKA_UNAVAILABLE: 503,
}


class _V1Meta(msgspec.Struct, frozen=True):
    error: str


class _V1Error(msgspec.Struct, frozen=True):
    meta: _V1Meta


class _V2Error(msgspec.Struct, frozen=True):
    reason: str
    message: str


class _V2Errors(msgspec.Struct, frozen=True):
    errors: list[_V2Error]


def error_body(path: str, reason: str, message: str) -> bytes:
    """An error body for a request to `path`: the v2 shape under /api/v2/, else the v1 shape."""
    if path.startswith(V2_PREFIX):
        return _ENCODER.encode(_V2Errors([_V2Error(reason, message)]))
    return _ENCODER.encode(_V1Error(_V1Meta(message)))


class _Region(msgspec.Struct, frozen=True):
    url: str
    region: str
    data_center: str


def region_body(base_url: str) -> bytes:
    """`GET /api/v1/accounts/region`: this edge is the account's Track API, whatever the region,
    so a client that asks where to send its calls keeps sending them here."""
    return _ENCODER.encode(_Region(base_url, "us", "us"))
