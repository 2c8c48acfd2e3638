"""Every spec vector (spec §15): outputs compared as parsed JSON, in order, and the one reason."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest

from mapping import pipelines, translate
from mapping.message_id import NAMESPACE
from mapping.reasons import Reason
from mapping.results import Output, Translation
from mapping.routes import ENDPOINTS
from tests.mapping.cases import CASES, Case, settle

_BEFORE_AUTH = {
    Reason.MALFORMED_ENVELOPE,
    Reason.UNKNOWN_ENDPOINT,
    Reason.FORM_SUBMISSION_NOT_FORWARDED,
    Reason.MANUAL_SEGMENT_NOT_FORWARDED,
    Reason.CUSTOM_UNSUBSCRIBE_NOT_FORWARDED,
    Reason.NOT_A_DATA_CALL,
}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_vector(case: Case) -> None:
    translation = translate(case.raw)
    outputs, reasons = settle(translation)
    assert outputs == case.expect
    assert reasons == ([] if case.expect_reason is None else [case.expect_reason])


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_vector_translation_metadata_is_consistent(case: Case) -> None:
    """What the routing layer relies on besides the values: keys, indexes, endpoint, credentials."""
    translation = translate(case.raw)
    if any(problem.reason in _BEFORE_AUTH for problem in translation.problems):
        assert translation.credentials is None
        assert (translation.outputs, len(translation.problems)) == ([], 1)
    else:
        assert translation.endpoint in ENDPOINTS
        assert translation.credentials is not None
    if "request_id" in case.envelope and case.expect_reason != "malformed_envelope":
        assert translation.request_id == case.envelope["request_id"]
        assert translation.received_at == case.envelope["received_at"]
    for output in translation.outputs:
        _check_output(output, translation.request_id)
    _check_indexes(translation, batch=case.envelope.get("path") == "/api/v2/batch")


_CALL = msgspec.json.Decoder(pipelines.AnyCall)


def _check_output(output: Output, request_id: str | None) -> None:
    assert msgspec.json.encode(_CALL.decode(output.value)) == output.value  # the Structs are its schema
    value: dict[str, Any] = json.loads(output.value)
    assert output.type == value["type"]
    assert output.key
    assert output.key == (value.get("userId") or value.get("anonymousId") or value["groupId"])
    assert output.event == (value.get("event") if value["type"] == "track" else value.get("name"))
    identifiers = value["context"]["journeys"]["identifiers"]
    assert output.email_only == ("userId" in value and value["userId"] == identifiers.get("email"))
    derived = str(uuid.uuid5(NAMESPACE, f"{request_id}:{output.item_index}:{output.output_index}"))
    assert value["messageId"] == derived or not _is_uuid(value["messageId"])


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _check_indexes(translation: Translation, *, batch: bool) -> None:
    """Outputs are numbered per item from 0 (spec §7.5, §10); a rejected item emits nothing."""
    next_index: dict[int, int] = {}
    for output in translation.outputs:
        if not batch:
            assert output.item_index == 0
        assert output.output_index == next_index.get(output.item_index, 0)
        next_index[output.item_index] = output.output_index + 1
    assert list(next_index) == sorted(next_index)
    for problem in translation.problems:
        if not batch or problem.item_index is None:
            assert problem.item_index is None
            assert not (batch and translation.outputs)
        else:
            assert problem.item_index not in next_index
