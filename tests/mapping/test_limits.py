"""Size limits (spec §12): each limit at its boundary and one past it, and the exact measure."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapping import limits, translate
from tests.mapping.cases import compact_size, envelope, settle

IDENTIFY = ("PUT", "/api/v1/customers/42")
ENTITY = ("POST", "/api/v2/entity")
EVENT = ("POST", "/api/v1/customers/42/events")


def reasons(raw: bytes) -> list[str]:
    return settle(translate(raw))[1]


def outcome(raw: bytes) -> str:
    """`ok` when the call produced outputs and no problem, else its one reason."""
    outputs, found = settle(translate(raw))
    if not found:
        assert outputs
        return "ok"
    assert len(found) == 1
    return found[0]


def person_event(name: str, attributes: Any) -> dict[str, Any]:
    return {
        "type": "person",
        "identifiers": {"id": "42"},
        "action": "event",
        "name": name,
        "attributes": attributes,
    }


def blob_of(size: int, wrap: Any) -> Any:
    """`wrap(text)` whose compact size is exactly `size`, grown with ASCII text."""
    base = compact_size(wrap(""))
    return wrap("x" * (size - base))


@pytest.mark.parametrize(("size", "expected"), [(150, "ok"), (151, "id_too_long")])
def test_path_identifier(size: int, expected: str) -> None:
    identifier = "é" * 75 + "a" * (size - 150)  # bytes, not characters
    assert outcome(envelope("PUT", f"/api/v1/customers/{identifier}", {})) == expected


@pytest.mark.parametrize(("size", "expected"), [(150, "ok"), (151, "id_too_long")])
def test_identifiers_from_bodies_and_objects(size: int, expected: str) -> None:
    email = "e" * (size - len("@example.com")) + "@example.com"
    assert outcome(envelope(*IDENTIFY, {"email": email})) == expected
    assert (
        outcome(envelope(*ENTITY, {"type": "person", "identifiers": {"email": email}, "action": "delete"}))
        == expected
    )
    obj = {
        "type": "object",
        "identifiers": {"object_type_id": 1, "object_id": "o" * size},
        "action": "delete",
    }
    assert outcome(envelope(*ENTITY, obj)) == expected
    merge = {"primary": {"id": "1"}, "secondary": {"cio_id": "c" * size}}
    assert outcome(envelope("POST", "/api/v1/merge_customers", merge)) == expected


@pytest.mark.parametrize(("size", "expected"), [(150, "ok"), (151, "attribute_name_too_long")])
def test_attribute_name(size: int, expected: str) -> None:
    assert outcome(envelope(*IDENTIFY, {"ü" * 75 + "n" * (size - 150): 1})) == expected


@pytest.mark.parametrize(("size", "expected"), [(1000, "ok"), (1001, "attribute_value_too_long")])
def test_attribute_value_string_is_measured_without_quotes(size: int, expected: str) -> None:
    assert outcome(envelope(*IDENTIFY, {"bio": "€" * 333 + "b" * (size - 999)})) == expected


@pytest.mark.parametrize(("size", "expected"), [(1000, "ok"), (1001, "attribute_value_too_long")])
def test_attribute_value_other_json_is_measured_compact(size: int, expected: str) -> None:
    value = blob_of(size, lambda text: {"nested": [text, 1.5, None]})
    assert outcome(envelope(*IDENTIFY, {"profile": value})) == expected
    obj = {"type": "object", "identifiers": {"object_type_id": 1, "object_id": "o"}, "action": "identify"}
    assert outcome(envelope(*ENTITY, {**obj, "attributes": {"profile": value}})) == expected


def test_floats_are_measured_as_json_dumps_prints_them() -> None:
    # msgspec prints 1e16 in 4 bytes, json.dumps in 5 ("1e+16"): the spec's measure is the latter.
    floats = [1e16] * 166  # 6 * 166 + 1 = 997 bytes
    value = [*floats, "a"]
    assert compact_size(value) == 1001
    assert len(msgspec.json.encode(value)) < 1000
    assert outcome(envelope(*IDENTIFY, {"scores": value})) == "attribute_value_too_long"
    assert outcome(envelope(*IDENTIFY, {"scores": [*floats[:-1], "a"]})) == "ok"


@pytest.mark.parametrize(("count", "expected"), [(300, "ok"), (301, "too_many_attributes")])
def test_attribute_count_of_relationship_attributes(count: int, expected: str) -> None:
    related = [
        {
            "identifiers": {"object_type_id": "1", "object_id": "a"},
            "relationship_attributes": {f"r{i}": i for i in range(count)},
        }
    ]
    body = {
        "type": "person",
        "identifiers": {"id": "42"},
        "action": "add_relationships",
        "cio_relationships": related,
    }
    assert outcome(envelope(*ENTITY, body)) == expected


@pytest.mark.parametrize(("size", "expected"), [(102_400, "ok"), (102_401, "object_attributes_too_large")])
def test_relationship_attributes_total(size: int, expected: str) -> None:
    # Only v1 bodies can carry this much: a v2 operation stops at 32,768 bytes (entity_too_large).
    attributes = _exact({f"a{i}": "v" * 900 for i in range(110)}, size)
    related = [
        {"identifiers": {"object_type_id": "1", "object_id": "a"}, "relationship_attributes": attributes}
    ]
    assert outcome(envelope(*IDENTIFY, {"cio_relationships": related})) == expected


def _exact(attributes: dict[str, str], size: int) -> dict[str, str]:
    """Grow the values (each staying at most 1000 bytes) until the map is exactly `size` bytes compact."""
    attributes = dict(attributes)
    missing = size - compact_size(attributes)
    for name in list(attributes):
        grow = min(missing, 1000 - len(attributes[name]))
        attributes[name] += "z" * grow
        missing -= grow
        if not missing:
            break
    assert compact_size(attributes) == size
    return attributes


@pytest.mark.parametrize(
    ("kind", "size", "expected"),
    [
        ("event", 100, "ok"),
        ("event", 101, "event_name_too_long"),
        ("screen", 100, "ok"),
        ("screen", 101, "event_name_too_long"),
        ("page", 101, "ok"),  # page names are exempt (Decision, spec §12)
        ("page", 5000, "ok"),
    ],
)
def test_event_name(kind: str, size: int, expected: str) -> None:
    name = "ñ" * 50 + "n" * (size - 100)
    assert outcome(envelope(*EVENT, {"name": f"  {name}  ", "type": kind})) == expected


@pytest.mark.parametrize(("size", "expected"), [(100_000, "ok"), (100_001, "event_data_too_large")])
def test_event_data(size: int, expected: str) -> None:
    data = blob_of(size, lambda text: {"blob": text})
    assert outcome(envelope(*EVENT, {"name": "big", "data": data})) == expected


def test_event_data_is_measured_compact_not_as_received() -> None:
    # 25,000 four-byte tokens `1e15` print as eighteen bytes each: 475,001 bytes compact.
    tokens = ",".join(["1e15"] * 25_000)
    raw = envelope(*EVENT, raw_body='{"name": "x", "data": {"v": [' + tokens + "]}}")
    assert reasons(raw) == ["event_data_too_large"]
    # Pretty-printed JSON is measured without its whitespace.
    spaced = json.dumps({"name": "x", "data": {"blob": "x" * 90_000}}, indent=40000)
    assert reasons(envelope(*EVENT, raw_body=spaced)) == []


@pytest.mark.parametrize(("size", "expected"), [(32_768, "ok"), (32_769, "entity_too_large")])
def test_entity(size: int, expected: str) -> None:
    body = blob_of(size, lambda text: person_event("big", {"blob": text}))
    assert outcome(envelope(*ENTITY, body)) == expected


@pytest.mark.parametrize(("size", "expected"), [(32_768, "ok"), (32_769, "entity_too_large")])
def test_batch_item(size: int, expected: str) -> None:
    item = blob_of(size, lambda text: person_event("big", {"blob": text}))
    translation = translate(envelope("POST", "/api/v2/batch", {"batch": [item, person_event("small", {})]}))
    assert [(p.reason.value, p.item_index) for p in translation.problems] == (
        [] if expected == "ok" else [(expected, 0)]
    )
    assert [output.item_index for output in translation.outputs] == ([0, 1] if expected == "ok" else [1])


@pytest.mark.parametrize(("size", "expected"), [(512_000, "ok"), (512_001, "batch_too_large")])
def test_batch(size: int, expected: str) -> None:
    items = [person_event("chunk", {"blob": "q" * 31_000}) for _ in range(16)]

    def wrap(text: str) -> dict[str, Any]:
        return {"batch": [*items, person_event("last", {"blob": text})]}

    body = blob_of(size, wrap)
    translation = translate(envelope("POST", "/api/v2/batch", body))
    assert [p.reason.value for p in translation.problems] == ([] if expected == "ok" else [expected])
    assert len(translation.outputs) == (17 if expected == "ok" else 0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
@settings(deadline=None, max_examples=300)
def test_the_bounds_hold(value: Any) -> None:
    size = limits.json_size(value)
    assert size == compact_size(value)
    assert size * 4 <= len(msgspec.json.encode(value)) * 5
    assert size <= len(json.dumps(value, indent=2).encode()) * limits.EXPANSION
    assert limits._walked_size(value) == size


def test_values_nested_past_the_recursion_limit_are_measured() -> None:
    value: Any = []
    for _ in range(5000):
        value = [value]
    assert limits.json_size(value) == 10_002
