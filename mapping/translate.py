"""`translate`: one raw Track API call in, its Data Pipelines calls and problems out.

Stages, in the spec's order (§2, §12), the first failure settling the call: envelope
(`malformed_envelope`) → route (`unknown_endpoint` and the route-based skips of §11, both before
authentication) → credentials parsed → body-dependent work. Matching the credentials against the
configured sources is left to the routing layer (see `Translation`).

`translate` keeps no state. A long-lived caller can use a `Translator` instead: the same function,
with the parsed `authorization` headers it has seen cached (parsing is pure and a worker sees few
distinct headers).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from mapping import v1, v2
from mapping.credentials import parse_authorization
from mapping.envelope import Malformed, read_envelope
from mapping.pipelines import NESTED_TOO_DEEPLY, item_stamp
from mapping.reasons import Reason
from mapping.results import Credentials, Output, Problem, Translation
from mapping.routes import ROUTE_SKIPS, Endpoint, match_route

# Module names for the two v2 endpoints: comparing with them skips an enum class lookup per call.
_BATCH = Endpoint.V2_BATCH
_ENTITY = Endpoint.V2_ENTITY

_SKIP_DETAILS = {
    Reason.FORM_SUBMISSION_NOT_FORWARDED: "form submissions are not forwarded to Data Pipelines",
    Reason.MANUAL_SEGMENT_NOT_FORWARDED: "manual segment membership is not forwarded to Data Pipelines",
    Reason.CUSTOM_UNSUBSCRIBE_NOT_FORWARDED: "custom unsubscribes are not forwarded to Data Pipelines",
    Reason.NOT_A_DATA_CALL: "the account region lookup carries no data",
}


_CACHED_HEADERS = 64
"""How many distinct `authorization` headers a `Translator` remembers (it forgets all at once)."""


def translate(raw: bytes) -> Translation:
    """Translate one input message value. Never raises, whatever the bytes.

    Every call ends as at least one output or one problem, except when the credentials cannot be
    parsed: then `credentials` is that `unauthorized` Problem and nothing else is produced.
    """
    return _translate(raw, parse_authorization)


class Translator:
    """`translate`, remembering the credentials parsed from recent `authorization` headers."""

    __slots__ = ("_parsed",)

    def __init__(self) -> None:
        self._parsed: dict[str | None, Credentials | Problem] = {}

    def __call__(self, raw: bytes) -> Translation:
        """The same as `translate(raw)`."""
        return _translate(raw, self._credentials)

    def _credentials(self, header: str | None) -> Credentials | Problem:
        parsed = self._parsed.get(header)
        if parsed is None:
            parsed = parse_authorization(header)
            if len(self._parsed) >= _CACHED_HEADERS:
                self._parsed.clear()
            self._parsed[header] = parsed
        return parsed


def _translate(raw: bytes, credentials_of: Callable[[str | None], Credentials | Problem]) -> Translation:
    read = read_envelope(raw)
    if type(read) is Malformed:
        return Translation(read.request_id, read.received_at, None, None, [], [read.problem])
    envelope = read.envelope
    request_id, received_at = envelope.request_id, envelope.received_at
    route = match_route(envelope.method, envelope.path)
    if route is None:
        detail = f"no endpoint {envelope.method[:16]} {envelope.path[:200]}"
        return Translation(
            request_id, received_at, None, None, [], [Problem(Reason.UNKNOWN_ENDPOINT, detail)]
        )
    endpoint = route.endpoint
    skip = ROUTE_SKIPS.get(endpoint)
    if skip is not None:
        return Translation(request_id, received_at, endpoint, None, [], [Problem(skip, _SKIP_DETAILS[skip])])
    credentials = credentials_of(envelope.authorization)
    if type(credentials) is Problem:
        return Translation(request_id, received_at, endpoint, credentials, [], [])
    if endpoint is _BATCH:
        results = v2.batch(request_id, read.received_at, envelope.body)
        if type(results) is Problem:
            return Translation(request_id, received_at, endpoint, credentials, [], [results])
        outputs: list[Output] = []
        problems: list[Problem] = []
        for index, result in enumerate(results):
            if type(result) is Problem:
                problems.append(msgspec.structs.replace(result, item_index=index))
            else:
                outputs += result
        return Translation(request_id, received_at, endpoint, credentials, outputs, problems)
    stamp = item_stamp(request_id, 0, read.received_at)
    if endpoint is _ENTITY:
        result = v2.entity(stamp, envelope.body)
    else:
        try:
            result = v1.HANDLERS[endpoint](stamp, route.params, envelope.body)
        except RecursionError:
            result = NESTED_TOO_DEEPLY
    if type(result) is Problem:
        return Translation(request_id, received_at, endpoint, credentials, [], [result])
    return Translation(request_id, received_at, endpoint, credentials, result, [])
