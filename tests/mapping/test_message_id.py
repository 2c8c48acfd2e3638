"""Deterministic messageIds (spec §10): exactly uuid5, computed without `uuid.UUID`."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.message_id import NAMESPACE, item_key, message_id, message_id_for


def test_namespace_is_derived_as_the_spec_says() -> None:
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:journeys-track-bridge:message-id") == NAMESPACE


def test_documented_example() -> None:
    # spec §16: identify_email_only_path_doc_example
    expected = "911fcc11-8140-5d12-8293-5f096323a3c1"
    assert message_id("req-identify_email_only_path_doc_example", 0, 0) == expected


@given(st.text(), st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10_000))
@settings(deadline=None, max_examples=500)
def test_equals_uuid5(request_id: str, item_index: int, output_index: int) -> None:
    expected = str(uuid.uuid5(NAMESPACE, f"{request_id}:{item_index}:{output_index}"))
    assert message_id(request_id, item_index, output_index) == expected
    assert message_id_for(item_key(request_id, item_index), output_index) == expected
