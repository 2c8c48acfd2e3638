"""Track v2 (spec §5): `/api/v2/entity`, `/api/v2/batch` splitting, and the person operations.

Each operation decodes into the tagged union of `mapping.operation` and is dispatched on its type
and action (§5.1); object operations live in `mapping.objects`, delivery metrics in
`mapping.delivery`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mapping import delivery, devices, events, limits, merge, objects, pipelines, relationships
from mapping.events import EventKind
from mapping.identify import identify
from mapping.identity import PEOPLE, PEOPLE_OR_ANONYMOUS, Subject, check_person_ids, named_person
from mapping.operation import Batch, ObjectOperation, Operation, PersonOperation, Tags, operation_problem
from mapping.reasons import Reason
from mapping.results import Problem, Result
from mapping.shapes import decode_body, optional_object
from mapping.timestamps import time_field

_OPERATION = msgspec.json.Decoder(Operation)
_TAGS = msgspec.json.Decoder(Tags)
_BATCH = msgspec.json.Decoder(Batch)
_ANY = msgspec.json.Decoder()

_ENTITY_SHAPE = "body is not a JSON object"
_ELEMENT_SHAPE = "batch element is not a JSON object"

_EVENT_KINDS: dict[str, EventKind] = {"event": "track", "page": "page", "screen": "screen"}
_PERSON_EVENTS = {"delete": "User Deleted", "suppress": "User Suppressed", "unsuppress": "User Unsuppressed"}


def entity(stamp: pipelines.Stamp, raw: msgspec.Raw) -> Result:
    """`/api/v2/entity` (spec §5.5): an object, at most 32,768 bytes, then one operation."""
    read = _read(raw, _ENTITY_SHAPE)
    if type(read) is Problem:
        return read
    if len(raw) * limits.EXPANSION > limits.ENTITY_BYTES:  # spec §12: a cheap bound first
        problem = _too_large(raw, limits.ENTITY_BYTES, Reason.ENTITY_TOO_LARGE, "body")
        if problem is not None:
            return problem
    if type(read) is Tags:
        return _refused(raw, read, _ENTITY_SHAPE)
    return operation(stamp, read, len(raw))


def batch(request_id: str, received_at: str, raw: msgspec.Raw) -> list[Result] | Problem:
    """`/api/v2/batch` (spec §5.5): each element's result, in order, or the whole call's Problem.

    The wrapper must be an object with a `batch` array of at most 512,000 bytes, and not empty
    (`empty_batch` skip). Each element is then measured (32,768 bytes) and translated on its own,
    with its position as its item index.
    """
    body = decode_body(_BATCH, raw, "body is not an object with a batch array")
    if type(body) is Problem:
        return body
    if len(raw) * limits.EXPANSION > limits.BATCH_BYTES:
        problem = _too_large(raw, limits.BATCH_BYTES, Reason.BATCH_TOO_LARGE, "batch body")
        if problem is not None:
            return problem
    if not body.batch:
        return Problem(Reason.EMPTY_BATCH, "batch is empty")
    return [
        _batch_item(pipelines.item_stamp(request_id, index, received_at), index, item)
        for index, item in enumerate(body.batch)
    ]


def _batch_item(stamp: pipelines.Stamp, index: int, raw: msgspec.Raw) -> Result:
    if len(raw) * limits.EXPANSION > limits.ENTITY_BYTES:
        problem = _too_large(raw, limits.ENTITY_BYTES, Reason.ENTITY_TOO_LARGE, f"batch[{index}]")
        if problem is not None:
            return problem
    read = _read(raw, _ELEMENT_SHAPE)
    if type(read) is Problem:
        return read
    if type(read) is Tags:
        return _refused(raw, read, _ELEMENT_SHAPE)
    return operation(stamp, read, len(raw))


def _read(raw: msgspec.Raw, what: str) -> Operation | Tags | Problem:
    """The operation; when the union does not accept it, its tags (for `_refused`), or the
    `invalid_body` of a value that is not an object or is nested too deeply."""
    try:
        op: Operation = _OPERATION.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return decode_body(_TAGS, raw, what)
    return op


def _refused(raw: msgspec.Raw, tags: Tags, what: str) -> Problem:
    """Why an object the union did not accept is refused: its type or action (spec §5.1), else
    one of its fields, which cannot be decoded (`invalid_body`)."""
    problem = operation_problem(tags)
    if problem is not None:
        return problem
    undecodable = decode_body(_OPERATION, raw, what)
    assert type(undecodable) is Problem  # it has just failed to decode
    return undecodable


def _too_large(raw: msgspec.Raw, limit: int, reason: Reason, what: str) -> Problem | None:
    """A Problem when raw JSON's exact compact size (spec §12) exceeds `limit`."""
    value = decode_body(_ANY, raw, f"{what} cannot be measured")
    if type(value) is Problem:
        return value
    size = limits.json_size(value)
    if size > limit:
        return Problem(reason, f"{what} is {size} bytes; limit {limit}")
    return None


