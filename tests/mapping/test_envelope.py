"""The envelope (spec §1): what makes it malformed, and its redacted copy for records (spec §14)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mapping import translate
from mapping.reasons import Reason

VALID: dict[str, Any] = {
    "method": "PUT",
    "path": "/api/v1/customers/42",
    "query": None,
    "authorization": "Basic c2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0",
    "body": {"plan": "pro"},
    "received_at": "2024-05-01T10:00:00Z",
    "request_id": "req-1",
}


def changed(**fields: Any) -> bytes:
    value = {**VALID, **fields}
    return json.dumps({key: item for key, item in value.items() if item is not ...}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"this is not json",
        b"[1, 2, 3]",
        b'"text"',
        b"null",
        b'{"method": "PUT",',
        changed(method=...),
        changed(path=...),
        changed(received_at=...),
        changed(request_id=...),
        changed(method=""),
        changed(request_id=""),
        changed(path=42),
        changed(request_id=None),
        changed(query=5),
        changed(authorization=["Basic x"]),
        changed(received_at="2024-05-01T10:00:00"),
        changed(received_at="yesterday"),
        json.dumps(VALID).encode()[:-1] + b', "x": "\xff"}',  # not UTF-8
        b'{"method": "PUT", "body": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_malformed_envelopes(raw: bytes) -> None:
    translation = translate(raw)
    assert [problem.reason for problem in translation.problems] == [Reason.MALFORMED_ENVELOPE]
    assert (translation.outputs, translation.endpoint, translation.credentials) == ([], None, None)


def test_optional_fields_and_unknown_keys() -> None:
    translation = translate(
        changed(query=..., authorization="Basic c2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0", extra=1)
    )
    assert translation.problems == []
    body_absent = translate(changed(body=...))  # an absent body is null: {} for identify
    assert json.loads(body_absent.outputs[0].value)["traits"] == {}


def test_a_malformed_object_envelope_keeps_its_request_id() -> None:
    translation = translate(changed(received_at="2024-05-01T10:00:00", request_id="req-9"))
    assert (translation.request_id, translation.received_at) == ("req-9", "2024-05-01T10:00:00")
    assert translate(changed(method=...)).request_id == "req-1"
    assert translate(b"[1]").request_id is None


def test_request_id_and_received_at_are_the_envelope_values() -> None:
    translation = translate(changed(received_at="2024-05-01T12:00:00.250+02:00"))
    assert (translation.request_id, translation.received_at) == ("req-1", "2024-05-01T12:00:00.250+02:00")
    assert json.loads(translation.outputs[0].value)["receivedAt"] == "2024-05-01T10:00:00.250Z"
