"""The Track v2 operation (spec §5): one `/api/v2/entity` body or one `/api/v2/batch` element.

Every field is decoded as plain JSON (`Any`, JSON null and absence both `None`, spec §0) because
the reason a bad value earns depends on the field, the type and the action; the mappers validate
each field with the exact reason code the spec gives.
"""

from __future__ import annotations

import types
from typing import Any

import msgspec


class Operation(msgspec.Struct, frozen=True, gc=False):
    """`{"type", "action", "identifiers", …}`: the union of the fields any type/action reads."""

    type: Any = None
    action: Any = None
    identifiers: Any = None
    attributes: Any = None
    cio_relationships: Any = None
    name: Any = None
    id: Any = None
    timestamp: Any = None
    device: Any = None
    primary: Any = None
    secondary: Any = None
    anonymous_id: Any = None


class Batch(msgspec.Struct, frozen=True, gc=False):
    """`/api/v2/batch`: its elements stay undecoded until each is measured (spec §5.5)."""

    batch: list[msgspec.Raw]


ACTIONS = types.MappingProxyType(
    {
        "person": frozenset(
            {
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
            }
        ),
        "object": frozenset(
            {"identify", "identify_anonymous", "delete", "add_relationships", "delete_relationships"}
        ),
        "delivery": frozenset({"event"}),
    }
)
"""The actions of each v2 type (spec §5)."""