def operation(stamp: pipelines.Stamp, op: Operation, within: int) -> Result:
    """Translate one v2 operation by its type (spec §5.2-§5.4); `within` is its raw size."""
    try:
        if type(op) is PersonOperation:
            return _person_operation(stamp, op, within)
        if type(op) is ObjectOperation:
            return objects.object_operation(stamp, op, within)
        return delivery.v2_delivery(stamp, op.identifiers, op.name, op.attributes, op.timestamp)
    except RecursionError:
        return pipelines.NESTED_TOO_DEEPLY


def _person_operation(stamp: pipelines.Stamp, op: PersonOperation, within: int) -> Result:
    """The person actions (spec §5.2)."""
    action = op.action
    if action == "merge":
        return merge.merge(stamp, op.primary, op.secondary, timestamp=op.timestamp)
    if action == "identify":
        return _identify(stamp, op, within)
    kind = _EVENT_KINDS.get(action)
    if kind is not None:
        properties = optional_object(op.attributes, "attributes")
        if type(properties) is Problem:
            return properties
        who = _person(op, PEOPLE_OR_ANONYMOUS)
        if type(who) is Problem:
            return who
        return events.event(
            stamp, who, kind, op.name, properties, sent_id=op.id, timestamp=op.timestamp, within=within
        )
    if action in ("add_relationships", "delete_relationships"):
        return _relate(stamp, op, delete=action == "delete_relationships", within=within)
    if action == "add_device":
        update = devices.read_update(op.device, v2=True)
        if type(update) is Problem:
            return update
        who = _person(op, PEOPLE)
        if type(who) is Problem:
            return who
        return devices.created(stamp, who, update, fallback_time=op.timestamp)
    if action == "delete_device":
        device = devices.read_device(op.device, v2=True)
        if type(device) is Problem:
            return device
        who = _person(op, PEOPLE)
        if type(who) is Problem:
            return who
        when = time_field(op.timestamp, "timestamp")
        if type(when) is Problem:
            return when
        return devices.deleted(stamp.at(when), who, device)
    who = _person(op, PEOPLE)
    if type(who) is Problem:
        return who
    return events.person_event(stamp, who, _PERSON_EVENTS[action], timestamp=op.timestamp)


def _person(op: PersonOperation, allowed: frozenset[str]) -> Subject | Problem:
    """The person an op's `identifiers` names, with its identifier's length checked."""
    who = named_person(op.identifiers, "identifiers", allowed)
    if type(who) is Problem:
        return who
    return check_person_ids(who, "identifiers") or who


def _identify(stamp: pipelines.Stamp, op: PersonOperation, within: int) -> Result:
    """Person identify: §4.1 with `identifiers` as the path and `attributes` as the body."""
    attributes = optional_object(op.attributes, "attributes")
    if type(attributes) is Problem:
        return attributes
    related = relationships.read_relationships(op.cio_relationships, required=False, v1_form=True)
    if type(related) is Problem:
        return related
    primary = named_person(op.identifiers, "identifiers", PEOPLE_OR_ANONYMOUS)
    if type(primary) is Problem:
        return primary
    timestamp: Any = op.timestamp
    field = "timestamp"
    if timestamp is None:
        timestamp, field = attributes.get("_timestamp"), "attributes._timestamp"
    return identify(
        stamp, primary, attributes, related, timestamp=timestamp, timestamp_field=field, within=within
    )


def _relate(stamp: pipelines.Stamp, op: PersonOperation, *, delete: bool, within: int) -> Result:
    """Person `add_relationships` / `delete_relationships` (spec §5.2)."""
    related = relationships.read_relationships(op.cio_relationships, required=True, v1_form=False)
    if type(related) is Problem:
        return related
    who = _person(op, PEOPLE)
    if type(who) is Problem:
        return who
    when = time_field(op.timestamp, "timestamp")
    if type(when) is Problem:
        return when
    related = relationships.changed(related, delete=delete)
    if type(related) is Problem:
        return related
    return relationships.with_objects(stamp.at(when), who, related, within=within, start=0)
