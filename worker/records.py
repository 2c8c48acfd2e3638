"""The records trackbridge writes (spec §14): their headers, outputs, and dead-letter and skip records.

One definition of each, used by routing, the worker's produce path, `trackbridge map` and
`trackbridge redrive`, so every tool writes and reads the same bytes.

A dead-letter or skip record carries a copy of its call's input (`InputCopy`), made once per call
by `input_copy`, that never holds a credential, whatever the input's shape:
- an input that decodes as a JSON object is kept as `envelope`, every key that is
  `authorization` in any letter case replaced by `"<redacted>"`;
- anything else (not JSON, not UTF-8, nested too deeply, a number out of range, not an object)
  is not kept in the clear at all: only its size and SHA-256;
- a copy that would make the record larger than `MAX_RECORD_BYTES` allows is cut the same way.
With a `Sealer`, the redacted values are kept sealed (`holds: credentials`), and an input not kept
in the clear is sealed whole (`holds: input`) when that fits; `trackbridge redrive` opens them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, Final, Literal

import msgspec

from mapping.reasons import Kind, Reason
from mapping.results import Problem
from topics.catalog import MAX_RECORD_BYTES
from worker.sealing import Sealed, Sealer, sealed_size

# spec §14: headers on every record. Values are UTF-8 bytes; indexes are decimal.
HEADER_SOURCE: Final = "cio-source"
HEADER_REQUEST_ID: Final = "cio-request-id"
HEADER_ITEM_INDEX: Final = "cio-item-index"
HEADER_OUTPUT_INDEX: Final = "cio-output-index"
HEADER_REASON: Final = "cio-reason"
HEADER_REDRIVES: Final = "cio-redrive-count"
"""On an input: how many times `trackbridge redrive` has sent it back; copied to its dead letters."""

REDACTED: Final = "<redacted>"
AUTHORIZATION: Final = "authorization"

RECORD_MARGIN: Final = 64 * 1024
"""What a dead-letter record keeps free, besides its input copy, for its other fields and headers."""
COPY_LIMIT: Final = MAX_RECORD_BYTES - RECORD_MARGIN
"""The largest input copy (clear or sealed) a dead-letter or skip record carries; past it, cut."""

Header = tuple[str, bytes]


class Record(msgspec.Struct, frozen=True, gc=False):
    """One Kafka record to produce. Records of one output share `key`, `value` and `headers`:
    treat them as read-only."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[Header]


Copy = Literal["redacted", "cut", "undecodable"]
"""How an input is kept in its record's `envelope`: redacted; not at all because it was too large
(cut); not at all because it was not a JSON object that could be decoded (undecodable)."""


class InputFacts(msgspec.Struct, frozen=True):
    """What a record says of its input however it was kept: its size, its SHA-256, its copy."""

    bytes: int
    sha256: str
    copy: Copy


class InputCopy(msgspec.Struct, frozen=True):
    """One call's input as its problem records carry it (computed once per call)."""

    envelope: msgspec.Raw
    """The redacted envelope as JSON, or `null` when the input is not kept in the clear."""
    input: InputFacts
    sealed: Sealed | None


class ProblemRecord(msgspec.Struct, frozen=True):
    """The value of a dead-letter (`kind` reject) or skip (`kind` skip) record (spec §14, as
    docs/MAPPING.md amends it). Every field is always written, `null` included."""

    kind: Kind
    reason: Reason
    detail: str
    request_id: str | None
    item_index: int | None
    source: str | None
    received_at: str | None
    envelope: msgspec.Raw
    input: InputFacts
    sealed: Sealed | None


# Decimal header values for the item/output indexes nearly every call uses.
INDEX_HEADERS: Final = 512
ITEM_HEADERS: Final = tuple((HEADER_ITEM_INDEX, str(index).encode()) for index in range(INDEX_HEADERS))
OUTPUT_HEADERS: Final = tuple((HEADER_OUTPUT_INDEX, str(index).encode()) for index in range(INDEX_HEADERS))
_REASON_HEADERS: Final = {reason: (HEADER_REASON, reason.value.encode()) for reason in Reason}


def redrive_count(headers: Iterable[tuple[str, bytes]] | None) -> int:
    """How many times an input was sent back (its `cio-redrive-count` header; 0 without one)."""
    for name, value in headers or ():
        if name == HEADER_REDRIVES:
            try:
                return max(0, int(value))
            except ValueError:
                return 0
    return 0


