"""Delivery metrics (spec §4.10, §4.11, v2 `delivery` §5.4): the "Report Delivery Event" track.

A delivery metric names no person; as Customer.io's own SDKs do, the event is identified by
`anonymousId` = the delivery id, and its identifiers are `{"delivery_id": …}`.
"""

from __future__ import annotations

from typing import Any

from mapping import pipelines
from mapping.identity import Subject, identifier_value
from mapping.reasons import Reason
from mapping.results import Problem, Result
from mapping.shapes import optional_object, required_text
from mapping.timestamps import time_field


def report(
    stamp: pipelines.Stamp,
    delivery_id: Any,
    metric: Any,
    extras: dict[str, Any],
    *,
    id_field: str,
    metric_field: str,
    timestamp: Any,
) -> Result:
    """One delivery event: properties `deliveryId`, `metric`, then `extras` (never overriding them).

    The delivery id follows the identifier rules (§6.1); the metric must be a non-empty string
    (`invalid_body`); it is not checked against Customer.io's list of metrics.
    """
    identifier = identifier_value(delivery_id, id_field)
    if type(identifier) is Problem:
        return identifier
    name = required_text(metric, metric_field)
    if type(name) is Problem:
        return name
    when = time_field(timestamp, "timestamp")
    if type(when) is Problem:
        return when
    properties: dict[str, Any] = {"deliveryId": identifier, "metric": name}
    for key, value in extras.items():
        properties.setdefault(key, value)
    who = Subject({"delivery_id": identifier}, anonymous_id=identifier)
    return [pipelines.track(stamp.at(when), 0, who, "Report Delivery Event", properties)]


def present(**fields: Any) -> dict[str, Any]:
    """The optional v1 fields that are present (null is absent), under their property names."""
    return {name: value for name, value in fields.items() if value is not None}


def v2_delivery(
    stamp: pipelines.Stamp, identifiers: Any, name: Any, attributes: Any, timestamp: Any
) -> Result:
    """A v2 `delivery` `event` op (spec §5.4): `attributes.device_token` becomes `recipient`.

    `identifiers` absent → `missing_identifier`, not an object → `invalid_identifier`; the other
    attributes are copied unchanged.
    """
    extras = optional_object(attributes, "attributes")
    if type(extras) is Problem:
        return extras
    if identifiers is None:
        return Problem(Reason.MISSING_IDENTIFIER, "identifiers is missing")
    if not isinstance(identifiers, dict):
        return Problem(Reason.INVALID_IDENTIFIER, "identifiers is not an object")
    if "device_token" in extras:
        token = extras["device_token"]
        rest = {key: value for key, value in extras.items() if key != "device_token"}
        extras = rest if token is None else {"recipient": token} | rest
    return report(
        stamp,
        identifiers.get("id"),
        name,
        extras,
        id_field="identifiers.id",
        metric_field="name",
        timestamp=timestamp,
    )
