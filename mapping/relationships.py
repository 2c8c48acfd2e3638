"""Relationships between people and objects (spec §7): reading `cio_relationships`, and their outputs.

An added relationship becomes a `group` call; a removed one the semantic `track`
"Relationship Deleted" (spec §7.4). Both carry the person's identity and the object's type id.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mapping import limits, pipelines
from mapping.identity import ObjectRef, Subject, check_person_ids, named_object, named_person
from mapping.reasons import Reason
from mapping.results import Output, Problem, Result
from mapping.shapes import json_type, optional_object

_ACTIONS: dict[str | None, bool] = {None: False, "add_relationships": False, "delete_relationships": True}


class Entry(msgspec.Struct, frozen=True, gc=False):
    """One `cio_relationships` entry: its raw `identifiers` object and its attributes."""

    identifiers: dict[str, Any]
    attributes: dict[str, Any]


class Relationships(msgspec.Struct, frozen=True, gc=False):
    """The entries of a `cio_relationships` value; `delete` when they are being removed."""

    entries: list[Any]
    delete: bool = False


def read_relationships(value: Any, *, required: bool, v1_form: bool) -> Relationships | Problem:
    """Read a `cio_relationships` value (spec §5.2, §5.3, §7.1).

    An array is a list to add. With `v1_form` (v1 identify, v2 person identify) the v1 object
    `{"action", "relationships"}` is accepted too: `action` null/absent means add, and
    `relationships` null/absent means empty. Unless `required`, null/absent means no
    relationships. Any other shape is `invalid_body`.
    """
    if isinstance(value, list):
        return Relationships(value)
    if value is None and not required:
        return Relationships([])
    if v1_form and isinstance(value, dict):
        action = value.get("action")
        delete = _ACTIONS.get(action) if action is None or isinstance(action, str) else None
        if delete is None:
            return Problem(Reason.INVALID_BODY, "cio_relationships.action is not add/delete_relationships")
        entries = value.get("relationships")
        if entries is None:
            return Relationships([], delete)
        if isinstance(entries, list):
            return Relationships(entries, delete)
        return Problem(Reason.INVALID_BODY, f"cio_relationships.relationships is {json_type(entries)}")
    return Problem(Reason.INVALID_BODY, f"cio_relationships is {json_type(value)}, not an array")


def changed(related: Relationships, *, delete: bool) -> Relationships | Problem:
    """The entries an `add_relationships` / `delete_relationships` op changes. None at all is the
    `empty_relationships` skip, decided after the op's other checks (docs/decisions.md, decision 9)."""
    if not related.entries:
        return Problem(Reason.EMPTY_RELATIONSHIPS, "cio_relationships is empty")
    return Relationships(related.entries, delete)


def read_entry(entry: Any, where: str) -> Entry | Problem:
    """One entry's shape (spec §7.1): an object with an `identifiers` object and optional attributes."""
    if not isinstance(entry, dict):
        return Problem(Reason.INVALID_BODY, f"{where} is {json_type(entry)}, not an object")
    identifiers = entry.get("identifiers")
    if not isinstance(identifiers, dict):
        return Problem(Reason.INVALID_BODY, f"{where}.identifiers is missing or not an object")
    attributes = optional_object(entry.get("relationship_attributes"), f"{where}.relationship_attributes")
    if type(attributes) is Problem:
        return attributes
    return Entry(identifiers, attributes)


def relationship_call(
    stamp: pipelines.Stamp,
    index: int,
    person: Subject,
    obj: ObjectRef,
    attributes: dict[str, Any],
    *,
    delete: bool,
) -> Output:
    """The output for one relationship between a person and an object (spec §7.2, §7.4)."""
    who = Subject(
        obj.identifiers | person.identifiers,
        user_id=person.user_id,
        anonymous_id=person.anonymous_id,
    )
    if delete:
        properties = {"objectId": obj.object_id, "objectTypeId": object_type_number(obj)}
        return pipelines.track(stamp, index, who, "Relationship Deleted", properties)
    traits: dict[str, Any] = {"objectTypeId": obj.type_id}
    if attributes:
        traits["relationshipAttributes"] = attributes
    return pipelines.group(stamp, index, who, obj.object_id, traits)


def object_type_number(obj: ObjectRef) -> msgspec.Raw:
    """The semantic events' integer `objectTypeId` (spec §8.2), written as the canonical digits."""
    return msgspec.Raw(obj.type_id.encode())


def with_objects(
    stamp: pipelines.Stamp, person: Subject, relationships: Relationships, *, within: int, start: int
) -> Result:
    """A person's relationships to the objects its entries name, numbered from output `start`.

    Every entry is checked before any output is built.
    """
    if not relationships.entries:
        return []
    related: list[tuple[ObjectRef, dict[str, Any]]] = []
    for position, raw in enumerate(relationships.entries):
        where = f"cio_relationships[{position}]"
        entry = read_entry(raw, where)
        if type(entry) is Problem:
            return entry
        obj = named_object(entry.identifiers, f"{where}.identifiers")
        if type(obj) is Problem:
            return obj
        problem = limits.check_id(obj.object_id, f"{where} object_id") or limits.check_attributes(
            entry.attributes, within, f"{where}.relationship_attributes", total=True
        )
        if problem is not None:
            return problem
        related.append((obj, entry.attributes))
    delete = relationships.delete
    return [
        relationship_call(stamp, start + n, person, obj, attributes, delete=delete)
        for n, (obj, attributes) in enumerate(related)
    ]


def with_people(
    stamp: pipelines.Stamp,
    obj: ObjectRef,
    relationships: Relationships,
    allowed: frozenset[str],
    *,
    within: int,
    start: int,
) -> Result:
    """An object's relationships to the people its entries name (`allowed` identifier kinds).

    Every entry is checked before any output is built.
    """
    if not relationships.entries:
        return []
    related: list[tuple[Subject, dict[str, Any]]] = []
    for position, raw in enumerate(relationships.entries):
        where = f"cio_relationships[{position}]"
        entry = read_entry(raw, where)
        if type(entry) is Problem:
            return entry
        person = named_person(entry.identifiers, f"{where}.identifiers", allowed)
        if type(person) is Problem:
            return person
        problem = check_person_ids(person, where) or limits.check_attributes(
            entry.attributes, within, f"{where}.relationship_attributes", total=True
        )
        if problem is not None:
            return problem
        related.append((person, entry.attributes))
    delete = relationships.delete
    return [
        relationship_call(stamp, start + n, person, obj, attributes, delete=delete)
        for n, (person, attributes) in enumerate(related)
    ]
