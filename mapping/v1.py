"""Track v1 endpoints (spec §4): each body decoded into its Struct, then handed to its mapper.

Every handler returns the item's outputs or the one Problem that rejects or skips it; checks run
in the spec's order (§12): body shape, identifiers, ID length, event name, time, sizes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from mapping import delivery, devices, events, merge, pipelines, relationships
from mapping.identify import identify
from mapping.identity import Subject, check_person_ids, identifier_value, optional_identifier, path_person
from mapping.reasons import Reason
from mapping.results import Problem, Result
from mapping.routes import Endpoint
from mapping.shapes import decode_body, optional_object

Handler = Callable[[pipelines.Stamp, tuple[str | None, ...], msgspec.Raw], Result]


class EventBody(msgspec.Struct, frozen=True, gc=False):
    """`POST …/customers/{id}/events` and `POST /api/v1/events` (spec §4.3, §4.4)."""

    name: Any = None
    type: Any = None
    data: Any = None
    timestamp: Any = None
    id: Any = None
    anonymous_id: Any = None


class DeviceBody(msgspec.Struct, frozen=True, gc=False):
    """`PUT …/customers/{id}/devices` (spec §4.5)."""

    device: Any = None


class MergeBody(msgspec.Struct, frozen=True, gc=False):
    """`POST /api/v1/merge_customers` (spec §4.9)."""

    primary: Any = None
    secondary: Any = None
    timestamp: Any = None


class MetricsBody(msgspec.Struct, frozen=True, gc=False):
    """`POST /api/v1/metrics` (spec §4.10)."""

    delivery_id: Any = None
    metric: Any = None
    timestamp: Any = None
    recipient: Any = None
    reason: Any = None
    href: Any = None


class PushBody(msgspec.Struct, frozen=True, gc=False):
    """`POST /api/v1/push/events` and `POST /push/events` (spec §4.11)."""

    delivery_id: Any = None
    event: Any = None
    device_id: Any = None
    timestamp: Any = None


_IDENTIFY = msgspec.json.Decoder(dict[str, Any] | None)
_EVENT = msgspec.json.Decoder(EventBody)
_DEVICE = msgspec.json.Decoder(DeviceBody)
_MERGE = msgspec.json.Decoder(MergeBody)
_METRICS = msgspec.json.Decoder(MetricsBody)
_PUSH = msgspec.json.Decoder(PushBody)

_NOT_AN_OBJECT = "body is not a JSON object"


def _customer(params: tuple[str | None, ...]) -> Subject | Problem:
    """The person the path names, with its identifier's length checked."""
    who = path_person(params[0])
    if type(who) is Problem:
        return who
    return check_person_ids(who, "customer") or who


