"""Reason codes (spec §13): the one place they are defined, for the mapping and the worker.

Codes are stable, lowercase snake_case and never renamed. Each has a kind: a *reject*
becomes a dead-letter record, a *skip* a skip record (deliberately not forwarded).
"""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    REJECT = "reject"
    SKIP = "skip"


class Reason(enum.StrEnum):
    """Why a call or batch item produced no outputs (spec §13)."""

    MALFORMED_ENVELOPE = "malformed_envelope"
    UNAUTHORIZED = "unauthorized"
    UNKNOWN_ENDPOINT = "unknown_endpoint"
    INVALID_BODY = "invalid_body"
    MISSING_IDENTIFIER = "missing_identifier"
    INVALID_IDENTIFIER = "invalid_identifier"
    AMBIGUOUS_IDENTIFIERS = "ambiguous_identifiers"
    UNRESOLVABLE_OBJECT_IDENTIFIER = "unresolvable_object_identifier"
    UNSUPPORTED_TYPE = "unsupported_type"
    UNSUPPORTED_ACTION = "unsupported_action"
    MISSING_EVENT_NAME = "missing_event_name"
    INVALID_TIMESTAMP = "invalid_timestamp"
    ID_TOO_LONG = "id_too_long"
    EVENT_NAME_TOO_LONG = "event_name_too_long"
    EVENT_DATA_TOO_LARGE = "event_data_too_large"
    TOO_MANY_ATTRIBUTES = "too_many_attributes"
    ATTRIBUTE_NAME_TOO_LONG = "attribute_name_too_long"
    ATTRIBUTE_VALUE_TOO_LONG = "attribute_value_too_long"
    OBJECT_ATTRIBUTES_TOO_LARGE = "object_attributes_too_large"
    ENTITY_TOO_LARGE = "entity_too_large"
    BATCH_TOO_LARGE = "batch_too_large"
    # Never produced by the mapping itself: the worker (worker/runtime/pipeline.py) writes a call under
    # this code to the dead-letter topic when translating or routing it raised, i.e. on a bug,
    # since both promise never to raise. The input is kept and its partition goes on.
    INTERNAL_ERROR = "internal_error"
    # Never produced by the mapping either: the broker refused one of the call's output records
    # for good (too large, invalid); the worker dead-letters the call and goes on with the batch.
    OUTPUT_REFUSED = "output_refused"
    FORM_SUBMISSION_NOT_FORWARDED = "form_submission_not_forwarded"
    MANUAL_SEGMENT_NOT_FORWARDED = "manual_segment_not_forwarded"
    CUSTOM_UNSUBSCRIBE_NOT_FORWARDED = "custom_unsubscribe_not_forwarded"
    NOT_A_DATA_CALL = "not_a_data_call"
    NO_IDENTITY = "no_identity"
    EMPTY_BATCH = "empty_batch"
    EMPTY_RELATIONSHIPS = "empty_relationships"

    @property
    def kind(self) -> Kind:
        return Kind.SKIP if self in _SKIPS else Kind.REJECT


_SKIPS = frozenset(
    {
        Reason.FORM_SUBMISSION_NOT_FORWARDED,
        Reason.MANUAL_SEGMENT_NOT_FORWARDED,
        Reason.CUSTOM_UNSUBSCRIBE_NOT_FORWARDED,
        Reason.NOT_A_DATA_CALL,
        Reason.NO_IDENTITY,
        Reason.EMPTY_BATCH,
        Reason.EMPTY_RELATIONSHIPS,
    }
)
