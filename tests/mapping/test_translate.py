"""`translate` end to end: stage order, batches, and the Decisions the vectors do not pin down."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from mapping import translate
from mapping.operation import ACTIONS, DeliveryOperation, ObjectOperation, Operation, PersonOperation
from mapping.reasons import Reason
from mapping.results import Credentials, Problem
from mapping.routes import Endpoint
from tests.mapping.cases import envelope

ENTITY = ("POST", "/api/v2/entity")
BATCH = ("POST", "/api/v2/batch")


def values(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(output.value) for output in translate(raw).outputs]


def reasons(raw: bytes) -> list[Reason]:
    return [problem.reason for problem in translate(raw).problems]


def suppress(identifier: str) -> dict[str, Any]:
    return {"type": "person", "identifiers": {"id": identifier}, "action": "suppress"}


class TestStageOrder:
    def test_route_skips_come_before_authentication(self) -> None:
        translation = translate(envelope("POST", "/unsubscribe/RPIL", {}, authorization=None))
        assert translation.credentials is None
        assert translation.endpoint is Endpoint.V1_UNSUBSCRIBE
        assert reasons(envelope("POST", "/unsubscribe/RPIL", {}, authorization=None)) == [
            Reason.CUSTOM_UNSUBSCRIBE_NOT_FORWARDED
        ]

    def test_unknown_endpoints_come_before_authentication(self) -> None:
        translation = translate(envelope("PUT", "/v1/identify/42", {}, authorization="Bearer x"))
        assert (translation.endpoint, translation.credentials) == (None, None)
        assert [problem.reason for problem in translation.problems] == [Reason.UNKNOWN_ENDPOINT]

    def test_bad_credentials_stop_before_the_body(self) -> None:
        translation = translate(envelope(*BATCH, {"batch": []}, authorization=None))
        assert translation.credentials == Problem(Reason.UNAUTHORIZED, "authorization header is missing")
        assert (translation.outputs, translation.problems) == ([], [])
        assert translation.endpoint is Endpoint.V2_BATCH

    def test_parsed_credentials_are_left_to_routing(self) -> None:
        raw = envelope("PUT", "/api/v1/customers/42", {}, authorization="Basic c2l0ZTprZXk=")
        translation = translate(raw)
        assert translation.credentials == Credentials("site", "key")
        assert len(translation.outputs) == 1


class TestBatches:
    def test_a_bad_item_is_rejected_alone(self) -> None:
        translation = translate(envelope(*BATCH, {"batch": [suppress("1"), "oops", suppress("")]}))
        assert [(p.reason, p.item_index) for p in translation.problems] == [
            (Reason.INVALID_BODY, 1),
            (Reason.MISSING_IDENTIFIER, 2),
        ]
        assert [(o.item_index, o.output_index) for o in translation.outputs] == [(0, 0)]

    def test_rejecting_an_item_never_changes_the_others_message_ids(self) -> None:
        good = values(envelope(*BATCH, {"batch": [suppress("1"), suppress("2"), suppress("3")]}))
        bad = values(envelope(*BATCH, {"batch": [suppress("1"), suppress(""), suppress("3")]}))
        assert [value["messageId"] for value in bad] == [good[0]["messageId"], good[2]["messageId"]]

    def test_whole_call_problems_have_no_item_index(self) -> None:
        bodies: list[Any] = [{"batch": []}, {"batch": None}, [], {"items": []}]
        for body in bodies:
            problems = translate(envelope(*BATCH, body)).problems
            assert len(problems) == 1
            assert problems[0].item_index is None

    def test_entity_problems_are_whole_call(self) -> None:
        problems = translate(envelope(*ENTITY, suppress(""))).problems
        assert [(p.reason, p.item_index) for p in problems] == [(Reason.MISSING_IDENTIFIER, None)]


class TestDecisions:
    def test_v2_delete_device_token_falls_back_to_id(self) -> None:
        op = {"type": "person", "identifiers": {"id": "42"}, "action": "delete_device", "device": {"id": "t"}}
        assert values(envelope(*ENTITY, op))[0]["context"]["device"] == {"token": "t"}

    def test_a_body_email_that_is_not_a_string_is_an_invalid_identifier(self) -> None:
        assert reasons(envelope("PUT", "/api/v1/customers/42", {"email": 42})) == [Reason.INVALID_IDENTIFIER]

    def test_person_identifiers_with_an_anonymous_id_too_are_ambiguous(self) -> None:
        op = {
            "type": "person",
            "identifiers": {"id": "42", "anonymous_id": "a"},
            "action": "event",
            "name": "x",
        }
        assert reasons(envelope(*ENTITY, op)) == [Reason.AMBIGUOUS_IDENTIFIERS]

    def test_identify_relationships_do_not_carry_the_body_anonymous_id(self) -> None:
        related = [{"identifiers": {"object_type_id": "1", "object_id": "acme"}}]
        identify, group = values(
            envelope("PUT", "/api/v1/customers/42", {"anonymous_id": "anon", "cio_relationships": related})
        )
        assert identify["anonymousId"] == "anon"
        assert "anonymousId" not in group

    def test_a_null_device_token_gives_no_recipient(self) -> None:
        op = {
            "type": "delivery",
            "identifiers": {"id": "d"},
            "action": "event",
            "name": "opened",
            "attributes": {"device_token": None, "href": None},
        }
        assert values(envelope(*ENTITY, op))[0]["properties"] == {
            "deliveryId": "d",
            "metric": "opened",
            "href": None,
        }

    def test_huge_object_type_ids_stay_exact_integers(self) -> None:
        op = {
            "type": "object",
            "identifiers": {"object_type_id": "0" + "9" * 30, "object_id": "o"},
            "action": "delete",
        }
        assert values(envelope(*ENTITY, op))[0]["properties"]["objectTypeId"] == int("9" * 30)


class TestOutputs:
    def test_email_only_and_event_labels(self) -> None:
        raw = envelope(
            "POST", "/api/v1/customers/a%40example.com/events", {"name": " /home ", "type": "page"}
        )
        (output,) = translate(raw).outputs
        assert (output.type, output.key, output.event, output.email_only) == (
            "page",
            "a@example.com",
            "/home",
            True,
        )

    def test_groups_without_a_person_are_keyed_by_their_group_id(self) -> None:
        op = {
            "type": "object",
            "identifiers": {"object_type_id": 1, "object_id": "acme"},
            "action": "identify",
        }
        (output,) = translate(envelope(*ENTITY, op)).outputs
        assert (output.type, output.key, output.event, output.email_only) == ("group", "acme", None, False)


@pytest.mark.parametrize(
    "raw_body",
    [
        '{"name": "x", "data": {"n": 1e400}}',  # a number no float can hold
        '{"name": "x", "data": {"n": ' + "9" * 5000 + "}}",  # an integer too long to convert
        '{"name": "x", "data": ' + "[" * 900 + "]" * 900 + "}",  # nesting near the decoder's limit
    ],
)
def test_bodies_the_decoder_cannot_hold_are_rejected_not_raised(raw_body: str) -> None:
    found = reasons(envelope("POST", "/api/v1/customers/42/events", raw_body=raw_body))
    assert found in ([Reason.INVALID_BODY], [Reason.MALFORMED_ENVELOPE])


class TestOperationUnion:
    """v2 ops decode into the union tagged on `type` with a Literal `action` per type (spec §5.1)."""

    @pytest.mark.parametrize(
        ("op", "expected"),
        [
            ({"type": "person", "action": "suppress", "identifiers": {"id": "1"}}, PersonOperation),
            ({"action": "delete", "identifiers": {"object_type_id": 1}, "type": "object"}, ObjectOperation),
            ({"type": "delivery", "action": "event"}, DeliveryOperation),
        ],
    )
    def test_the_type_picks_the_struct(self, op: dict[str, Any], expected: type[Operation]) -> None:
        assert type(msgspec.json.decode(json.dumps(op), type=Operation)) is expected

    def test_the_literals_are_the_actions_of_the_spec(self) -> None:
        assert {
            "person": {
                "identify",
                "delete",
                "event",
                "screen",
                "page",
                "add_relationships",
                "delete_relationships",
                "add_device",
                "delete_device",
                "merge",
                "suppress",
                "unsuppress",
            },
            "object": {
                "identify",
                "identify_anonymous",
                "delete",
                "add_relationships",
                "delete_relationships",
            },
            "delivery": {"event"},
        } == ACTIONS

    @pytest.mark.parametrize(
        ("tags", "reason"),
        [
            ({}, Reason.INVALID_BODY),
            ({"type": 5, "action": "event"}, Reason.INVALID_BODY),
            ({"type": "group", "action": "identify"}, Reason.UNSUPPORTED_TYPE),
            ({"type": "Person", "action": "identify"}, Reason.UNSUPPORTED_TYPE),
            ({"type": "person"}, Reason.UNSUPPORTED_ACTION),
            ({"type": "person", "action": "identify_anonymous"}, Reason.UNSUPPORTED_ACTION),
            ({"type": "delivery", "action": ["event"]}, Reason.UNSUPPORTED_ACTION),
        ],
    )
    def test_refused_tags_get_the_reason_of_spec_5_1(self, tags: dict[str, Any], reason: Reason) -> None:
        op = {**tags, "identifiers": {"id": "1"}}
        assert reasons(envelope(*ENTITY, op)) == [reason]
        assert [(p.reason, p.item_index) for p in translate(envelope(*BATCH, {"batch": [op]})).problems] == [
            (reason, 0)
        ]

    def test_a_field_the_op_reads_that_cannot_be_decoded_is_an_invalid_body(self) -> None:
        raw_body = (
            '{"type": "person", "action": "event", "identifiers": {"id": "1"}, "attributes": {"n": 1e400}}'
        )
        (problem,) = translate(envelope(*ENTITY, raw_body=raw_body)).problems
        assert problem.reason is Reason.INVALID_BODY
        assert "$.attributes" in problem.detail

    def test_the_type_and_action_are_checked_before_the_fields(self) -> None:
        raw_body = '{"type": "group", "action": "identify", "attributes": {"n": 1e400}}'
        assert reasons(envelope(*ENTITY, raw_body=raw_body)) == [Reason.UNSUPPORTED_TYPE]

    def test_fields_a_type_never_reads_are_not_decoded(self) -> None:
        raw_body = (
            '{"type": "object", "action": "delete", "primary": 1e400,'
            ' "identifiers": {"object_type_id": 1, "object_id": "acme"}}'
        )
        assert [value["event"] for value in values(envelope(*ENTITY, raw_body=raw_body))] == [
            "Object Deleted"
        ]
