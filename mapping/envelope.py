"""The raw-call envelope (spec §1): decoding and validating it."""

from __future__ import annotations

from typing import Annotated, Any, final

import msgspec

from mapping.reasons import Reason
from mapping.results import Problem
from mapping.timestamps import normalize_received_at

_NULL = msgspec.Raw(b"null")
_Text = Annotated[str, msgspec.Meta(min_length=1)]


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """One HTTP request as the edge received it (spec §1). Unknown keys are ignored.

    `body` stays undecoded until the route says what it should be; an absent body is `null`.
    """

    method: _Text
    path: _Text
    received_at: _Text
    request_id: _Text
    query: str | None = None
    authorization: str | None = None
    body: msgspec.Raw = _NULL


@final
class Malformed(msgspec.Struct, frozen=True, gc=False):
    """An input that is not a valid envelope, with what could still be read of it."""

    problem: Problem
    request_id: str | None = None
    received_at: str | None = None


class Accepted(msgspec.Struct, frozen=True, gc=False):
    """A valid envelope and its `received_at` normalised to a Pipelines time (spec §9)."""

    envelope: Envelope
    received_at: str


_DECODER = msgspec.json.Decoder(Envelope)
_ANY = msgspec.json.Decoder()
_REQUIRED = ("method", "path", "received_at", "request_id")


def read_envelope(raw: bytes) -> Accepted | Malformed:
    """Decode and validate an input message value (spec §1, first failure wins).

    msgspec checks the shape (the four required strings non-empty); beyond that the whole value
    must be UTF-8 (the body is skipped over, not decoded, so it is checked here) and `received_at`
    must parse. JSON nested too deeply to decode counts as not valid JSON.
    """
    try:
        if not raw.isascii():
            raw.decode("utf-8")
        envelope = _DECODER.decode(raw)
    except (msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return _diagnose(raw)
    except msgspec.DecodeError:
        return Malformed(Problem(Reason.MALFORMED_ENVELOPE, "input is not valid JSON"))
    received_at = normalize_received_at(envelope.received_at)
    if received_at is None:
        return Malformed(
            Problem(Reason.MALFORMED_ENVELOPE, "received_at is not YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)"),
            envelope.request_id,
            envelope.received_at,
        )
    return Accepted(envelope, received_at)


def _diagnose(raw: bytes) -> Malformed:
    """Say precisely why a value failed the typed decode, keeping what it does say."""
    value = _decode_any(raw)
    if value is None:
        return Malformed(Problem(Reason.MALFORMED_ENVELOPE, "input is not valid JSON"))
    if not isinstance(value, dict):
        return Malformed(Problem(Reason.MALFORMED_ENVELOPE, "input is not a JSON object"))
    request_id = _text(value.get("request_id"))
    received_at = _text(value.get("received_at"))
    for field in _REQUIRED:
        if not _text(value.get(field)):
            detail = f"{field} is missing, not a string, or empty"
            break
    else:
        detail = next(
            (
                f"{field} is neither a string nor null"
                for field in ("query", "authorization")
                if not isinstance(value.get(field), str | None)
            ),
            "input does not have the envelope's shape",
        )
    return Malformed(Problem(Reason.MALFORMED_ENVELOPE, detail), request_id, received_at)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _decode_any(raw: bytes) -> Any:
    """The input decoded as generic JSON, or None when it is not JSON we can decode."""
    try:
        return _ANY.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
