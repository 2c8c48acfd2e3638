"""The series names the deploy artifacts are checked against are the ones the worker exposes.

`metric_names.METRICS` is `worker.metrics.DEFINITIONS`, so comparing the two lists would prove
nothing. What can go wrong is the step from a definition to the series Prometheus stores
(`_total` on counters, `_bucket`/`_sum`/`_count` on histograms, label names, `le`): here the
worker's real registry, with a child in every metric, is scraped in the text format and compared
with `metric_names.exposed_series`.
"""

from __future__ import annotations

from metric_names import METRICS, exposed_series
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mapping.reasons import Reason
from worker.edge.answers import Refusal
from worker.edge.metrics import EdgeMetrics
from worker.metrics import Metrics, Tally
from worker.routing import Routed


def _busy_metrics() -> Metrics:
    """A registry in which every metric has at least one labelled child and sample."""
    metrics = Metrics()
    tally = Tally()
    tally.add(
        Routed(
            records=[],
            source="web-prod",
            items_consumed=3,
            items_mapped=1,
            rejected={Reason.INVALID_BODY: 1},
            skipped={Reason.EMPTY_RELATIONSHIPS: 1},
            outputs={("analytics", "identify"): 1},
            filtered={("warehouse", "types"): 1},
        ),
        "v1.identify",
    )
    metrics.count(tally)
    for histogram in (
        metrics.mapping_seconds,
        metrics.latency,
        metrics.batch_size,
        metrics.processing_latency,
    ):
        histogram.observe(1.0)
    metrics.watch_lag(lambda: [("journeys.track.raw", 0, 5)])
    metrics.partitions.set(1)
    metrics.know_sources(["web-prod"])
    return metrics


def _busy_edge_metrics() -> EdgeMetrics:
    metrics = EdgeMetrics()
    metrics.answered("v1.identify", 200)
    metrics.refuse(Refusal.UNAUTHORIZED)
    metrics.request_seconds.observe(0.01)
    metrics.produce_seconds.observe(0.01)
    return metrics


def test_worker_and_edge_expose_exactly_the_series_the_deploy_artifacts_are_checked_against() -> None:
    text = generate_latest(_busy_metrics().registry).decode()
    text += generate_latest(_busy_edge_metrics().registry).decode()
    exposed: dict[str, frozenset[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exposed[sample.name] = exposed.get(sample.name, frozenset()) | frozenset(sample.labels)
    contract = {name: labels for metric in METRICS for name, labels in exposed_series(metric).items()}
    relabelled = sorted(name for name in exposed.keys() & contract.keys() if exposed[name] != contract[name])
    assert exposed == contract, (
        f"exposed only: {sorted(set(exposed) - set(contract))}; "
        f"in metric_names only: {sorted(set(contract) - set(exposed))}; "
        f"other labels: {relabelled}"
    )
