"""The worker's metrics, as the deploy artifacts (rules, dashboard, live test) may use them.

`METRICS` is `worker.metrics.DEFINITIONS`: the worker's own list is the one source of truth.
What this module adds is the deploy side's view of it: the series names Prometheus stores
(`series_labels`, histogram parts included) and the labels a scrape adds.
"""

from __future__ import annotations

from worker.edge.metrics import DEFINITIONS as EDGE_DEFINITIONS
from worker.metrics import DEFINITIONS, Definition

METRICS: tuple[Definition, ...] = DEFINITIONS + EDGE_DEFINITIONS
"""The worker's metrics, then the edge's (worker/edge/metrics.py)."""

# Labels Prometheus adds to every scraped series (target labels; `pod`, `namespace`, ... when the
# Prometheus operator discovers the target) and the bucket label of histogram series.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container", "endpoint"})

# The job name the rules and the dashboard expect in `up{job=...}` (see deploy/prometheus/rules.yaml).
JOB = "trackbridge"
# The edge's scrape job (deploy/k8s/base/edge-servicemonitor.yaml); the rules never select `up` by it.
EDGE_JOB = "trackbridge-edge"


def exposed_series(metric: Definition) -> dict[str, frozenset[str]]:
    """The series one metric is exposed as, each with its own label names (target labels aside)."""
    labels = frozenset(metric.labels)
    if metric.kind == "histogram":
        return {
            f"{metric.name}_bucket": labels | {"le"},
            f"{metric.name}_sum": labels,
            f"{metric.name}_count": labels,
        }
    return {metric.name: labels}


def series_labels() -> dict[str, frozenset[str]]:
    """Every series name the worker exposes (histogram parts included), with its label names."""
    series: dict[str, frozenset[str]] = {"up": TARGET_LABELS}
    for metric in METRICS:
        for name, labels in exposed_series(metric).items():
            series[name] = labels | TARGET_LABELS
    return series
