"""Person identify (spec §4.1, v2 person `identify` §5.2): one `identify`, then its relationships."""

from __future__ import annotations

from typing import Any

from mapping import limits, pipelines, relationships
from mapping.identity import Subject, check_person_ids, identify_person, optional_identifier
from mapping.results import Problem, Result
from mapping.timestamps import time_field

# spec §4.1: body keys that are never traits (`email` stays, as a Decision).
_NOT_TRAITS = frozenset({"id", "cio_id", "anonymous_id", "_timestamp", "_update", "cio_relationships"})


def identify(
    stamp: pipelines.Stamp,
    primary: Subject,
    attributes: dict[str, Any],
    related: relationships.Relationships,
    *,
    timestamp: Any,
    timestamp_field: str,
    within: int,
) -> Result:
    """Translate one identify, all or nothing.

    `primary` names the person (v1 path, v2 `identifiers`); `attributes` is the v1 body or the v2
    `attributes`; `related` the already-read `cio_relationships`. `timestamp` is the item's time
    value (`_timestamp`, or the v2 op `timestamp`), `within` the raw JSON length holding the
    attributes (for the cheap size bounds of spec §12).
    """
    person = identify_person(primary, attributes)
    if type(person) is Problem:
        return person
    who = person  # the identify also carries the body's anonymous_id; relationships do not (§7.2)
    if person.anonymous_id is None:
        anonymous_id = optional_identifier(attributes.get("anonymous_id"), "anonymous_id")
        if type(anonymous_id) is Problem:
            return anonymous_id
        if anonymous_id is not None:
            who = Subject(person.identifiers, user_id=person.user_id, anonymous_id=anonymous_id)
    problem = check_person_ids(person, "customer")
    if problem is not None:
        return problem
    when = time_field(timestamp, timestamp_field)
    if type(when) is Problem:
        return when
    if _NOT_TRAITS.isdisjoint(attributes):
        traits = attributes
    else:
        traits = {name: value for name, value in attributes.items() if name not in _NOT_TRAITS}
    problem = limits.check_attributes(traits, within, "traits", total=False)
    if problem is not None:
        return problem
    stamp = stamp.at(when)
    related_calls = relationships.with_objects(stamp, person, related, within=within, start=1)
    if type(related_calls) is Problem:
        return related_calls
    return [pipelines.identify(stamp, 0, who, traits), *related_calls]
