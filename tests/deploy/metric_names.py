"""The worker's metrics, as the deploy artifacts (rules, dashboard, live test) may use them.

This is the one list tests/deploy checks against. It is the contract the worker was built to;
when `worker/metrics.py` lands, derive `METRICS` from its registry here and nothing else changes.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Kind = Literal["counter", "gauge", "histogram"]


class Metric(NamedTuple):
    name: str
    kind: Kind
    labels: tuple[str, ...]


METRICS: tuple[Metric, ...] = (
    Metric("trackbridge_envelopes_consumed_total", "counter", ("source", "api_version", "endpoint")),
    Metric("trackbridge_items_consumed_total", "counter", ("source",)),
    Metric("trackbridge_items_mapped_total", "counter", ("source",)),
    Metric("trackbridge_skipped_total", "counter", ("reason", "source")),
    Metric("trackbridge_dead_letters_total", "counter", ("reason", "source")),
    Metric("trackbridge_outputs_produced_total", "counter", ("source", "destination", "type")),
    Metric("trackbridge_filtered_total", "counter", ("source", "destination", "filter")),
    Metric("trackbridge_mapping_seconds", "histogram", ()),
    Metric("trackbridge_end_to_end_latency_seconds", "histogram", ()),
    Metric("trackbridge_batch_size", "histogram", ()),
    Metric("trackbridge_consumer_lag", "gauge", ("topic", "partition")),
    Metric("trackbridge_seconds_since_last_commit", "gauge", ()),
    Metric("trackbridge_partitions_assigned", "gauge", ()),
)

# Labels Prometheus adds to every scraped series (target labels; `pod`, `namespace`, ... when the
# Prometheus operator discovers the target) and the bucket label of histogram series.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container", "endpoint"})

# The job name the rules and the dashboard expect in `up{job=...}` (see deploy/prometheus/rules.yaml).
JOB = "trackbridge"


def series_labels() -> dict[str, frozenset[str]]:
    """Every series name the worker exposes (histogram parts included), with its label names."""
    series: dict[str, frozenset[str]] = {"up": TARGET_LABELS}
    for metric in METRICS:
        labels = frozenset(metric.labels) | TARGET_LABELS
        if metric.kind == "histogram":
            series[f"{metric.name}_bucket"] = labels | {"le"}
            series[f"{metric.name}_sum"] = labels
            series[f"{metric.name}_count"] = labels
        else:
            series[metric.name] = labels
    return series
