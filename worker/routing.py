"""Routing by source: one translated call becomes the Kafka records to produce, and its counts.

`Router.route(raw, translation)` is the single place that decides where a call's outputs,
rejects and skips go (spec §2, §14). It knows nothing of Faust or aiokafka: the worker and the
offline `trackbridge map` command both call it, so what `map` prints is what the worker sends.

Per call it authenticates the translation's credentials against the sources file (constant-time
digest comparison, successful lookups cached), fans each output out to the destinations of its
source whose filters accept it, turns each problem into a dead-letter or skip record, and counts
what the metrics need, including the accounting identity
`items_consumed == items_mapped + items_skipped + items_rejected`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from hashlib import sha256
from types import MappingProxyType
from typing import Final, Generic, TypeVar

import msgspec

from mapping.credentials import parse_authorization
from mapping.pipelines import CALL_TYPES
from mapping.reasons import Kind, Reason
from mapping.results import Credentials, Output, Problem, Translation
from worker.config.sources import Destination, Source, SourcesConfig
from worker.records import (
    HEADER_ITEM_INDEX,
    HEADER_OUTPUT_INDEX,
    HEADER_REQUEST_ID,
    HEADER_SOURCE,
    INDEX_HEADERS,
    ITEM_HEADERS,
    OUTPUT_HEADERS,
    Header,
    InputCopy,
    Record,
    input_copy,
    problem_record,
)
from worker.sealing import Sealer

# Filter names, in the order they are applied; they label the `filtered` counts.
FILTER_TYPES: Final = "types"
FILTER_INCLUDE_EVENTS: Final = "include_events"
FILTER_EXCLUDE_EVENTS: Final = "exclude_events"
FILTER_DROP_EMAIL_ONLY: Final = "drop_email_only"
FILTERS: Final = (FILTER_TYPES, FILTER_INCLUDE_EVENTS, FILTER_EXCLUDE_EVENTS, FILTER_DROP_EMAIL_ONLY)

DEFAULT_CACHE_SIZE: Final = 1024

_NO_COUNTS: Mapping[tuple[str, str], int] = MappingProxyType({})
_NO_REASONS: Mapping[Reason, int] = MappingProxyType({})


class Routed(msgspec.Struct, gc=False):
    """What one call became: the records to produce, and what the metrics count.

    An *item* is a v1 call, an `/entity` call or one `/batch` element; a whole-call result
    (malformed envelope, unauthorized, unknown endpoint, route-based skip, `batch_too_large`,
    `empty_batch`, ...) is one item. `items_consumed` counts distinct items (the item indexes of
    outputs and problems, a whole-call problem being one more), so the identity
    `items_consumed == items_mapped + items_skipped + items_rejected` is a real check that no
    item was both mapped and settled, or settled twice.

    * `items_mapped`: items that produced at least one output, whether or not a destination
      filter then dropped it (filtered outputs are counted in `filtered`, never dead-lettered);
    * `rejected` / `skipped`: records written per reason (one per rejected or skipped item);
    * `outputs`: records produced per (destination name, Pipelines call type);
    * `filtered`: outputs a destination's filters refused, per (destination name, filter name).

    The mappings are read-only (empty ones are shared).
    """

    records: list[Record]
    source: str | None
    items_consumed: int
    items_mapped: int
    rejected: Mapping[Reason, int] = _NO_REASONS
    skipped: Mapping[Reason, int] = _NO_REASONS
    outputs: Mapping[tuple[str, str], int] = _NO_COUNTS
    filtered: Mapping[tuple[str, str], int] = _NO_COUNTS

    @property
    def items_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def items_skipped(self) -> int:
        return sum(self.skipped.values())


_T = TypeVar("_T")
_K = TypeVar("_K")


class Authenticator(Generic[_T]):
    """Track credentials -> the source they name (spec §2 step 4), for the worker and the edge.

    Built from (site id, `api_key_sha256`, value) per source; `lookup` hashes the key and compares
    digests in constant time, and caches successful lookups (at most `cache_size`). The value is
    whatever its user needs per source (the router's compiled routes, the edge's source name).
    Not thread-safe (it owns the caches).
    """

    def __init__(
        self, entries: Iterable[tuple[str, str, _T]], *, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.cache_size = cache_size
        self._by_site: dict[str, list[tuple[bytes, _T]]] = {}
        for site_id, api_key_sha256, value in entries:
            self._by_site.setdefault(site_id, []).append((bytes.fromhex(api_key_sha256), value))
        self.cache: dict[Credentials, _T] = {}
        """Successful lookups (read it directly on a hot path: `cache.get(credentials)`)."""
        self._headers: dict[str, _T] = {}

    def lookup(self, credentials: Credentials) -> _T | Problem:
        """The value of the source these credentials name, or the `unauthorized` Problem saying
        why there is none (never quoting the API key)."""
        found = self.cache.get(credentials)
        if found is not None:
            return found
        # Hash even for an unknown site id, so both failures cost the same.
        digest = sha256(credentials.api_key.encode("utf-8", "surrogatepass")).digest()
        candidates = self._by_site.get(credentials.site_id)
        if candidates is None:
            return Problem(Reason.UNAUTHORIZED, f"unknown site id {_shorten(credentials.site_id)}")
        match = None
        for key_digest, value in candidates:  # no early exit: every candidate is compared
            if hmac.compare_digest(digest, key_digest):
                match = value
        if match is None:
            return Problem(
                Reason.UNAUTHORIZED, f"the API key does not match site id {_shorten(credentials.site_id)}"
            )
        # The cache is keyed by the plaintext credentials. A lookup compares strings only after
        # their (per-process randomised) hashes matched, so it leaks nothing a guess could use.
        _remember(self.cache, credentials, match, self.cache_size)
        return match

    def from_header(self, header: str | None) -> _T | Problem:
        """The value of the source an `Authorization` header names (spec §2 steps 1-4), or the
        `unauthorized` Problem saying why not. Headers that matched are cached as they are."""
        if header is not None:
            found = self._headers.get(header)
            if found is not None:
                return found
        credentials = parse_authorization(header)
        if isinstance(credentials, Problem):
            return credentials
        match = self.lookup(credentials)
        if isinstance(match, Problem):
            return match
        assert header is not None  # parse_authorization refuses a missing header
        _remember(self._headers, header, match, self.cache_size)
        return match


def _remember(cache: dict[_K, _T], key: _K, value: _T, size: int) -> None:
    if len(cache) >= size:
        del cache[next(iter(cache))]
    cache[key] = value


class _Route:
    """A destination as the hot path needs it: topic, filters, and prebuilt count keys."""

    __slots__ = (
        "count_keys",
        "drop_email_only",
        "exclude_events",
        "filtered",
        "include_events",
        "name",
        "topic",
        "types",
    )

    def __init__(self, name: str, destination: Destination) -> None:
        self.name = name
        self.topic = destination.topic
        self.types = destination.types
        self.include_events = destination.include_events
        self.exclude_events = destination.exclude_events or None
        self.drop_email_only = destination.drop_email_only
        self.filtered = destination.has_filters
        self.count_keys = {kind: (name, kind) for kind in CALL_TYPES}

    def refusal(self, output: Output) -> str | None:
        """The name of the first filter that refuses `output`, or None when it is forwarded.

        Event filters look only at `track` calls: page names are URLs by convention (spec §12),
        so page and screen calls are kept or dropped as a whole with `types`.
        """
        if self.types is not None and output.type not in self.types:
            return FILTER_TYPES
        if output.type == "track":
            if self.include_events is not None and output.event not in self.include_events:
                return FILTER_INCLUDE_EVENTS
            if self.exclude_events is not None and output.event in self.exclude_events:
                return FILTER_EXCLUDE_EVENTS
        if self.drop_email_only and output.email_only:
            return FILTER_DROP_EMAIL_ONLY
        return None


class _Source:
    __slots__ = ("header", "name", "routes")

    def __init__(self, source: Source, routes: tuple[_Route, ...]) -> None:
        self.name = source.name
        self.routes = routes
        self.header: Header = (HEADER_SOURCE, source.name.encode())


def _fan_out(
    calls: list[Output], source: _Source, request_header: Header | None, records: list[Record]
) -> tuple[Mapping[tuple[str, str], int], Mapping[tuple[str, str], int]]:
    """Append one record per (output, accepting destination) to `records`; return the counts
    per (destination, type) and per (destination, refusing filter)."""
    output_counts: dict[tuple[str, str], int] = {}
    filtered_counts: dict[tuple[str, str], int] = {}
    routes = source.routes
    for call in calls:
        key = call.key.encode()
        value = call.value
        item, position = call.item_index, call.output_index
        item_header = ITEM_HEADERS[item] if item < INDEX_HEADERS else (HEADER_ITEM_INDEX, str(item).encode())
        output_header = (
            OUTPUT_HEADERS[position]
            if position < INDEX_HEADERS
            else (HEADER_OUTPUT_INDEX, str(position).encode())
        )
        headers = (
            [source.header, item_header, output_header]
            if request_header is None
            else [source.header, request_header, item_header, output_header]
        )
        for route in routes:
            if route.filtered and (refusal := route.refusal(call)) is not None:
                label = (route.name, refusal)
                filtered_counts[label] = filtered_counts.get(label, 0) + 1
                continue
            records.append(Record(route.topic, key, value, headers))
            label = route.count_keys.get(call.type) or (route.name, call.type)
            output_counts[label] = output_counts.get(label, 0) + 1
    return output_counts or _NO_COUNTS, filtered_counts or _NO_COUNTS


class Router:
    """Routes translated calls for one sources file. Not thread-safe (it owns a lookup cache)."""

    def __init__(
        self, config: SourcesConfig, *, sealer: Sealer | None = None, cache_size: int = DEFAULT_CACHE_SIZE
    ) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.config = config
        self.sealer = sealer
        """Seals what dead letters may not keep in the clear (worker/sealing.py); None: redact only."""
        self.cache_size = cache_size
        routes = {name: _Route(name, destination) for name, destination in config.destinations.items()}
        self._auth: Authenticator[_Source] = Authenticator(
            (
                (
                    source.site_id,
                    source.api_key_sha256,
                    _Source(source, tuple(routes[n] for n in source.destinations)),
                )
                for source in config.sources
            ),
            cache_size=cache_size,
        )
        self._cache = self._auth.cache
        self._dead_letter_topic = config.dead_letter_topic
        self._skip_topic = config.skip_topic
        self.topics: frozenset[str] = frozenset(
            [config.dead_letter_topic, config.skip_topic, *(route.topic for route in routes.values())]
        )
        """Every topic this router may produce to."""

    @property
    def cached_credentials(self) -> int:
        """How many successful credential lookups are cached (at most `cache_size`)."""
        return len(self._cache)

    def route(self, raw: bytes, translation: Translation, redrives: int = 0) -> Routed:
        """Turn one consumed envelope (`raw`, the Kafka value) and its translation into records.

        `redrives`: how many times `trackbridge redrive` sent this input back (its
        `cio-redrive-count` header); its problem records carry the count on.

        Never raises for a translation that keeps the `mapping.results` contract; outputs of a
        call settled before authentication (credentials None) break it and raise ValueError.
        """
        credentials = translation.credentials
        source: _Source | None
        if credentials is None:
            source = None
        elif isinstance(credentials, Problem):
            return self._unauthorized(raw, translation, credentials.detail, redrives)
        else:
            source = self._cache.get(credentials)
            if source is None:
                found = self._auth.lookup(credentials)
                if isinstance(found, Problem):
                    return self._unauthorized(raw, translation, found.detail, redrives)
                source = found

        request_id = translation.request_id
        request_header = None if request_id is None else (HEADER_REQUEST_ID, request_id.encode())
        calls = translation.outputs
        records: list[Record] = []
        outputs = filtered = _NO_COUNTS
        if calls:
            if source is None:
                raise ValueError("translation has outputs but was settled before authentication")
            if source.routes:
                outputs, filtered = _fan_out(calls, source, request_header, records)
        # Nearly every call has at most one output item; a batch pays for the set.
        mapped = len(calls) if len(calls) < 2 else len({call.item_index for call in calls})

        if not translation.problems:
            return Routed(
                records=records,
                source=None if source is None else source.name,
                items_consumed=mapped,
                items_mapped=mapped,
                outputs=outputs,
                filtered=filtered,
            )

        rejected: dict[Reason, int] = {}
        skipped: dict[Reason, int] = {}
        items: set[int | None] = {call.item_index for call in calls}
        copy = input_copy(raw, self.sealer)
        for problem in translation.problems:
            items.add(problem.item_index)
            reason = problem.reason
            counts = skipped if reason.kind is Kind.SKIP else rejected
            counts[reason] = counts.get(reason, 0) + 1
            records.append(
                self._problem_record(
                    problem,
                    translation,
                    source=source,
                    copy=copy,
                    request_header=request_header,
                    redrives=redrives,
                )
            )
        return Routed(
            records=records,
            source=None if source is None else source.name,
            items_consumed=len(items),
            items_mapped=mapped,
            rejected=rejected or _NO_REASONS,
            skipped=skipped or _NO_REASONS,
            outputs=outputs,
            filtered=filtered,
        )

    def _unauthorized(self, raw: bytes, translation: Translation, detail: str, redrives: int) -> Routed:
        """spec §2 step 5: the whole call is one `unauthorized` dead letter; nothing is routed."""
        request_id = translation.request_id
        problem = Problem(Reason.UNAUTHORIZED, detail)
        request_header = None if request_id is None else (HEADER_REQUEST_ID, request_id.encode())
        copy = input_copy(raw, self.sealer)
        record = self._problem_record(
            problem, translation, source=None, copy=copy, request_header=request_header, redrives=redrives
        )
        return Routed(
            records=[record],
            source=None,
            items_consumed=1,
            items_mapped=0,
            rejected={Reason.UNAUTHORIZED: 1},
        )

    def _problem_record(
        self,
        problem: Problem,
        translation: Translation,
        *,
        source: _Source | None,
        copy: InputCopy,
        request_header: Header | None,
        redrives: int,
    ) -> Record:
        return problem_record(
            self._skip_topic if problem.reason.kind is Kind.SKIP else self._dead_letter_topic,
            problem,
            copy,
            request_id=translation.request_id,
            received_at=translation.received_at,
            source=None if source is None else source.name,
            source_header=None if source is None else source.header,
            request_header=request_header,
            redrives=redrives,
        )


def _shorten(text: str, limit: int = 64) -> str:
    """`text` quoted for a detail message, cut to `limit` characters (it comes from the caller)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
