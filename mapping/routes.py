"""The Track API endpoints we recognise (spec §4, §5) and how a method and path find one (spec §1).

`Endpoint` is the one list of route names; metrics enumerate it. `match_route` splits the still
percent-encoded path on `/`, percent-decodes each segment on its own as UTF-8 (`%2F` stays inside
its segment, `+` stays a plus, a malformed `%` sequence is kept literally), ignores one trailing
empty segment, and compares literal segments case-sensitively and the method case-insensitively.
"""

from __future__ import annotations

import enum
import operator
import types
import urllib.parse
from collections.abc import Callable, Sequence

import msgspec

from mapping.reasons import Reason


class Endpoint(enum.StrEnum):
    """Stable names of the recognised routes (label values for metrics)."""

    V1_IDENTIFY = "v1.identify"
    V1_DELETE = "v1.delete"
    V1_EVENT = "v1.event"
    V1_ANONYMOUS_EVENT = "v1.anonymous_event"
    V1_ADD_DEVICE = "v1.add_device"
    V1_DELETE_DEVICE = "v1.delete_device"
    V1_SUPPRESS = "v1.suppress"
    V1_UNSUPPRESS = "v1.unsuppress"
    V1_MERGE = "v1.merge"
    V1_METRICS = "v1.metrics"
    V1_PUSH_EVENTS = "v1.push_events"
    V1_FORM_SUBMIT = "v1.form_submit"
    V1_SEGMENT_ADD = "v1.segment_add"
    V1_SEGMENT_REMOVE = "v1.segment_remove"
    V1_UNSUBSCRIBE = "v1.unsubscribe"
    V1_REGION = "v1.region"
    V2_ENTITY = "v2.entity"
    V2_BATCH = "v2.batch"


ENDPOINTS: tuple[Endpoint, ...] = tuple(Endpoint)
"""Every endpoint name, in table order."""

ROUTE_SKIPS = types.MappingProxyType(
    {
        Endpoint.V1_FORM_SUBMIT: Reason.FORM_SUBMISSION_NOT_FORWARDED,
        Endpoint.V1_SEGMENT_ADD: Reason.MANUAL_SEGMENT_NOT_FORWARDED,
        Endpoint.V1_SEGMENT_REMOVE: Reason.MANUAL_SEGMENT_NOT_FORWARDED,
        Endpoint.V1_UNSUBSCRIBE: Reason.CUSTOM_UNSUBSCRIBE_NOT_FORWARDED,
        Endpoint.V1_REGION: Reason.NOT_A_DATA_CALL,
    }
)
"""Endpoints skipped on their route alone, before authentication (spec §11)."""

OPEN_ENDPOINTS = frozenset({Endpoint.V1_METRICS, Endpoint.V1_PUSH_EVENTS, Endpoint.V1_UNSUBSCRIBE})
"""Endpoints Customer.io serves without credentials (spec §2 [DOC]): an HTTP edge must not refuse
them for their `Authorization` header; the worker then applies spec §2 as for any other call."""

# spec §4 and §5: method, path template ("{}" is a parameter segment), endpoint.
_TABLE = (
    ("PUT", "/api/v1/customers/{}", Endpoint.V1_IDENTIFY),
    ("DELETE", "/api/v1/customers/{}", Endpoint.V1_DELETE),
    ("POST", "/api/v1/customers/{}/events", Endpoint.V1_EVENT),
    ("POST", "/api/v1/events", Endpoint.V1_ANONYMOUS_EVENT),
    ("PUT", "/api/v1/customers/{}/devices", Endpoint.V1_ADD_DEVICE),
    ("DELETE", "/api/v1/customers/{}/devices/{}", Endpoint.V1_DELETE_DEVICE),
    ("POST", "/api/v1/customers/{}/suppress", Endpoint.V1_SUPPRESS),
    ("POST", "/api/v1/customers/{}/unsuppress", Endpoint.V1_UNSUPPRESS),
    ("POST", "/api/v1/merge_customers", Endpoint.V1_MERGE),
    ("POST", "/api/v1/metrics", Endpoint.V1_METRICS),
    ("POST", "/api/v1/push/events", Endpoint.V1_PUSH_EVENTS),
    ("POST", "/push/events", Endpoint.V1_PUSH_EVENTS),  # customerio-ruby's path [CLIENT]
    ("POST", "/api/v1/forms/{}/submit", Endpoint.V1_FORM_SUBMIT),
    ("POST", "/api/v1/segments/{}/add_customers", Endpoint.V1_SEGMENT_ADD),
    ("POST", "/api/v1/segments/{}/remove_customers", Endpoint.V1_SEGMENT_REMOVE),
    ("POST", "/unsubscribe/{}", Endpoint.V1_UNSUBSCRIBE),
    ("GET", "/api/v1/accounts/region", Endpoint.V1_REGION),
    ("POST", "/api/v2/entity", Endpoint.V2_ENTITY),
    ("POST", "/api/v2/batch", Endpoint.V2_BATCH),
)


METHODS: tuple[str, ...] = tuple(sorted({method for method, _, _ in _TABLE}))
"""Every method some endpoint takes."""


class Route(msgspec.Struct, frozen=True, gc=False):
    """A matched route and its parameter segments, percent-decoded (None: not valid UTF-8)."""

    endpoint: Endpoint
    params: tuple[str | None, ...] = ()