def item_header(index: int) -> Header:
    return ITEM_HEADERS[index] if index < INDEX_HEADERS else (HEADER_ITEM_INDEX, str(index).encode())


_NULL: Final = msgspec.Raw(b"null")
_ANY: Final = msgspec.json.Decoder()
_PROBLEM: Final = msgspec.json.Decoder(ProblemRecord)


def redact(raw: bytes) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The input as a JSON object with every `authorization` key (any case) redacted, and the
    redacted keys with their values; None when the input is not a JSON object that decodes."""
    try:
        if not raw.isascii():
            raw.decode("utf-8")
        value = _ANY.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    removed = {key: value[key] for key in value if key.casefold() == AUTHORIZATION}
    for key in removed:
        value[key] = REDACTED
    return value, removed


def input_copy(raw: bytes, sealer: Sealer | None = None) -> InputCopy:
    """The copy of `raw` every problem record of its call carries (see the module's docstring)."""
    digest = hashlib.sha256(raw).hexdigest()
    redacted = redact(raw)
    if redacted is not None:
        envelope, removed = redacted
        try:
            text = msgspec.json.encode(envelope)
            secrets = msgspec.json.encode(removed) if removed and sealer is not None else None
        except (RecursionError, UnicodeEncodeError, msgspec.EncodeError):
            text = None
        if text is not None and len(text) <= COPY_LIMIT:
            sealed = None if secrets is None or sealer is None else sealer.seal(secrets, "credentials")
            return InputCopy(msgspec.Raw(text), InputFacts(len(raw), digest, "redacted"), sealed)
    facts = InputFacts(len(raw), digest, "undecodable" if redacted is None else "cut")
    if sealer is not None and sealed_size(len(raw)) <= COPY_LIMIT:
        return InputCopy(_NULL, facts, sealer.seal(raw, "input"))
    return InputCopy(_NULL, facts, None)


def _facts_only(facts: InputFacts) -> InputCopy:
    """A copy that keeps nothing of the input but its size and digest (`copy: cut`)."""
    return InputCopy(_NULL, msgspec.structs.replace(facts, copy="cut"), None)


def cut(record: Record) -> Record:
    """A dead-letter or skip record with its input copy cut to the facts (size, digest), for a
    record the broker refused whole."""
    value = _PROBLEM.decode(record.value)
    smaller = _facts_only(value.input)
    value = msgspec.structs.replace(value, envelope=smaller.envelope, input=smaller.input, sealed=None)
    return Record(record.topic, record.key, msgspec.json.encode(value), record.headers)


def problem_record(
    topic: str,
    problem: Problem,
    copy: InputCopy,
    *,
    request_id: str | None = None,
    received_at: str | None = None,
    source: str | None = None,
    source_header: Header | None = None,
    request_header: Header | None = None,
    redrives: int = 0,
) -> Record:
    """The dead-letter or skip record of `problem`, written to `topic`, keyed by the request id.

    `source_header` and `request_header`, when given, are the prebuilt headers of `source` and
    `request_id` (the hot path builds them once per call).
    """
    reason = problem.reason
    value = msgspec.json.encode(
        ProblemRecord(
            kind=reason.kind,
            reason=reason,
            detail=problem.detail,
            request_id=request_id,
            item_index=problem.item_index,
            source=source,
            received_at=received_at,
            envelope=copy.envelope,
            input=copy.input,
            sealed=copy.sealed,
        )
    )
    if len(value) > COPY_LIMIT + RECORD_MARGIN // 2:  # a huge request id or detail: keep the facts only
        return problem_record(
            topic,
            Problem(reason, problem.detail[:1000], problem.item_index),
            _facts_only(copy.input),
            request_id=None if request_id is None else _shorten(request_id),
            received_at=None if received_at is None else _shorten(received_at),
            source=source,
            source_header=source_header,
            redrives=redrives,
        )
    headers = [_REASON_HEADERS[reason]]
    if source is not None:
        headers.append(source_header or (HEADER_SOURCE, source.encode()))
    if request_id is not None:
        request_header = request_header or (HEADER_REQUEST_ID, request_id.encode())
        headers.append(request_header)
    if problem.item_index is not None:
        headers.append(item_header(problem.item_index))
    if redrives:
        headers.append((HEADER_REDRIVES, str(redrives).encode()))
    return Record(topic, None if request_header is None else request_header[1], value, headers)


def _shorten(text: str, limit: int = 1024) -> str:
    return text if len(text) <= limit else text[:limit] + "...<cut>"
