"""The worker's Prometheus metrics: the one place their names, labels and buckets are defined.

Dashboards and alert rules are built against these names; never rename one. `DEFINITIONS` lists
them for docs and checks. Counting is per batch: the hot path adds to plain dicts in a `Tally`,
and `Metrics.count` turns each distinct label set into one `inc` on a cached child, so no label
lookup happens per message. Histograms are observed in bulk too (`BulkHistogram`).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Literal, NamedTuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mapping.reasons import Reason
from worker.routing import Routed

UNKNOWN: Final = "unknown"
"""The label value when a source, endpoint or API version is not known."""

Kind = Literal["counter", "gauge", "histogram"]


class Definition(NamedTuple):
    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str


ENVELOPES_CONSUMED = Definition(
    "trackbridge_envelopes_consumed_total",
    "counter",
    ("source", "api_version", "endpoint"),
    "Input messages (Track API calls) processed, by source, API version and endpoint.",
)
ITEMS_CONSUMED = Definition(
    "trackbridge_items_consumed_total",
    "counter",
    ("source",),
    "Items processed: a call, or one element of a /api/v2/batch call.",
)
ITEMS_MAPPED = Definition(
    "trackbridge_items_mapped_total", "counter", ("source",), "Items that produced at least one output."
)
SKIPPED = Definition(
    "trackbridge_skipped_total", "counter", ("reason", "source"), "Skip records written, by reason code."
)
DEAD_LETTERS = Definition(
    "trackbridge_dead_letters_total",
    "counter",
    ("reason", "source"),
    "Dead-letter records written, by reason code.",
)
OUTPUTS_PRODUCED = Definition(
    "trackbridge_outputs_produced_total",
    "counter",
    ("source", "destination", "type"),
    "Data Pipelines calls produced and acknowledged, per destination and call type.",
)
FILTERED = Definition(
    "trackbridge_filtered_total",
    "counter",
    ("source", "destination", "filter"),
    "Outputs a destination's filter refused, by the first refusing filter.",
)
MAPPING_SECONDS = Definition(
    "trackbridge_mapping_seconds", "histogram", (), "Time to translate and route one envelope."
)
END_TO_END_LATENCY = Definition(
    "trackbridge_end_to_end_latency_seconds",
    "histogram",
    (),
    "From the envelope's received_at to the acknowledgement of all its outputs.",
)
BATCH_SIZE = Definition("trackbridge_batch_size", "histogram", (), "Input records per processed batch.")
CONSUMER_LAG = Definition(
    "trackbridge_consumer_lag",
    "gauge",
    ("topic", "partition"),
    "Records of an assigned input partition not yet processed and acknowledged "
    "(high watermark - acknowledged offset), read at scrape time; left out while unknown "
    "(no broker answered for TRACKBRIDGE_BROKER_TIMEOUT: the high watermark cannot be refreshed).",
)
SECONDS_SINCE_LAST_COMMIT = Definition(
    "trackbridge_seconds_since_last_commit",
    "gauge",
    (),
    "Seconds since offsets were last committed (since the worker started, before the first commit).",
)
PARTITIONS_ASSIGNED = Definition(
    "trackbridge_partitions_assigned", "gauge", (), "Input partitions assigned to this worker."
)
PRODUCE_RETRIES = Definition(
    "trackbridge_produce_retries_total",
    "counter",
    (),
    "Produce attempts of a batch after its first (its input offsets stay uncommitted meanwhile).",
)
RECORDS_RESENT = Definition(
    "trackbridge_records_resent_total",
    "counter",
    (),
    "Records produced again by a retry: duplicates downstream, with the same messageId.",
)
DEAD_LETTERS_BLOCKED = Definition(
    "trackbridge_dead_letters_blocked",
    "gauge",
    (),
    "1 while a dead-letter record cannot be written (the worker retries it; offsets stay "
    "uncommitted), else 0.",
)
REDRIVEN = Definition(
    "trackbridge_redriven_envelopes_total",
    "counter",
    ("source",),
    "Input envelopes that came back from the dead-letter topic through `trackbridge redrive`.",
)

PROCESSING_LATENCY = Definition(
    "trackbridge_processing_latency_seconds",
    "histogram",
    (),
    "From the input record's Kafka timestamp to the acknowledgement of all its outputs: what "
    "replays and backfills of old envelopes do not inflate.",
)
READY = Definition(
    "trackbridge_ready",
    "gauge",
    (),
    "1 while /readyz answers 200 (in the group, not rebalancing, brokers reachable), else 0.",
)
BROKER_UNREACHABLE_SECONDS = Definition(
    "trackbridge_broker_unreachable_seconds",
    "gauge",
    (),
    "Seconds since a broker last answered the worker's periodic metadata request; 0 while they answer.",
)
REBALANCES = Definition(
    "trackbridge_rebalances_total",
    "counter",
    (),
    "Consumer-group rebalances this worker took part in (each new assignment, empty ones included).",
)
COMMIT_FAILURES = Definition(
    "trackbridge_commit_failures_total",
    "counter",
    (),
    "Offset commits that failed (the records after the last commit are processed again).",
)
BUILD_INFO = Definition(
    "trackbridge_build_info",
    "gauge",
    ("version", "python", "faust", "aiokafka"),
    "Always 1; the labels name the running versions of trackbridge, Python, Faust and aiokafka.",
)
PROCESS_CPU = Definition(
    "process_cpu_seconds_total", "counter", (), "CPU time (user + system) of the worker process."
)
PROCESS_RESIDENT_MEMORY = Definition(
    "process_resident_memory_bytes", "gauge", (), "Resident memory of the worker process."
)
PROCESS_VIRTUAL_MEMORY = Definition(
    "process_virtual_memory_bytes", "gauge", (), "Virtual memory of the worker process."
)
PROCESS_OPEN_FDS = Definition("process_open_fds", "gauge", (), "Open file descriptors of the worker process.")
PROCESS_MAX_FDS = Definition("process_max_fds", "gauge", (), "The worker process's file descriptor limit.")
PROCESS_START_TIME = Definition(
    "process_start_time_seconds", "gauge", (), "Start time of the worker process (unix seconds)."
)

DEFINITIONS: Final = (
    ENVELOPES_CONSUMED,
    ITEMS_CONSUMED,
    ITEMS_MAPPED,
    SKIPPED,
    DEAD_LETTERS,
    OUTPUTS_PRODUCED,
    FILTERED,
    MAPPING_SECONDS,
    END_TO_END_LATENCY,
    BATCH_SIZE,
    CONSUMER_LAG,
    SECONDS_SINCE_LAST_COMMIT,
    PARTITIONS_ASSIGNED,
    PRODUCE_RETRIES,
    RECORDS_RESENT,
    DEAD_LETTERS_BLOCKED,
    REDRIVEN,
    PROCESSING_LATENCY,
    READY,
    BROKER_UNREACHABLE_SECONDS,
    REBALANCES,
    COMMIT_FAILURES,
    BUILD_INFO,
    PROCESS_CPU,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_VIRTUAL_MEMORY,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
    PROCESS_START_TIME,
)

MAPPING_BUCKETS: Final = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1)
# Dense between 5 ms and 300 ms, where p50/p99 live, so quantiles read from buckets are close.
LATENCY_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025, 0.03, 0.035, 0.04,
    0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
    1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
BATCH_BUCKETS: Final = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class BulkHistogram(Collector):
    """A label-less Prometheus histogram that takes many observations at once.

    prometheus_client's Histogram takes a lock and scans its buckets per observation (~1.3 µs);
    this one bisects into plain counters, and is read at scrape time. Single-threaded use only
    (the worker's event loop serves both the agent and /metrics).
    """

    def __init__(self, definition: Definition, buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.name = definition.name
        self.documentation = definition.help
        self.bounds = tuple(float(bound) for bound in buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def observe_many(self, values: Iterable[float]) -> None:
        counts, bounds = self.counts, self.bounds
        total = 0.0
        for value in values:
            counts[bisect_left(bounds, value)] += 1
            total += value
        self.sum += total

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, self.sum)
        return [family]


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class Tally:
    """What one batch adds to the counters, keyed by label values; filled per call, counted once."""

    __slots__ = (
        "dead_letters",
        "envelopes",
        "filtered",
        "items_consumed",
        "items_mapped",
        "outputs",
        "redriven",
        "skipped",
    )

    def __init__(self) -> None:
        self.envelopes: dict[tuple[str, str | None], int] = {}
        self.items_consumed: dict[str, int] = {}
        self.items_mapped: dict[str, int] = {}
        self.skipped: dict[tuple[str, str], int] = {}
        self.dead_letters: dict[tuple[str, str], int] = {}
        self.outputs: dict[tuple[str, str, str], int] = {}
        self.filtered: dict[tuple[str, str, str], int] = {}
        self.redriven: dict[str, int] = {}

    def add(self, routed: Routed, endpoint: str | None, weight: int = 1) -> None:
        """Count one call; a `weight` of -1 takes back a call counted before."""
        source = routed.source or UNKNOWN
        key = (source, endpoint)
        self.envelopes[key] = self.envelopes.get(key, 0) + weight
        if routed.items_consumed:
            self.items_consumed[source] = self.items_consumed.get(source, 0) + weight * routed.items_consumed
        if routed.items_mapped:
            self.items_mapped[source] = self.items_mapped.get(source, 0) + weight * routed.items_mapped
        for reason, count in routed.rejected.items():
            label = (reason.value, source)
            self.dead_letters[label] = self.dead_letters.get(label, 0) + weight * count
        for reason, count in routed.skipped.items():
            label = (reason.value, source)
            self.skipped[label] = self.skipped.get(label, 0) + weight * count
        for (destination, kind), count in routed.outputs.items():
            output = (source, destination, kind)
            self.outputs[output] = self.outputs.get(output, 0) + weight * count
        for (destination, refusal), count in routed.filtered.items():
            filtered = (source, destination, refusal)
            self.filtered[filtered] = self.filtered.get(filtered, 0) + weight * count

    def add_refused(self, source: str | None, endpoint: str | None) -> None:
        """A call the broker refused an output of: one envelope, one item, one dead letter
        (`Reason.OUTPUT_REFUSED`)."""
        self._add_dead_call(source or UNKNOWN, endpoint, Reason.OUTPUT_REFUSED)

    def add_redriven(self, source: str | None) -> None:
        """An input `trackbridge redrive` sent back."""
        name = source or UNKNOWN
        self.redriven[name] = self.redriven.get(name, 0) + 1

    def add_internal_error(self) -> None:
        """A call the worker itself failed on: one envelope, one item, one dead letter
        (`Reason.INTERNAL_ERROR`), source unknown."""
        self._add_dead_call(UNKNOWN, None, Reason.INTERNAL_ERROR)

    def _add_dead_call(self, source: str, endpoint: str | None, reason: Reason) -> None:
        envelope = (source, endpoint)
        self.envelopes[envelope] = self.envelopes.get(envelope, 0) + 1
        self.items_consumed[source] = self.items_consumed.get(source, 0) + 1
        label = (reason.value, source)
        self.dead_letters[label] = self.dead_letters.get(label, 0) + 1


def api_version(endpoint: str | None) -> str:
    """`v1.identify` -> `v1`; an endpoint without a version prefix, or none, -> `unknown`."""
    if endpoint is None:
        return UNKNOWN
    prefix = endpoint.partition(".")[0]
    return prefix if len(prefix) >= 2 and prefix[0] == "v" and prefix[1:].isdigit() else UNKNOWN


class Metrics:
    """The worker's metrics in one registry (a fresh one by default, so tests can make their own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # No `*_created` series: they double the series count and nothing reads them (this is
        # process-wide in prometheus_client; every trackbridge process wants it).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.envelopes = _counter(ENVELOPES_CONSUMED, reg)
        self.items_consumed = _counter(ITEMS_CONSUMED, reg)
        self.items_mapped = _counter(ITEMS_MAPPED, reg)
        self.skipped = _counter(SKIPPED, reg)
        self.dead_letters = _counter(DEAD_LETTERS, reg)
        self.outputs = _counter(OUTPUTS_PRODUCED, reg)
        self.filtered = _counter(FILTERED, reg)
        self.mapping_seconds = BulkHistogram(MAPPING_SECONDS, MAPPING_BUCKETS, reg)
        self.latency = BulkHistogram(END_TO_END_LATENCY, LATENCY_BUCKETS, reg)
        self.batch_size = BulkHistogram(BATCH_SIZE, BATCH_BUCKETS, reg)
        self.lag = _LagCollector(reg)
        self.since_commit = Gauge(
            SECONDS_SINCE_LAST_COMMIT.name, SECONDS_SINCE_LAST_COMMIT.help, registry=reg
        )
        self.partitions = Gauge(PARTITIONS_ASSIGNED.name, PARTITIONS_ASSIGNED.help, registry=reg)
        self.produce_retries = _counter(PRODUCE_RETRIES, reg)
        self.records_resent = _counter(RECORDS_RESENT, reg)
        self.dead_letters_blocked = Gauge(DEAD_LETTERS_BLOCKED.name, DEAD_LETTERS_BLOCKED.help, registry=reg)
        self.redriven = _counter(REDRIVEN, reg)
        self.processing_latency = BulkHistogram(PROCESSING_LATENCY, LATENCY_BUCKETS, reg)
        self.ready = Gauge(READY.name, READY.help, registry=reg)
        self.broker_unreachable = Gauge(
            BROKER_UNREACHABLE_SECONDS.name, BROKER_UNREACHABLE_SECONDS.help, registry=reg
        )
        self.rebalances = _counter(REBALANCES, reg)
        self.commit_failures = _CallbackCounter(COMMIT_FAILURES, reg)
        self.build_info = Gauge(BUILD_INFO.name, BUILD_INFO.help, BUILD_INFO.labels, registry=reg)
        self.build_info.labels(*build_versions()).set(1)
        ProcessCollector(registry=reg)
        self._children: dict[tuple[object, tuple[str, ...]], Counter] = {}
        self._endpoint_labels: dict[tuple[str, str | None], tuple[str, str, str]] = {}
        self._started = time.time()
        self._last_commit: Callable[[], float | None] = lambda: None
        self.since_commit.set_function(self._seconds_since_last_commit)

    def know_sources(self, names: Iterable[str]) -> None:
        """Start the per-source series that are rare at 0 (a redrive is rare; a series that is
        missing until it happens breaks `rate()` and every dashboard panel on it)."""
        for name in names:
            self._inc(self.redriven, (name,), 0)

    def watch_commits(self, last_commit_at: Callable[[], float | None]) -> None:
        """Read the last commit's time.time() from `last_commit_at` at scrape time."""
        self._last_commit = last_commit_at

    def _seconds_since_last_commit(self) -> float:
        last = self._last_commit()
        return time.time() - (self._started if last is None else last)

    def count(self, tally: Tally) -> None:
        """Add one batch's tally to the counters: one `inc` per distinct label set."""
        inc = self._inc
        for (source, endpoint), n in tally.envelopes.items():
            labels = self._endpoint_labels.get((source, endpoint))
            if labels is None:
                labels = (source, api_version(endpoint), endpoint or UNKNOWN)
                self._endpoint_labels[(source, endpoint)] = labels
            inc(self.envelopes, labels, n)
        for source, n in tally.items_consumed.items():
            inc(self.items_consumed, (source,), n)
        for source, n in tally.items_mapped.items():
            inc(self.items_mapped, (source,), n)
        for reason_source, n in tally.skipped.items():
            inc(self.skipped, reason_source, n)
        for reason_source, n in tally.dead_letters.items():
            inc(self.dead_letters, reason_source, n)
        for output, n in tally.outputs.items():
            inc(self.outputs, output, n)
        for filtered, n in tally.filtered.items():
            inc(self.filtered, filtered, n)
        for source, n in tally.redriven.items():
            inc(self.redriven, (source,), n)

    def _inc(self, counter: Counter, labels: tuple[str, ...], amount: int) -> None:
        key = (counter, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        child.inc(amount)

    def watch_lag(self, lags: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        """Read (topic, partition, lag) of every assigned partition from `lags` at scrape time."""
        self.lag.source = lags

    def observe_record_times(self, now: float, timestamps_ms: Iterable[int | None]) -> None:
        """Observe the processing latency of records whose Kafka timestamps (ms) are given, all
        acknowledged at `now` (time.time()); records without a timestamp are left out, and a
        timestamp ahead of this clock counts as 0."""
        self.processing_latency.observe_many(
            max(0.0, now - ms / 1000) for ms in timestamps_ms if ms is not None and ms > 0
        )


def build_versions() -> tuple[str, str, str, str]:
    """(trackbridge, Python, faust-streaming, aiokafka) versions, `unknown` for one not installed."""
    import platform
    from importlib import metadata

    def version(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return UNKNOWN

    return (
        version("trackbridge"),
        platform.python_version(),
        version("faust-streaming"),
        version("aiokafka"),
    )


class _CallbackCounter(Collector):
    """A label-less counter whose value is read from `source` at scrape time (a count kept by the
    code that knows it, such as the consumer's commit failures)."""

    def __init__(self, definition: Definition, registry: CollectorRegistry) -> None:
        self.name = definition.name.removesuffix("_total")
        self.documentation = definition.help
        self.source: Callable[[], float] = lambda: 0.0
        registry.register(self)

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, value=self.source())]


class _LagCollector(Collector):
    """`trackbridge_consumer_lag`, computed when scraped, for the partitions assigned right then.

    Read at scrape time rather than set per batch, so a worker that stopped making progress
    shows its lag growing, and a revoked partition's series disappears.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.source: Callable[[], Iterable[tuple[str, int, int]]] = lambda: ()
        registry.register(self)

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(CONSUMER_LAG.name, CONSUMER_LAG.help, labels=CONSUMER_LAG.labels)]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(CONSUMER_LAG.name, CONSUMER_LAG.help, labels=CONSUMER_LAG.labels)
        for topic, partition, lag in self.source():
            family.add_metric([topic, str(partition)], lag)
        return [family]


def _counter(definition: Definition, registry: CollectorRegistry) -> Counter:
    # prometheus_client adds `_total` itself; the definition carries the exposed name.
    return Counter(
        definition.name.removesuffix("_total"), definition.help, definition.labels, registry=registry
    )


def exposed_series(metrics: Metrics) -> Iterator[str]:
    """Names of every series the registry exposes now (for tests and docs)."""
    for family in metrics.registry.collect():
        for sample in family.samples:
            yield sample.name
