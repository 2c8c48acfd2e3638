"""Devices (spec §4.5, §4.6, v2 `add_device`/`delete_device` §5.2): the device semantic events.

v1 names the push token `device.id`; v2 names it `device.token`, falling back to `device.id`
(Decision, spec §5.2). Real clients send extra device fields flat inside `device` or nested in
`device.attributes`; both become the event's properties, nested ones winning (spec §4.5).
"""

from __future__ import annotations

from typing import Any

import msgspec

from mapping import pipelines
from mapping.identity import Subject
from mapping.reasons import Reason
from mapping.results import Output, Problem, Result
from mapping.shapes import optional_object, required_object, required_text
from mapping.timestamps import time_field

_V1_RESERVED = frozenset({"id", "platform", "last_used", "attributes"})
_V2_RESERVED = _V1_RESERVED | {"token"}


class DeviceUpdate(msgspec.Struct, frozen=True, gc=False):
    """A device being added or updated: its context, its properties and its `last_used` value."""

    device: pipelines.Device
    properties: dict[str, Any]
    last_used: Any


def read_device(value: Any, *, v2: bool) -> pipelines.Device | Problem:
    """The `context.device` a device object names: its token and, when given, its platform.

    `device` must be an object with a non-empty string token, and `platform`, when present, a
    string (forwarded as given); else `invalid_body`.
    """
    device = required_object(value, "device")
    if type(device) is Problem:
        return device
    token_field = "token" if v2 and device.get("token") is not None else "id"
    token = required_text(device.get(token_field), f"device.{token_field}")
    if type(token) is Problem:
        return token
    platform = device.get("platform")
    if platform is not None and not isinstance(platform, str):
        return Problem(Reason.INVALID_BODY, "device.platform is not a string")
    return pipelines.Device(token, platform)


def read_update(value: Any, *, v2: bool) -> DeviceUpdate | Problem:
    """A device object being added or updated (spec §4.5): its context and properties."""
    device = read_device(value, v2=v2)
    if type(device) is Problem:
        return device
    fields: dict[str, Any] = value
    nested = optional_object(fields.get("attributes"), "device.attributes")
    if type(nested) is Problem:
        return nested
    reserved = _V2_RESERVED if v2 else _V1_RESERVED
    properties = {name: item for name, item in fields.items() if name not in reserved}
    properties.update(nested)
    return DeviceUpdate(device, properties, fields.get("last_used"))


def created(
    stamp: pipelines.Stamp, who: Subject, update: DeviceUpdate, *, fallback_time: Any = None
) -> Result:
    """`Device Created or Updated`, timed by `last_used`, else `fallback_time` (v2 op timestamp)."""
    if update.last_used is not None:
        when = time_field(update.last_used, "device.last_used")
    else:
        when = time_field(fallback_time, "timestamp")
    if type(when) is Problem:
        return when
    return [
        pipelines.track(
            stamp.at(when), 0, who, "Device Created or Updated", update.properties, device=update.device
        )
    ]


def deleted(stamp: pipelines.Stamp, who: Subject, device: pipelines.Device) -> list[Output]:
    """`Device Deleted` (spec §4.6)."""
    return [pipelines.track(stamp, 0, who, "Device Deleted", {}, device=device)]
