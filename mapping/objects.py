"""v2 `object` operations (spec §5.3): object groups, Object Deleted, and objects' relationships."""

from __future__ import annotations

from typing import Any

from mapping import limits, pipelines, relationships
from mapping.identity import ONLY_ANONYMOUS, PEOPLE, ObjectRef, Subject, named_object
from mapping.operation import ObjectOperation
from mapping.results import Problem, Result
from mapping.shapes import optional_object
from mapping.timestamps import time_field


def object_operation(stamp: pipelines.Stamp, op: ObjectOperation, within: int) -> Result:
    """Translate one object operation; `within` is its raw size."""
    action = op.action
    if action == "delete":
        return _delete(stamp, op)
    if action in ("identify", "identify_anonymous"):
        return _identify(stamp, op, anonymous=action == "identify_anonymous", within=within)
    return _relate(stamp, op, delete=action == "delete_relationships", within=within)


def _named(stamp: pipelines.Stamp, op: ObjectOperation) -> tuple[ObjectRef, pipelines.Stamp] | Problem:
    """The object the op names, its id's length, and the op's time (spec §6.4, §12, §5)."""
    obj = named_object(op.identifiers, "identifiers")
    if type(obj) is Problem:
        return obj
    problem = limits.check_id(obj.object_id, "object_id")
    if problem is not None:
        return problem
    when = time_field(op.timestamp, "timestamp")
    if type(when) is Problem:
        return when
    return obj, stamp.at(when)


def _identify(stamp: pipelines.Stamp, op: ObjectOperation, *, anonymous: bool, within: int) -> Result:
    """A `group` without a person for the object itself, then one per person related to it."""
    attributes = optional_object(op.attributes, "attributes")
    if type(attributes) is Problem:
        return attributes
    related = relationships.read_relationships(op.cio_relationships, required=False, v1_form=False)
    if type(related) is Problem:
        return related
    named = _named(stamp, op)
    if type(named) is Problem:
        return named
    obj, stamp = named
    problem = limits.check_attributes(attributes, within, "attributes", total=True)
    if problem is not None:
        return problem
    if anonymous and op.anonymous_id is not None and op.anonymous_id != "":
        # Decision (spec §5.3): the reference's top-level anonymous_id is one more entry, first.
        entries: list[Any] = [{"identifiers": {"anonymous_id": op.anonymous_id}}, *related.entries]
        related = relationships.Relationships(entries)
    people = ONLY_ANONYMOUS if anonymous else PEOPLE
    related_calls = relationships.with_people(stamp, obj, related, people, within=within, start=1)
    if type(related_calls) is Problem:
        return related_calls
    # spec §7.3: the type id overwrites an attribute of the same name.
    traits = attributes | {"objectTypeId": obj.type_id}
    return [pipelines.group(stamp, 0, Subject(obj.identifiers), obj.object_id, traits), *related_calls]


def _delete(stamp: pipelines.Stamp, op: ObjectOperation) -> Result:
    """`Object Deleted`, identified by the object id so it shares the object's record key (§14)."""
    named = _named(stamp, op)
    if type(named) is Problem:
        return named
    obj, stamp = named
    who = Subject(obj.identifiers, anonymous_id=obj.object_id)
    properties = {"objectId": obj.object_id, "objectTypeId": relationships.object_type_number(obj)}
    return [pipelines.track(stamp, 0, who, "Object Deleted", properties)]


def _relate(stamp: pipelines.Stamp, op: ObjectOperation, *, delete: bool, within: int) -> Result:
    """`add_relationships` / `delete_relationships` from an object to people (spec §5.3)."""
    related = relationships.read_relationships(op.cio_relationships, required=True, v1_form=False)
    if type(related) is Problem:
        return related
    named = _named(stamp, op)
    if type(named) is Problem:
        return named
    obj, stamp = named
    related = relationships.changed(related, delete=delete)
    if type(related) is Problem:
        return related
    return relationships.with_people(stamp, obj, related, PEOPLE, within=within, start=0)