def _identify(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.1: the body (null means `{}`) holds attributes, identifiers and relationships."""
    body = decode_body(_IDENTIFY, raw, _NOT_AN_OBJECT)
    if type(body) is Problem:
        return body
    attributes = body or {}
    related = relationships.read_relationships(
        attributes.get("cio_relationships"), required=False, v1_form=True
    )
    if type(related) is Problem:
        return related
    primary = path_person(params[0])
    if type(primary) is Problem:
        return primary
    return identify(
        stamp,
        primary,
        attributes,
        related,
        timestamp=attributes.get("_timestamp"),
        timestamp_field="_timestamp",
        within=len(raw),
    )


def _person_event(event_name: str) -> Handler:
    """§4.2, §4.7, §4.8: a semantic event about the path's person; the body is ignored."""

    def handle(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
        who = _customer(params)
        if type(who) is Problem:
            return who
        return events.person_event(stamp, who, event_name)

    return handle


def _event(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.3: a track, page or screen by the path's person."""
    body = decode_body(_EVENT, raw, _NOT_AN_OBJECT)
    if type(body) is Problem:
        return body
    properties = optional_object(body.data, "data")
    if type(properties) is Problem:
        return properties
    who = _customer(params)
    if type(who) is Problem:
        return who
    anonymous_id = optional_identifier(body.anonymous_id, "anonymous_id")
    if type(anonymous_id) is Problem:
        return anonymous_id
    if anonymous_id is not None:
        who = Subject(who.identifiers, user_id=who.user_id, anonymous_id=anonymous_id)
    return _event_call(stamp, who, body, properties, len(raw))


def _event_call(
    stamp: pipelines.Stamp, who: Subject, body: EventBody, properties: dict[str, Any], within: int
) -> Result:
    """The track, page or screen of a v1 event body (§4.3, §4.4) whose shape and identity are checked."""
    return events.event(
        stamp,
        who,
        events.v1_kind(body.type),
        body.name,
        properties,
        sent_id=body.id,
        timestamp=body.timestamp,
        within=within,
    )


def _anonymous_event(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.4: an event with no person, identified by its `anonymous_id`, else skipped."""
    body = decode_body(_EVENT, raw, _NOT_AN_OBJECT)
    if type(body) is Problem:
        return body
    if body.anonymous_id is None or body.anonymous_id == "":
        return Problem(Reason.NO_IDENTITY, "anonymous event without anonymous_id")
    properties = optional_object(body.data, "data")
    if type(properties) is Problem:
        return properties
    anonymous_id = identifier_value(body.anonymous_id, "anonymous_id")
    if type(anonymous_id) is Problem:
        return anonymous_id
    who = Subject({"anonymous_id": anonymous_id}, anonymous_id=anonymous_id)
    return _event_call(stamp, who, body, properties, len(raw))


def _add_device(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.5: Device Created or Updated."""
    body = decode_body(_DEVICE, raw, _NOT_AN_OBJECT)
    if type(body) is Problem:
        return body
    update = devices.read_update(body.device, v2=False)
    if type(update) is Problem:
        return update
    who = _customer(params)
    if type(who) is Problem:
        return who
    return devices.created(stamp, who, update)


def _delete_device(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.6: Device Deleted for the token in the path; the body is ignored."""
    token = params[1]
    if not token:
        state = "empty" if token == "" else "not UTF-8"
        return Problem(Reason.INVALID_BODY, f"device id in the path is {state}")
    who = _customer(params)
    if type(who) is Problem:
        return who
    return devices.deleted(stamp, who, pipelines.Device(token))


def _merge(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.9: alias."""
    body = decode_body(_MERGE, raw, _NOT_AN_OBJECT)
    if type(body) is Problem:
        return body
    return merge.merge(stamp, body.primary, body.secondary, timestamp=body.timestamp)


def _metrics(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.10: Report Delivery Event."""
    body = decode_body(_METRICS, raw, _NOT_AN_OBJECT)
    if type(body) is Problem:
        return body
    return delivery.report(
        stamp,
        body.delivery_id,
        body.metric,
        delivery.present(recipient=body.recipient, reason=body.reason, href=body.href),
        id_field="delivery_id",
        metric_field="metric",
        timestamp=body.timestamp,
    )


def _push_events(stamp: pipelines.Stamp, params: tuple[str | None, ...], raw: msgspec.Raw) -> Result:
    """§4.11: Report Delivery Event with `event` as the metric and `device_id` as the recipient."""
    body = decode_body(_PUSH, raw, _NOT_AN_OBJECT)
    if type(body) is Problem:
        return body
    return delivery.report(
        stamp,
        body.delivery_id,
        body.event,
        delivery.present(recipient=body.device_id),
        id_field="delivery_id",
        metric_field="event",
        timestamp=body.timestamp,
    )


HANDLERS: dict[Endpoint, Handler] = {
    Endpoint.V1_IDENTIFY: _identify,
    Endpoint.V1_DELETE: _person_event("User Deleted"),
    Endpoint.V1_EVENT: _event,
    Endpoint.V1_ANONYMOUS_EVENT: _anonymous_event,
    Endpoint.V1_ADD_DEVICE: _add_device,
    Endpoint.V1_DELETE_DEVICE: _delete_device,
    Endpoint.V1_SUPPRESS: _person_event("User Suppressed"),
    Endpoint.V1_UNSUPPRESS: _person_event("User Unsuppressed"),
    Endpoint.V1_MERGE: _merge,
    Endpoint.V1_METRICS: _metrics,
    Endpoint.V1_PUSH_EVENTS: _push_events,
}
"""The v1 endpoints that carry data (the others are skipped on their route, spec §11)."""
