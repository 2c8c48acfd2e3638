"""Events (spec §4.3, §4.4, v2 person `event`/`page`/`screen` §5.2): one track, page or screen."""

from __future__ import annotations

from typing import Any, Literal

from mapping import limits, pipelines
from mapping.identity import Subject
from mapping.reasons import Reason
from mapping.results import Problem, Result
from mapping.timestamps import time_field

EventKind = Literal["track", "page", "screen"]

# spec §4.3: v1 `type` is compared case-sensitively; anything else (or no type) is a track.
_V1_KINDS: dict[str, EventKind] = {"page": "page", "screen": "screen"}


def v1_kind(value: Any) -> EventKind:
    """The call a v1 event body's `type` asks for (spec §8.1); a non-string type counts as absent."""
    return _V1_KINDS.get(value, "track") if isinstance(value, str) else "track"


def event(
    stamp: pipelines.Stamp,
    who: Subject,
    kind: EventKind,
    name: Any,
    properties: dict[str, Any],
    *,
    sent_id: Any,
    timestamp: Any,
    within: int,
) -> Result:
    """Translate one event whose body shape and identity are already checked.

    The name is trimmed and must not be blank (`missing_event_name`); track and screen names are
    at most 100 bytes, page names are exempt (spec §12). `sent_id` becomes the messageId when it
    is a non-empty string (spec §10). `within` is the raw JSON length holding `properties`.
    """
    if not isinstance(name, str) or not (trimmed := name.strip()):
        return Problem(Reason.MISSING_EVENT_NAME, "name is missing, not a string, or blank")
    if kind != "page" and len(trimmed) > limits.EVENT_NAME_BYTES // 4:
        problem = limits.check_event_name(trimmed)
        if problem is not None:
            return problem
    if timestamp is not None:
        when = time_field(timestamp, "timestamp")
        if type(when) is Problem:
            return when
        stamp = stamp.at(when)
    if within * limits.EXPANSION > limits.EVENT_DATA_BYTES:
        problem = limits.check_event_data(properties, within)
        if problem is not None:
            return problem
    message_id = sent_id if isinstance(sent_id, str) and sent_id else None
    if kind == "track":
        return [pipelines.track(stamp, 0, who, trimmed, properties, message_id=message_id)]
    return [pipelines.view(stamp, 0, who, trimmed, properties, kind=kind, message_id=message_id)]


def person_event(stamp: pipelines.Stamp, who: Subject, event_name: str, *, timestamp: Any = None) -> Result:
    """A semantic person event with empty properties: User Deleted, Suppressed, Unsuppressed (§8.2)."""
    when = time_field(timestamp, "timestamp")
    if type(when) is Problem:
        return when
    return [pipelines.track(stamp.at(when), 0, who, event_name, {})]
