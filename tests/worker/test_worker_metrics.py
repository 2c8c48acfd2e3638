"""The metrics module: fixed names and labels, per-batch counting, bulk histograms, through the registry."""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mapping.reasons import Reason
from worker.metrics import (
    DEFINITIONS,
    LATENCY_BUCKETS,
    UNKNOWN,
    Metrics,
    Tally,
    api_version,
)
from worker.routing import Routed

EXPECTED = {
    "trackbridge_envelopes_consumed_total": ("counter", ("source", "api_version", "endpoint")),
    "trackbridge_items_consumed_total": ("counter", ("source",)),
    "trackbridge_items_mapped_total": ("counter", ("source",)),
    "trackbridge_skipped_total": ("counter", ("reason", "source")),
    "trackbridge_dead_letters_total": ("counter", ("reason", "source")),
    "trackbridge_outputs_produced_total": ("counter", ("source", "destination", "type")),
    "trackbridge_filtered_total": ("counter", ("source", "destination", "filter")),
    "trackbridge_mapping_seconds": ("histogram", ()),
    "trackbridge_end_to_end_latency_seconds": ("histogram", ()),
    "trackbridge_batch_size": ("histogram", ()),
    "trackbridge_consumer_lag": ("gauge", ("topic", "partition")),
    "trackbridge_seconds_since_last_commit": ("gauge", ()),
    "trackbridge_partitions_assigned": ("gauge", ()),
    "trackbridge_produce_retries_total": ("counter", ()),
    "trackbridge_records_resent_total": ("counter", ()),
    "trackbridge_dead_letters_blocked": ("gauge", ()),
    "trackbridge_redriven_envelopes_total": ("counter", ("source",)),
    "trackbridge_processing_latency_seconds": ("histogram", ()),
    "trackbridge_ready": ("gauge", ()),
    "trackbridge_broker_unreachable_seconds": ("gauge", ()),
    "trackbridge_rebalances_total": ("counter", ()),
    "trackbridge_commit_failures_total": ("counter", ()),
    "trackbridge_build_info": ("gauge", ("version", "python", "faust", "aiokafka")),
    "process_cpu_seconds_total": ("counter", ()),
    "process_resident_memory_bytes": ("gauge", ()),
    "process_virtual_memory_bytes": ("gauge", ()),
    "process_open_fds": ("gauge", ()),
    "process_max_fds": ("gauge", ()),
    "process_start_time_seconds": ("gauge", ()),
}


def test_names_kinds_and_labels_are_the_published_ones() -> None:
    assert {d.name: (d.kind, d.labels) for d in DEFINITIONS} == EXPECTED


def test_the_registry_exposes_exactly_the_definitions() -> None:
    metrics = Metrics()
    tally = Tally()
    tally.add(_routed(), "v1.identify")
    metrics.count(tally)
    metrics.watch_lag(lambda: [("raw", 0, 3)])
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
    }
    # The text format names counters without `_total`.
    assert families == {d.name.removesuffix("_total"): d.kind for d in DEFINITIONS}


def _routed(source: str | None = "web-prod") -> Routed:
    return Routed(
        records=[],
        source=source,
        items_consumed=4,
        items_mapped=2,
        rejected={Reason.INVALID_BODY: 1},
        skipped={Reason.EMPTY_RELATIONSHIPS: 1},
        outputs={("analytics", "identify"): 2, ("warehouse", "group"): 1},
        filtered={("crm", "types"): 1},
    )


def test_a_batch_tally_counts_once_per_label_set() -> None:
    metrics = Metrics()
    tally = Tally()
    for _ in range(3):
        tally.add(_routed(), "v2.batch")
    tally.add(_routed(None), None)
    tally.add_internal_error()
    metrics.count(tally)
    metrics.count(tally)  # a second batch with the same label sets
    get = metrics.registry.get_sample_value
    assert (
        get(
            "trackbridge_envelopes_consumed_total",
            {"source": "web-prod", "api_version": "v2", "endpoint": "v2.batch"},
        )
        == 6
    )
    assert (
        get(
            "trackbridge_envelopes_consumed_total",
            {"source": UNKNOWN, "api_version": UNKNOWN, "endpoint": UNKNOWN},
        )
        == 4  # the routed call without a source, and the internal error, in each of 2 batches
    )
    assert get("trackbridge_items_consumed_total", {"source": "web-prod"}) == 24
    assert get("trackbridge_items_consumed_total", {"source": UNKNOWN}) == 10
    assert get("trackbridge_items_mapped_total", {"source": "web-prod"}) == 12
    assert get("trackbridge_dead_letters_total", {"reason": "invalid_body", "source": "web-prod"}) == 6
    assert get("trackbridge_dead_letters_total", {"reason": "internal_error", "source": UNKNOWN}) == 2
    assert get("trackbridge_skipped_total", {"reason": "empty_relationships", "source": "web-prod"}) == 6
    assert (
        get(
            "trackbridge_outputs_produced_total",
            {"source": "web-prod", "destination": "analytics", "type": "identify"},
        )
        == 12
    )
    assert (
        get("trackbridge_filtered_total", {"source": "web-prod", "destination": "crm", "filter": "types"})
        == 6
    )


def test_bulk_histograms_expose_cumulative_buckets() -> None:
    metrics = Metrics()
    metrics.latency.observe_many([0.004, 0.004, 0.2, 400.0])
    metrics.latency.observe(0.001)
    get = metrics.registry.get_sample_value
    assert get("trackbridge_end_to_end_latency_seconds_count") == 5
    assert get("trackbridge_end_to_end_latency_seconds_sum") == pytest.approx(400.209)
    assert get("trackbridge_end_to_end_latency_seconds_bucket", {"le": "0.001"}) == 1  # le is inclusive
    assert get("trackbridge_end_to_end_latency_seconds_bucket", {"le": "0.005"}) == 3
    assert get("trackbridge_end_to_end_latency_seconds_bucket", {"le": "0.2"}) == 4
    assert get("trackbridge_end_to_end_latency_seconds_bucket", {"le": repr(float(LATENCY_BUCKETS[-1]))}) == 4
    assert get("trackbridge_end_to_end_latency_seconds_bucket", {"le": "+Inf"}) == 5


def test_gauges_lag_commit_age_and_assignment() -> None:
    metrics = Metrics()
    assigned = [("raw", 1, 10), ("raw", 2, 0)]
    metrics.watch_lag(lambda: assigned)
    get = metrics.registry.get_sample_value
    assert get("trackbridge_consumer_lag", {"topic": "raw", "partition": "1"}) == 10
    assigned = [("raw", 2, 0)]  # read at scrape time: a revoked partition's series goes away
    assert get("trackbridge_consumer_lag", {"topic": "raw", "partition": "1"}) is None
    assert get("trackbridge_consumer_lag", {"topic": "raw", "partition": "2"}) == 0
    since = get("trackbridge_seconds_since_last_commit")
    assert since is not None and 0 <= since < 5
    metrics.watch_commits(lambda: 0.0)
    since = get("trackbridge_seconds_since_last_commit")
    assert since is not None and since > 1e9
    metrics.partitions.set(4)
    assert get("trackbridge_partitions_assigned") == 4
    assert not math.isnan(since)


@pytest.mark.parametrize(
    ("endpoint", "version"),
    [("v1.identify", "v1"), ("v2.batch", "v2"), (None, UNKNOWN), ("push", UNKNOWN), ("vx.y", UNKNOWN)],
)
def test_api_version_comes_from_the_endpoint_name(endpoint: str | None, version: str) -> None:
    assert api_version(endpoint) == version
