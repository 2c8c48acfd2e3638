"""The edge's Prometheus metrics: the one place their names, labels and buckets are defined.

Counted in plain dicts on the request path and turned into samples at scrape time (one process,
one event loop), so a request costs no label lookup; histograms are the worker's `BulkHistogram`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mapping.routes import ENDPOINTS
from worker.edge.answers import Refusal
from worker.metrics import LATENCY_BUCKETS, UNKNOWN, BulkHistogram, Definition

REQUESTS = Definition(
    "trackbridge_edge_requests_total",
    "counter",
    ("endpoint", "status"),
    "Track API requests answered, by endpoint (`unknown` for an unknown path) and HTTP status.",
)
REFUSED = Definition(
    "trackbridge_edge_refused_total",
    "counter",
    ("reason",),
    "Requests answered without producing anything, by reason.",
)
REQUEST_SECONDS = Definition(
    "trackbridge_edge_request_seconds",
    "histogram",
    (),
    "Time from a request's arrival to its answer.",
)
PRODUCE_SECONDS = Definition(
    "trackbridge_edge_produce_seconds",
    "histogram",
    (),
    "Time from handing an envelope to the producer to the broker's acknowledgement (or giving up).",
)
IN_FLIGHT = Definition(
    "trackbridge_edge_requests_in_flight",
    "gauge",
    (),
    "Track API requests received and not yet answered.",
)
RECEIVED_BYTES = Definition(
    "trackbridge_edge_received_bytes_total",
    "counter",
    (),
    "Bytes of request bodies read.",
)
PRODUCED_BYTES = Definition(
    "trackbridge_edge_produced_bytes_total",
    "counter",
    (),
    "Bytes of envelopes the broker acknowledged.",
)
PRODUCER_READY = Definition(
    "trackbridge_edge_producer_ready",
    "gauge",
    (),
    "1 while the producer is connected and the last produce did not fail, else 0.",
)

DEFINITIONS: Final = (
    REQUESTS,
    REFUSED,
    REQUEST_SECONDS,
    PRODUCE_SECONDS,
    IN_FLIGHT,
    RECEIVED_BYTES,
    PRODUCED_BYTES,
    PRODUCER_READY,
)

# Statuses answered to every endpoint, so their series exist (at 0) before the first such answer
# and rate() and ratios have something to work on.
_STATUSES: Final = ("200", "400", "401", "503")


class EdgeMetrics(Collector):
    """The edge's counters and histograms in one registry (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.requests: dict[tuple[str, str], int] = {
            (endpoint.value, status): 0 for endpoint in ENDPOINTS for status in _STATUSES
        }
        self.refused: dict[str, int] = {refusal.value: 0 for refusal in Refusal}
        self.in_flight = 0
        self.received_bytes = 0
        self.produced_bytes = 0
        self.producer_ready: Callable[[], bool] = lambda: False
        self.registry.register(self)
        self.request_seconds = BulkHistogram(REQUEST_SECONDS, LATENCY_BUCKETS, self.registry)
        self.produce_seconds = BulkHistogram(PRODUCE_SECONDS, LATENCY_BUCKETS, self.registry)

    def answered(self, endpoint: str | None, status: int) -> None:
        key = (endpoint or UNKNOWN, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1

    def refuse(self, refusal: Refusal) -> None:
        self.refused[refusal.value] += 1

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            REQUESTS.name.removesuffix("_total"), REQUESTS.help, labels=REQUESTS.labels
        )
        for labels, count in self.requests.items():
            requests.add_metric(labels, count)
        refused = CounterMetricFamily(
            REFUSED.name.removesuffix("_total"), REFUSED.help, labels=REFUSED.labels
        )
        for reason, count in self.refused.items():
            refused.add_metric((reason,), count)
        return [
            requests,
            refused,
            GaugeMetricFamily(IN_FLIGHT.name, IN_FLIGHT.help, value=self.in_flight),
            CounterMetricFamily(
                RECEIVED_BYTES.name.removesuffix("_total"), RECEIVED_BYTES.help, value=self.received_bytes
            ),
            CounterMetricFamily(
                PRODUCED_BYTES.name.removesuffix("_total"), PRODUCED_BYTES.help, value=self.produced_bytes
            ),
            GaugeMetricFamily(
                PRODUCER_READY.name, PRODUCER_READY.help, value=1 if self.producer_ready() else 0
            ),
        ]