_Literals = Callable[[Sequence[str | None]], object]


def _compile() -> dict[int, list[tuple[_Literals, tuple[int, ...], dict[object, dict[str, Endpoint]]]]]:
    """Index the table by segment count, then by parameter positions (fewest first).

    For each (count, positions) there is one getter that picks the literal segments out of a split
    path in C, and a table from those literals to the methods and endpoints they allow.
    """
    grouped: dict[tuple[int, tuple[int, ...]], dict[object, dict[str, Endpoint]]] = {}
    for method, template, endpoint in _TABLE:
        segments = template.split("/")
        params = tuple(i for i, segment in enumerate(segments) if segment == "{}")
        literals = operator.itemgetter(*(i for i in range(len(segments)) if i not in params))
        shapes = grouped.setdefault((len(segments), params), {})
        shapes.setdefault(literals(segments), {})[method] = endpoint
    index: dict[int, list[tuple[_Literals, tuple[int, ...], dict[object, dict[str, Endpoint]]]]] = {}
    for (count, params), shapes in sorted(grouped.items(), key=lambda item: len(item[0][1])):
        literals = operator.itemgetter(*(i for i in range(count) if i not in params))
        index.setdefault(count, []).append((literals, params, shapes))
    return index


_INDEX = _compile()


def _compile_exact() -> dict[str, dict[str, Endpoint]]:
    """The parameterless templates by their whole path, for a lookup before any splitting.

    A path equal to one of them has no `%` and no trailing `/`, so its segments are its literals
    verbatim and the segment index would give the same answer.
    """
    exact: dict[str, dict[str, Endpoint]] = {}
    for method, template, endpoint in _TABLE:
        if "{}" not in template:
            exact.setdefault(template, {})[method] = endpoint
    return exact


_CUSTOMER = "/api/v1/customers/"


def _compile_customer() -> dict[str, dict[str, Endpoint]]:
    """`/api/v1/customers/{}` and its one-literal children, by that literal ("" for the bare person).

    A path that is `_CUSTOMER`, a non-empty person segment, then nothing, `/` or `/<tail>` for one
    of these tails splits into exactly those segments, so the segment index would give the same
    answer (the tables hold no other template those segments could match). The tails have no `%`:
    only the person segment needs decoding, and `_decode` decodes it as `split_path` would.
    """
    tails: dict[str, dict[str, Endpoint]] = {}
    for method, template, endpoint in _TABLE:
        if template.startswith(_CUSTOMER + "{}"):
            tail = template.removeprefix(_CUSTOMER + "{}").removeprefix("/")
            if "{}" not in tail and "/" not in tail:
                tails.setdefault(tail, {})[method] = endpoint
    return tails


_EXACT = _compile_exact()
_EXACT_ROUTES = {endpoint: Route(endpoint) for methods in _EXACT.values() for endpoint in methods.values()}
_CUSTOMER_TAILS = _compile_customer()


def split_path(path: str) -> Sequence[str | None]:
    """The path's segments, percent-decoded (spec §1): the first is "" for a path beginning with `/`.

    One trailing empty segment is dropped; a segment that is not UTF-8 once decoded becomes None.
    """
    segments = path.split("/")
    if len(segments) > 2 and segments[-1] == "":
        segments.pop()
    if "%" not in path:
        return segments
    return [_decode(segment) for segment in segments]


def _decode(segment: str) -> str | None:
    if "%" not in segment:
        return segment
    try:
        return urllib.parse.unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        return None


def match_route(method: str, path: str) -> Route | None:
    """The route a method and path name, or None (`unknown_endpoint`).

    The common paths (parameterless ones, and a person's one-parameter v1 paths) are looked up
    directly; every other path is split and matched segment by segment.
    """
    exact = _EXACT.get(path)
    if exact is not None:
        endpoint = _method_endpoint(exact, method)
        return None if endpoint is None else _EXACT_ROUTES[endpoint]
    if path.startswith(_CUSTOMER):
        person, _, tail = path[len(_CUSTOMER) :].partition("/")
        methods = _CUSTOMER_TAILS.get(tail)
        if person and methods is not None:
            endpoint = _method_endpoint(methods, method)
            return None if endpoint is None else Route(endpoint, (_decode(person),))
    if not path.startswith("/"):
        return None
    segments = split_path(path)
    for literals, params, shapes in _INDEX.get(len(segments), ()):
        methods = shapes.get(literals(segments))
        if methods is not None:
            endpoint = _method_endpoint(methods, method)
            if endpoint is None:
                return None
            if len(params) == 1:
                return Route(endpoint, (segments[params[0]],))
            return Route(endpoint, tuple(segments[position] for position in params))
    return None


def _method_endpoint(methods: dict[str, Endpoint], method: str) -> Endpoint | None:
    """The endpoint `method` selects, compared case-insensitively (HTTP methods are ASCII tokens;
    a non-ASCII method could upper-case into one)."""
    return methods.get(method) or (methods.get(method.upper()) if method.isascii() else None)


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods (upper case, sorted) that name an endpoint at `path`; empty for an unknown path.

    What an HTTP server needs to tell "no such path" (404) from "not with this method" (405, with
    an `Allow` header) using the same table as `match_route`.
    """
    return tuple(method for method in METHODS if match_route(method, path) is not None)
