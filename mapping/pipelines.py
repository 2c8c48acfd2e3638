"""The Data Pipelines calls we produce (spec §3, §7, §8), as msgspec Structs, and their builders.

Each call is tagged on `type`, written in camelCase, and omits every optional field that is not set
(never `null`). `Stamp` carries what all outputs of one item share; the builders fill in the
common fields of spec §3 so a mapper only states what is specific to its call.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from mapping.identity import Subject
from mapping.message_id import item_key, message_id_for


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

    type_name: ClassVar[str]

    message_id: str
    timestamp: str
    sent_at: str
    received_at: str
    integrations: Integrations
    context: Context
    user_id: str | None = None
    anonymous_id: str | None = None

    @property
    def key(self) -> str:
        """The record key (spec §14): userId, else anonymousId (groups fall back to groupId)."""
        return self.user_id or self.anonymous_id or ""

    @property
    def label(self) -> str | None:
        """The track event name, or the page/screen name; None for other calls."""
        return None


class Identify(Call, frozen=True, gc=False, tag="identify"):
    type_name: ClassVar[str] = "identify"
    traits: dict[str, Any]


class Track(Call, frozen=True, gc=False, tag="track"):
    type_name: ClassVar[str] = "track"
    event: str
    properties: dict[str, Any]

    @property
    def label(self) -> str | None:
        return self.event


class Page(Call, frozen=True, gc=False, tag="page"):
    type_name: ClassVar[str] = "page"
    name: str
    properties: dict[str, Any]

    @property
    def label(self) -> str | None:
        return self.name


class Screen(Call, frozen=True, gc=False, tag="screen"):
    type_name: ClassVar[str] = "screen"
    name: str
    properties: dict[str, Any]

    @property
    def label(self) -> str | None:
        return self.name


class Group(Call, frozen=True, gc=False, tag="group"):
    type_name: ClassVar[str] = "group"
    group_id: str
    traits: dict[str, Any]

    @property
    def key(self) -> str:
        return self.user_id or self.anonymous_id or self.group_id


class Alias(Call, frozen=True, gc=False, tag="alias"):
    type_name: ClassVar[str] = "alias"
    previous_id: str


class Stamp(msgspec.Struct, frozen=True, gc=False):
    """What every output of one item shares: its messageId inputs and its times (spec §9, §10).

    `received_at` is the envelope's time, normalised; it is also `sentAt`. `timestamp` is the
    item's own time, else `received_at`. `key` is the item's share of the messageId hash input.
    """

    key: bytes
    received_at: str
    timestamp: str

    def message_id(self, output_index: int) -> str:
        return message_id_for(self.key, output_index)

    def at(self, timestamp: str | None) -> Stamp:
        """This stamp with the item's own time, when it has one."""
        if timestamp is None:
            return self
        return Stamp(self.key, self.received_at, timestamp)


def item_stamp(request_id: str, item_index: int, received_at: str) -> Stamp:
    """The stamp of one item, timed by the envelope until the item names its own time."""
    return Stamp(item_key(request_id, item_index), received_at, received_at)


def _context(who: Subject, device: Device | None = None) -> Context:
    return Context(Journeys(who.identifiers), device)


def identify(stamp: Stamp, index: int, who: Subject, traits: dict[str, Any]) -> Identify:
    return Identify(
        message_id=stamp.message_id(index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=_context(who),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        traits=traits,
    )


def track(
    stamp: Stamp,
    index: int,
    who: Subject,
    event: str,
    properties: dict[str, Any],
    *,
    device: Device | None = None,
    message_id: str | None = None,
) -> Track:
    """A track call; `message_id` is the sender's dedupe id when it gave one (spec §10 rule 1)."""
    return Track(
        message_id=message_id or stamp.message_id(index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=_context(who, device),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        event=event,
        properties=properties,
    )


def page(
    stamp: Stamp, index: int, who: Subject, name: str, properties: dict[str, Any], *, message_id: str | None
) -> Page:
    return Page(
        message_id=message_id or stamp.message_id(index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=_context(who),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        name=name,
        properties=properties,
    )


def screen(
    stamp: Stamp, index: int, who: Subject, name: str, properties: dict[str, Any], *, message_id: str | None
) -> Screen:
    return Screen(
        message_id=message_id or stamp.message_id(index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=_context(who),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        name=name,
        properties=properties,
    )


def group(stamp: Stamp, index: int, who: Subject, group_id: str, traits: dict[str, Any]) -> Group:
    return Group(
        message_id=stamp.message_id(index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=_context(who),
        user_id=who.user_id,
        anonymous_id=who.anonymous_id,
        group_id=group_id,
        traits=traits,
    )


def alias(stamp: Stamp, index: int, who: Subject, previous_id: str) -> Alias:
    return Alias(
        message_id=stamp.message_id(index),
        timestamp=stamp.timestamp,
        sent_at=stamp.received_at,
        received_at=stamp.received_at,
        integrations=ALL,
        context=_context(who),
        user_id=who.user_id,
        previous_id=previous_id,
    )
