"""Identifiers (spec §6): values, path classification, identify collection, objects."""

from __future__ import annotations

from typing import Any

import pytest

from mapping.identity import (
    PEOPLE,
    PEOPLE_OR_ANONYMOUS,
    ObjectRef,
    Subject,
    identifier_value,
    identify_person,
    named_object,
    named_person,
    path_person,
)
from mapping.reasons import Reason
from mapping.results import Problem


def reason(value: object) -> Reason | None:
    return value.reason if isinstance(value, Problem) else None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", "42"), (42, "42"), (-7, "-7"), ("  x ", "  x "), ("A@Example.com", "A@Example.com")],
)
def test_identifier_values(value: Any, expected: str) -> None:
    assert identifier_value(value, "id") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Reason.MISSING_IDENTIFIER),
        ("", Reason.MISSING_IDENTIFIER),
        (True, Reason.INVALID_IDENTIFIER),
        (4.0, Reason.INVALID_IDENTIFIER),
        ({"id": 1}, Reason.INVALID_IDENTIFIER),
        ([1], Reason.INVALID_IDENTIFIER),
    ],
)
def test_unusable_identifier_values(value: Any, expected: Reason) -> None:
    assert reason(identifier_value(value, "id")) is expected


@pytest.mark.parametrize(
    ("segment", "identifiers", "user_id"),
    [
        ("42", {"id": "42"}, "42"),
        ("cio_a3000001", {"cio_id": "a3000001"}, "cio_a3000001"),
        ("cio_", {"id": "cio_"}, "cio_"),  # needs at least one more character
        ("a@example.com", {"email": "a@example.com"}, "a@example.com"),
        ("a+b@example.co.uk", {"email": "a+b@example.co.uk"}, "a+b@example.co.uk"),
        ("a@example", {"id": "a@example"}, "a@example"),
        ("a b@example.com", {"id": "a b@example.com"}, "a b@example.com"),
        ("a@b@example.com", {"id": "a@b@example.com"}, "a@b@example.com"),
        ("a@example.com\n", {"id": "a@example.com\n"}, "a@example.com\n"),
        ("+14155552671", {"id": "+14155552671"}, "+14155552671"),  # a phone in the path is an id
    ],
)
def test_path_identifiers_are_classified(segment: str, identifiers: dict[str, str], user_id: str) -> None:
    assert path_person(segment) == Subject(identifiers, user_id)


def test_path_identifier_problems() -> None:
    assert reason(path_person("")) is Reason.MISSING_IDENTIFIER
    assert reason(path_person(None)) is Reason.INVALID_IDENTIFIER


@pytest.mark.parametrize(
    ("path", "body", "identifiers", "user_id"),
    [  # spec §6.3's table
        ("42", {}, {"id": "42"}, "42"),
        ("cool.person@example.com", {}, {"email": "cool.person@example.com"}, "cool.person@example.com"),
        ("cool.person@example.com", {"id": "42"}, {"id": "42", "email": "cool.person@example.com"}, "42"),
        ("42", {"email": "a@example.com"}, {"id": "42", "email": "a@example.com"}, "42"),
        (
            "cio_a3000001",
            {"email": "new@example.com"},
            {"email": "new@example.com", "cio_id": "a3000001"},
            "new@example.com",
        ),
        ("42", {"id": "43"}, {"id": "42"}, "42"),
        ("42", {"email": "", "cio_id": None, "phone": "+1"}, {"id": "42"}, "42"),
    ],
)
def test_identify_collects_body_identifiers(
    path: str, body: dict[str, Any], identifiers: dict[str, str], user_id: str
) -> None:
    primary = path_person(path)
    assert isinstance(primary, Subject)
    assert identify_person(primary, body) == Subject(identifiers, user_id)


@pytest.mark.parametrize(
    ("identifiers", "allowed", "expected"),
    [
        ({"id": "1"}, PEOPLE, Subject({"id": "1"}, "1")),
        ({"phone": "+1", "id": None}, PEOPLE, Subject({"phone": "+1"}, "+1")),
        ({"anonymous_id": "a"}, PEOPLE_OR_ANONYMOUS, Subject({"anonymous_id": "a"}, anonymous_id="a")),
        ({"anonymous_id": "a"}, PEOPLE, Reason.MISSING_IDENTIFIER),
        ({}, PEOPLE, Reason.MISSING_IDENTIFIER),
        (None, PEOPLE, Reason.MISSING_IDENTIFIER),
        ({"id": "1", "email": "a@b.co"}, PEOPLE, Reason.AMBIGUOUS_IDENTIFIERS),
        ({"id": ""}, PEOPLE, Reason.MISSING_IDENTIFIER),
        ({"id": False}, PEOPLE, Reason.INVALID_IDENTIFIER),
        ("42", PEOPLE, Reason.INVALID_IDENTIFIER),
    ],
)
def test_named_people(identifiers: Any, allowed: frozenset[str], expected: Subject | Reason) -> None:
    found = named_person(identifiers, "identifiers", allowed)
    assert (reason(found) if isinstance(expected, Reason) else found) == expected


@pytest.mark.parametrize(
    ("identifiers", "expected"),
    [
        ({"object_type_id": "1", "object_id": "acme"}, ObjectRef("1", "acme")),
        ({"object_type_id": "007", "object_id": 5}, ObjectRef("7", "5")),
        ({"object_type_id": 2, "object_id": "x"}, ObjectRef("2", "x")),
        ({"cio_object_id": "obb7"}, Reason.UNRESOLVABLE_OBJECT_IDENTIFIER),
        ({"object_type_id": "1", "cio_object_id": "obb7"}, Reason.UNRESOLVABLE_OBJECT_IDENTIFIER),
        ({"object_type_id": "1"}, Reason.MISSING_IDENTIFIER),
        ({"object_id": "x"}, Reason.MISSING_IDENTIFIER),
        ({"object_type_id": "", "object_id": "x"}, Reason.MISSING_IDENTIFIER),
        ({"object_type_id": "0", "object_id": "x"}, Reason.INVALID_IDENTIFIER),
        ({"object_type_id": 0, "object_id": "x"}, Reason.INVALID_IDENTIFIER),
        ({"object_type_id": 1.5, "object_id": "x"}, Reason.INVALID_IDENTIFIER),
        ({"object_type_id": True, "object_id": "x"}, Reason.INVALID_IDENTIFIER),
        ({"object_type_id": "companies", "object_id": "x"}, Reason.INVALID_IDENTIFIER),
        ({"object_type_id": "-1", "object_id": "x"}, Reason.INVALID_IDENTIFIER),
        ({"object_type_id": "1", "object_id": True}, Reason.INVALID_IDENTIFIER),
        ([], Reason.INVALID_IDENTIFIER),
    ],
)
def test_named_objects(identifiers: Any, expected: ObjectRef | Reason) -> None:
    found = named_object(identifiers, "identifiers")
    assert (reason(found) if isinstance(expected, Reason) else found) == expected
