"""What the mapping core hands to the routing layer: the contract between `mapping/` and `worker/`.

`mapping.translate(raw: bytes) -> Translation` never raises for any input. A Translation says,
for one consumed envelope, which Data Pipelines calls it produced (already encoded, with their
record keys) and which calls or batch items were rejected or skipped, and with what reason.
"""

from __future__ import annotations

from typing import final

import msgspec

from mapping.reasons import Kind, Reason


class Credentials(msgspec.Struct, frozen=True, gc=False):
    """Site id and API key parsed from a Basic `authorization` header (spec §2)."""

    site_id: str
    api_key: str


@final
class Problem(msgspec.Struct, frozen=True, gc=False):
    """A reject or a skip of a whole call (`item_index` None) or of one batch item.

    Final, so that a result is told from its Problem by `type(result) is Problem`: `isinstance`
    against a Struct class takes its metaclass's slow path whenever the answer is no, which is
    the common case of every check in the mappers.
    """

    reason: Reason
    detail: str
    item_index: int | None = None

    @property
    def kind(self) -> Kind:
        return self.reason.kind


class Output(msgspec.Struct, frozen=True, gc=False):
    """One Data Pipelines call, encoded once, plus what routing and filters need to know of it.

    `value` is the UTF-8 JSON of the call (spec §3-§10); `key` is its record key (spec §14:
    userId, else anonymousId, else groupId). `type` is the Pipelines call type (identify, track,
    page, screen, group, alias); `event` is the track event name, or the page/screen name, else
    None. `email_only` is true when the call's userId equals `context.journeys.identifiers.email`.
    """

    type: str
    key: str
    value: bytes
    item_index: int
    output_index: int
    event: str | None = None
    email_only: bool = False


Result = list[Output] | Problem
"""What one item (a v1 call, a v2 entity, a batch element) comes to: its outputs, all or none, or
the one Problem that rejects or skips it."""


class Translation(msgspec.Struct, gc=False):
    """The result of translating one envelope.

    `credentials`:
      * None when the call was settled before authentication (malformed envelope, unknown
        endpoint, route-based skip): routing must not authenticate it, and `source` is null in
        its records;
      * a Problem (reason `unauthorized`) when the header is missing or cannot be parsed;
      * Credentials otherwise: routing matches them against the configured sources, and when none
        matches the whole call becomes one `unauthorized` dead letter and `outputs`/`problems`
        are discarded (spec §2: nothing is routed; auth comes before body-dependent work).

    `endpoint` names the matched route (e.g. `v1.identify`, `v2.batch`; the names are listed in
    `mapping.routes`), None when the envelope is malformed or the endpoint unknown; metrics
    label consumption with it. `request_id` and `received_at` are the envelope's values, verbatim,
    for record keys, headers and dead-letter records; None when the input is not a JSON object or
    the field is missing, empty or not a string (a malformed envelope keeps the ones it has, spec §14).
    """

    request_id: str | None
    received_at: str | None
    endpoint: str | None
    credentials: Credentials | Problem | None
    outputs: list[Output]
    problems: list[Problem]
