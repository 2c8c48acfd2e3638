"""The Track v2 operation (spec §5): one `/api/v2/entity` body or one `/api/v2/batch` element.

An operation decodes straight into a tagged union: its `type` picks the Struct, and each Struct's
`action` is the Literal of the actions that type has (spec §5). The other fields are decoded as
plain JSON (`Any`, JSON null and absence both `None`, spec §0), because the reason a bad value
earns depends on the field and the action; the mappers check each one with the exact reason code
the spec gives. Fields a type never reads are skipped, not decoded.

An operation the union does not accept is diagnosed by `operation_problem`, in the order of
spec §5.1. The Structs are final, like `Problem`, so that callers dispatch on `type(op) is …`.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, final

import msgspec

from mapping.reasons import Reason
from mapping.results import Problem

PersonAction = Literal[
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
]
ObjectAction = Literal[
    "identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships"
]
DeliveryAction = Literal["event"]


@final
class PersonOperation(msgspec.Struct, frozen=True, gc=False, tag_field="type", tag="person"):
    """`{"type": "person", "action", "identifiers", …}` (spec §5.2)."""

    action: PersonAction
    identifiers: Any = None
    attributes: Any = None
    cio_relationships: Any = None
    name: Any = None
    id: Any = None
    timestamp: Any = None
    device: Any = None
    primary: Any = None
    secondary: Any = None


@final
class ObjectOperation(msgspec.Struct, frozen=True, gc=False, tag_field="type", tag="object"):
    """`{"type": "object", "action", "identifiers", …}` (spec §5.3)."""

    action: ObjectAction
    identifiers: Any = None
    attributes: Any = None
    cio_relationships: Any = None
    timestamp: Any = None
    anonymous_id: Any = None


@final
class DeliveryOperation(msgspec.Struct, frozen=True, gc=False, tag_field="type", tag="delivery"):
    """`{"type": "delivery", "action": "event", "identifiers", …}` (spec §5.4)."""

    action: DeliveryAction
    identifiers: Any = None
    name: Any = None
    attributes: Any = None
    timestamp: Any = None


Operation = PersonOperation | ObjectOperation | DeliveryOperation


class Batch(msgspec.Struct, frozen=True, gc=False):
    """`/api/v2/batch`: its elements stay undecoded until each is measured (spec §5.5)."""

    batch: list[msgspec.Raw]


ACTIONS = types.MappingProxyType(
    {
        "person": frozenset(typing.get_args(PersonAction)),
        "object": frozenset(typing.get_args(ObjectAction)),
        "delivery": frozenset(typing.get_args(DeliveryAction)),
    }
)
"""The actions of each v2 type (spec §5), as the union's Literals state them."""


@final
class Tags(msgspec.Struct, frozen=True, gc=False):
    """Only the `type` and `action` of an operation, whatever they are, for `operation_problem`."""

    type: Any = None
    action: Any = None


def operation_problem(tags: Tags) -> Problem | None:
    """Why an operation's `type` and `action` are not one the union accepts (spec §5.1), if so."""
    kind, action = tags.type, tags.action
    if not isinstance(kind, str):
        return Problem(Reason.INVALID_BODY, "type is missing or not a string")
    actions = ACTIONS.get(kind)
    if actions is None:
        return Problem(Reason.UNSUPPORTED_TYPE, f"type {kind[:40]!r} is not person, object or delivery")
    if not isinstance(action, str) or action not in actions:
        shown = repr(action[:40]) if isinstance(action, str) else "missing or not a string"
        return Problem(Reason.UNSUPPORTED_ACTION, f"action {shown} is not valid for type {kind}")
    return None
