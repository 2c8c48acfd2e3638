"""The records trackbridge writes (spec §14): their headers, outputs, and dead-letter and skip records.

One definition of each, used by routing, the worker's internal-error path and `trackbridge map`,
so every tool writes and reads the same bytes. A dead-letter or skip record carries the call's
envelope as `mapping.redacted_envelope` gives it.
"""

from __future__ import annotations

from typing import Final

import msgspec

from mapping import redacted_envelope
from mapping.reasons import Kind, Reason
from mapping.results import Problem

# spec §14: headers on every record. Values are UTF-8 bytes; indexes are decimal.
HEADER_SOURCE: Final = "cio-source"
HEADER_REQUEST_ID: Final = "cio-request-id"
HEADER_ITEM_INDEX: Final = "cio-item-index"
HEADER_OUTPUT_INDEX: Final = "cio-output-index"
HEADER_REASON: Final = "cio-reason"

Header = tuple[str, bytes]


class Record(msgspec.Struct, frozen=True, gc=False):
    """One Kafka record to produce. Records of one output share `key`, `value` and `headers`:
    treat them as read-only."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[Header]


class ProblemRecord(msgspec.Struct, frozen=True):
    """The value of a dead-letter (`kind` reject) or skip (`kind` skip) record, spec §14.

    Every field is always written, `null` included. `envelope` is the input envelope with
    `authorization` redacted (`{"raw": ...}` when the input was not a JSON object).
    """

    kind: Kind
    reason: Reason
    detail: str
    request_id: str | None
    item_index: int | None
    source: str | None
    received_at: str | None
    envelope: msgspec.Raw


# Decimal header values for the item/output indexes nearly every call uses.
INDEX_HEADERS: Final = 512
ITEM_HEADERS: Final = tuple((HEADER_ITEM_INDEX, str(index).encode()) for index in range(INDEX_HEADERS))
OUTPUT_HEADERS: Final = tuple((HEADER_OUTPUT_INDEX, str(index).encode()) for index in range(INDEX_HEADERS))
_REASON_HEADERS: Final = {reason: (HEADER_REASON, reason.value.encode()) for reason in Reason}


def item_header(index: int) -> Header:
    return ITEM_HEADERS[index] if index < INDEX_HEADERS else (HEADER_ITEM_INDEX, str(index).encode())


def envelope_copy(raw: bytes) -> msgspec.Raw:
    """The call's envelope for its problem records, encoded once however many items it settles."""
    return msgspec.Raw(msgspec.json.encode(redacted_envelope(raw)))


def problem_record(
    topic: str,
    problem: Problem,
    envelope: msgspec.Raw,
    *,
    request_id: str | None = None,
    received_at: str | None = None,
    source: str | None = None,
    source_header: Header | None = None,
    request_header: Header | None = None,
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
            envelope=envelope,
        )
    )
    headers = [_REASON_HEADERS[reason]]
    if source is not None:
        headers.append(source_header or (HEADER_SOURCE, source.encode()))
    if request_id is not None:
        request_header = request_header or (HEADER_REQUEST_ID, request_id.encode())
        headers.append(request_header)
    if problem.item_index is not None:
        headers.append(item_header(problem.item_index))
    return Record(topic, None if request_header is None else request_header[1], value, headers)
