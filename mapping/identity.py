"""Who a call is about (spec §6): identifier values, the person a call names, and its userId.

Every function returns the person (or value) it found, or a Problem carrying the reason code.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from mapping import limits
from mapping.reasons import Reason
from mapping.results import Problem
from mapping.shapes import json_type

PERSON_KINDS = ("id", "email", "phone", "cio_id")
"""Person identifier kinds in userId precedence order (spec §6.2), also their order in outputs."""

ANONYMOUS = "anonymous_id"

PEOPLE = frozenset(PERSON_KINDS)
"""Identifier kinds that name a known person."""

PEOPLE_OR_ANONYMOUS = PEOPLE | {ANONYMOUS}
"""Also an anonymous person (v2 person identify/event/page/screen, spec §5.2)."""

ONLY_ANONYMOUS = frozenset({ANONYMOUS})
"""Object `identify_anonymous` relationship entries (spec §7.1)."""

# spec §6.3: the identifiers an identify body/attributes may add; `phone` is never promoted.
_PROMOTED = ("id", "email", "cio_id")
_PROMOTED_KEYS = frozenset(_PROMOTED)

_SURELY_SHORT_ID = limits.ID_BYTES // 4  # characters: at most 4 UTF-8 bytes each

# spec §4.0 rule 2 (Decision on the exact pattern).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class Subject(msgspec.Struct, frozen=True, gc=False):
    """Who an output is about: its identity fields (spec §3, §6.5).

    `identifiers` goes to `context.journeys.identifiers`: for a person, person identifiers in
    `PERSON_KINDS` order with `cio_id` unprefixed, or `{"anonymous_id": …}` for an anonymous one;
    for objects, relationships and deliveries the keys of spec §6.5. `user_id` and
    `anonymous_id` become `userId` / `anonymousId` when set.
    """

    identifiers: dict[str, str]
    user_id: str | None = None
    anonymous_id: str | None = None


def identifier_value(value: Any, where: str) -> str | Problem:
    """An identifier value per spec §6.1: a non-empty string verbatim or an integer in decimal.

    null and `""` give `missing_identifier`; booleans, floats, objects and arrays give
    `invalid_identifier`.
    """
    if isinstance(value, str):
        if value:
            return value
    elif type(value) is int:
        return str(value)
    elif value is not None:
        return Problem(Reason.INVALID_IDENTIFIER, f"{where} is {json_type(value)}")
    return Problem(Reason.MISSING_IDENTIFIER, f"{where} is missing or empty")


def optional_identifier(value: Any, where: str) -> str | Problem | None:
    """An optional identifier (e.g. an event's `anonymous_id`): null or `""` count as absent."""
    if value is None or value == "":
        return None
    return identifier_value(value, where)


def user_id(kind: str, value: str) -> str:
    """The userId a person identifier gives (spec §6.2): `cio_id` is written `cio_<value>`."""
    return "cio_" + value if kind == "cio_id" else value


def person(kind: str, value: str) -> Subject:
    """The subject a single person identifier names."""
    return Subject({kind: value}, "cio_" + value if kind == "cio_id" else value)


def path_person(segment: str | None) -> Subject | Problem:
    """The person a v1 path names (spec §4.0): `cio_` prefix, else email shape, else id.

    `segment` is the percent-decoded path segment, None when it was not UTF-8.
    """
    if segment is None:
        return Problem(Reason.INVALID_IDENTIFIER, "customer identifier in the path is not UTF-8")
    if not segment:
        return Problem(Reason.MISSING_IDENTIFIER, "customer identifier in the path is empty")
    if segment.startswith("cio_") and len(segment) > 4:
        return person("cio_id", segment[4:])
    if "@" in segment and _EMAIL.fullmatch(segment):
        return person("email", segment)
    return person("id", segment)


def named_person(identifiers: Any, where: str, allowed: frozenset[str]) -> Subject | Problem:
    """The one person an `identifiers` object names (spec §5.2, §7.1).

    Of the keys `id`, `email`, `phone`, `cio_id` and `anonymous_id`, exactly one may be non-null,
    and it must be one of `allowed`. Absent/null → `missing_identifier`; not an object →
    `invalid_identifier` (relationship entries check that first themselves: there it is
    `invalid_body`); none or only a disallowed kind → `missing_identifier`; several →
    `ambiguous_identifiers`.
    """
    if identifiers is None:
        return Problem(Reason.MISSING_IDENTIFIER, f"{where} is missing")
    if type(identifiers) is not dict:
        return Problem(Reason.INVALID_IDENTIFIER, f"{where} is {json_type(identifiers)}")
    found: str | None = None
    for kind, value in identifiers.items():
        if value is not None and kind in PEOPLE_OR_ANONYMOUS:
            if found is not None:
                return Problem(Reason.AMBIGUOUS_IDENTIFIERS, f"{where} names both {found} and {kind}")
            found = kind
    if found is None or found not in allowed:
        return Problem(Reason.MISSING_IDENTIFIER, f"{where} names none of {', '.join(sorted(allowed))}")
    value = identifiers[found]
    if type(value) is not str or not value:  # a non-empty string is the common, valid case
        value = identifier_value(value, f"{where}.{found}")
        if type(value) is Problem:
            return value
    if found == ANONYMOUS:
        return Subject({ANONYMOUS: value}, anonymous_id=value)
    return person(found, value)


def merge_side(side: dict[str, Any], where: str) -> tuple[str, str] | Problem:
    """The (kind, value) naming one side of a merge (spec §4.9): exactly one of `id`, `email`,
    `cio_id` non-null (none → `missing_identifier`, several → `ambiguous_identifiers`); other keys
    are ignored."""
    present = [kind for kind in _PROMOTED if side.get(kind) is not None]
    if not present:
        return Problem(Reason.MISSING_IDENTIFIER, f"{where} has none of id, email, cio_id")
    if len(present) > 1:
        return Problem(Reason.AMBIGUOUS_IDENTIFIERS, f"{where} names {' and '.join(present)}")
    kind = present[0]
    value = identifier_value(side[kind], f"{where}.{kind}")
    if type(value) is Problem:
        return value
    return kind, value


def identify_person(primary: Subject, attributes: dict[str, Any]) -> Subject | Problem:
    """The identifiers an identify collects (spec §6.3) and the userId they give (§6.2).

    The primary identifier (path or v2 `identifiers`) is kept; each of `id`, `email`, `cio_id` in
    the body/attributes whose kind differs from the primary's and whose value is usable is added.
    An anonymous primary collects nothing more (spec §5.2). A body `email` must be a string.
    """
    if primary.anonymous_id is not None or _PROMOTED_KEYS.isdisjoint(attributes):
        return primary
    ((primary_kind, primary_value),) = primary.identifiers.items()
    collected: dict[str, str] = {}
    for kind in PERSON_KINDS:  # collected in output order
        if kind == primary_kind:
            collected[kind] = primary_value
            continue
        raw = attributes.get(kind)
        if raw is None or raw == "" or kind == "phone":
            continue
        if type(raw) is str:
            collected[kind] = raw  # neither None nor "": a valid identifier
            continue
        if kind == "email":
            return Problem(Reason.INVALID_IDENTIFIER, f"email attribute is {json_type(raw)}")
        value = identifier_value(raw, f"{kind} attribute")
        if type(value) is Problem:
            return value
        collected[kind] = value
    if len(collected) == 1:
        return primary
    first = next(iter(collected))
    return Subject(collected, user_id(first, collected[first]))


def check_person_ids(who: Subject, where: str) -> Problem | None:
    """Every person identifier a call uses is at most 150 bytes (spec §12; anonymous ids are not IDs)."""
    for kind, value in who.identifiers.items():
        if len(value) > _SURELY_SHORT_ID and kind != ANONYMOUS and not limits.id_fits(value):
            return limits.check_id(value, f"{where} {kind}")
    return None


class ObjectRef(msgspec.Struct, frozen=True, gc=False):
    """An object named by its type id (canonical decimal) and its id (spec §6.4)."""

    type_id: str
    object_id: str

    @property
    def identifiers(self) -> dict[str, str]:
        """Its `context.journeys.identifiers` (spec §6.5)."""
        return {"object_type_id": self.type_id, "object_id": self.object_id}


def named_object(identifiers: Any, where: str) -> ObjectRef | Problem:
    """The object an `identifiers` object names (spec §6.4).

    `object_id` follows §6.1; when it is missing, a `cio_object_id` makes the object
    `unresolvable_object_identifier` (this worker is stateless and cannot look it up). The type
    id is a positive decimal integer, as a JSON integer or a string of ASCII digits, normalised
    (`"01"` → `"1"`); missing/null/`""` → `missing_identifier`, anything else `invalid_identifier`.
    """
    if identifiers is None:
        return Problem(Reason.MISSING_IDENTIFIER, f"{where} is missing")
    if type(identifiers) is not dict:
        return Problem(Reason.INVALID_IDENTIFIER, f"{where} is {json_type(identifiers)}")
    object_id = identifiers.get("object_id")
    if (object_id is None or object_id == "") and identifiers.get("cio_object_id") is not None:
        return Problem(
            Reason.UNRESOLVABLE_OBJECT_IDENTIFIER,
            f"{where} names the object only by cio_object_id, which cannot be resolved here",
        )
    object_id = identifier_value(object_id, f"{where}.object_id")
    if type(object_id) is Problem:
        return object_id
    type_id = _object_type_id(identifiers.get("object_type_id"), f"{where}.object_type_id")
    if type(type_id) is Problem:
        return type_id
    return ObjectRef(type_id, object_id)


def _object_type_id(value: Any, where: str) -> str | Problem:
    if value is None or value == "":
        return Problem(Reason.MISSING_IDENTIFIER, f"{where} is missing or empty")
    if type(value) is int:
        if value >= 1:
            return str(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        canonical = value.lstrip("0")
        if canonical:
            return canonical
    return Problem(Reason.INVALID_IDENTIFIER, f"{where} is not a positive decimal integer")
