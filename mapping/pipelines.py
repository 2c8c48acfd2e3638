"""The Data Pipelines calls we produce (spec §3, §7, §8), as msgspec Structs, and their builders.

Each call is tagged on `type`, written in camelCase, and omits every optional field that is not set
(never `null`). `Stamp` carries what all outputs of one item share; the builders fill in the
common fields of spec §3 so a mapper only states what is specific to its call, and hand back the
call already encoded, as the `Output` the routing layer reads.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec

from mapping.identity import Subject
from mapping.message_id import item_key, message_id_for
from mapping.reasons import Reason
from mapping.results import Output, Problem

_ENCODER = msgspec.json.Encoder()


class Integrations(msgspec.Struct, frozen=True, gc=False, rename={"all": "All"}):
    all: bool


ALL = Integrations(all=True)
"""spec §3: every output carries `"integrations": {"All": true}`."""


class Device(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """`context.device` of the device semantic events (spec §4.5, §4.6, §8.2)."""

    token: str
    type: str | None = None


class Journeys(msgspec.Struct, frozen=True, gc=False):
    identifiers: dict[str, str]


class Context(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """spec §3: `{"journeys": {"identifiers": {…}}}`, plus `device` for device events."""

    journeys: Journeys
    device: Device | None = None


class Call(
    msgspec.Struct,
    frozen=True,
    gc=False,
    kw_only=True,
    omit_defaults=True,
    rename="camel",
    tag_field="type",
):
    """Fields common to every Pipelines call (spec §3)."""

    message_id: str
    timestamp: str
    sent_at: str
    received_at: str
    integrations: Integrations
    context: Context
    user_id: str | None = None
    anonymous_id: str | None = None


class Identify(Call, frozen=True, gc=False, tag="identify"):
    traits: dict[str, Any]


class Track(Call, frozen=True, gc=False, tag="track"):
    event: str
    properties: dict[str, Any]


class Page(Call, frozen=True, gc=False, tag="page"):
    name: str
    properties: dict[str, Any]


class Screen(Call, frozen=True, gc=False, tag="screen"):
    name: str
    properties: dict[str, Any]


class Group(Call, frozen=True, gc=False, tag="group"):
    group_id: str
    traits: dict[str, Any]


class Alias(Call, frozen=True, gc=False, tag="alias"):
    previous_id: str


AnyCall = Identify | Track | Page | Screen | Group | Alias
"""Every Pipelines call, tagged on `type`: an output's value decodes into it."""

CallType = Literal["identify", "track", "page", "screen", "group", "alias"]
"""The `type` of a Pipelines call (spec §3): the tags of `AnyCall`, in its order."""
CALL_TYPES: tuple[str, ...] = get_args(CallType)


class Stamp(msgspec.Struct, frozen=True, gc=False):
    """What every output of one item shares: its place, its messageId inputs and its times (§9, §10).

    `item` is the item's index in its call (a batch position, else 0); `key` is its share of the
    messageId hash input. `received_at` is the envelope's time, normalised; it is also `sentAt`.
    `timestamp` is the item's own time, else `received_at`.
    """

    key: bytes
    item: int
    received_at: str
    timestamp: str

    def at(self, timestamp: str | None) -> Stamp:
        """This stamp with the item's own time, when it has one."""
        if timestamp is None:
            return self
        return Stamp(self.key, self.item, self.received_at, timestamp)


def item_stamp(request_id: str, item_index: int, received_at: str) -> Stamp:
    """The stamp of one item, timed by the envelope until the item names its own time."""
    return Stamp(item_key(request_id, item_index), item_index, received_at, received_at)


NESTED_TOO_DEEPLY = Problem(Reason.INVALID_BODY, "data is nested too deeply to re-encode")
"""An item whose outputs cannot be encoded: data nested just below the decoder's limit can exceed
the encoder's once wrapped in a call. Every builder below encodes its call at once (raising
RecursionError then), and a mapper builds its outputs only after every check of the item has
passed, so the item still yields all its outputs or this one Problem."""


def _output(
    call: Call, kind: str, stamp: Stamp, index: int, who: Subject, *, label: str | None = None, key: str = ""
) -> Output:
    """The call encoded, with what routing reads of it: its record key (spec §14: userId, else
    anonymousId, else `key`), its event or page/screen name, and whether the userId is the
    person's email (`drop_email_only`)."""
    user_id = who.user_id
    email_only = user_id is not None and "@" in user_id and user_id == who.identifiers.get("email")
    record_key = user_id or who.anonymous_id or key
    return Output(kind, record_key, _ENCODER.encode(call), stamp.item, index, label, email_only)


def identify(stamp: Stamp, index: int, who: Subject, traits: dict[str, Any]) -> Output:
    call = Identify(
        message_id=message_id_for(stamp.key, index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=Context(Journeys(who.identifiers)),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        traits=traits,
    )
    return _output(call, "identify", stamp, index, who)


def track(
    stamp: Stamp,
    index: int,
    who: Subject,
    event: str,
    properties: dict[str, Any],
    *,
    device: Device | None = None,
    message_id: str | None = None,
) -> Output:
    """A track call; `message_id` is the sender's dedupe id when it gave one (spec §10 rule 1)."""
    call = Track(
        message_id=message_id or message_id_for(stamp.key, index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=Context(Journeys(who.identifiers), device),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        event=event,
        properties=properties,
    )
    return _output(call, "track", stamp, index, who, label=event)


_VIEWS: dict[str, type[Page] | type[Screen]] = {"page": Page, "screen": Screen}


def view(
    stamp: Stamp,
    index: int,
    who: Subject,
    name: str,
    properties: dict[str, Any],
    *,
    kind: Literal["page", "screen"],
    message_id: str | None,
) -> Output:
    """A page or a screen call: the same fields under their own `type` (spec §8.1)."""
    call = _VIEWS[kind](
        message_id=message_id or message_id_for(stamp.key, index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=Context(Journeys(who.identifiers)),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        name=name,
        properties=properties,
    )
    return _output(call, kind, stamp, index, who, label=name)


def group(stamp: Stamp, index: int, who: Subject, group_id: str, traits: dict[str, Any]) -> Output:
    """A group call; with no person (an object's own group) its record key is the group id."""
    call = Group(
        message_id=message_id_for(stamp.key, index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=Context(Journeys(who.identifiers)),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        group_id=group_id,
        traits=traits,
    )
    return _output(call, "group", stamp, index, who, key=group_id)


def alias(stamp: Stamp, index: int, who: Subject, previous_id: str) -> Output:
    call = Alias(
        message_id=message_id_for(stamp.key, index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=Context(Journeys(who.identifiers)),
        user_id=who.user_id,
        previous_id=previous_id,
    )
    return _output(call, "alias", stamp, index, who)
