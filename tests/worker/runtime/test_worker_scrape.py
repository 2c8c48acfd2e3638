"""A real worker's /metrics, /healthz and /readyz, read over HTTP the way Prometheus and the kubelet do."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from mapping.reasons import Kind, Reason
from tests.kafka_helpers import Produce, ScrapedMetrics, envelope_stream, vector_cases, vector_value
from topics.catalog import Catalog
from worker.config.settings import Settings
from worker.local.process import WorkerProcess

pytestmark = pytest.mark.integration

ITEMS = {
    "consumed": "trackbridge_items_consumed_total",
    "mapped": "trackbridge_items_mapped_total",
    "skipped": "trackbridge_skipped_total",
    "dead_lettered": "trackbridge_dead_letters_total",
}


def scrape(worker: WorkerProcess) -> ScrapedMetrics:
    """/metrics over HTTP, parsed by prometheus_client's text parser."""
    return ScrapedMetrics(worker.metrics_text())


def status(worker: WorkerProcess, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def items_of(case: dict[str, Any]) -> int:
    """How many items a vector is: each element of a /api/v2/batch call that is processed item by
    item, else one (a plain call, or a call refused as a whole: unparseable, unauthorized, a batch
    that is not an array, too large or empty -- the vectors show those as a reason and no output)."""
    envelope = case["envelope"]
    body = envelope.get("body")
    batch = body.get("batch") if isinstance(body, dict) else None
    whole_call_refused = case["expect_reason"] is not None and not case["expect"]
    is_batch = envelope.get("path") == "/api/v2/batch" and isinstance(batch, list)
    if is_batch and batch and not whole_call_refused:
        return len(batch)
    return 1


def expected_items(cases: list[dict[str, Any]]) -> dict[str, int]:
    """The item counts the vectors call for: every vector names at most one reason (one item
    skipped or dead-lettered); every other item maps."""
    totals = dict.fromkeys(ITEMS, 0)
    for case in cases:
        items = items_of(case)
        totals["consumed"] += items
        reason = case["expect_reason"]
        if reason is None:
            totals["mapped"] += items
            continue
        totals["mapped"] += items - 1
        totals["dead_lettered" if Reason(reason).kind is Kind.REJECT else "skipped"] += 1
    return totals


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def test_accounting_identity_holds_at_scrape_after_mixed_run(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
) -> None:
    cases = vector_cases()
    expected = expected_items(cases)
    # The mix this test is about: malformed and unauthorized calls, skips, batches with bad items.
    reasons = {case["expect_reason"] for case in cases}
    assert {"malformed_envelope", "unauthorized", "empty_batch"} <= reasons
    assert any(items_of(case) > 1 and case["expect_reason"] for case in cases)
    assert min(expected.values()) > 0

    topic_factory()
    worker = worker_factory()
    produce(kafka_settings.raw_topic, [vector_value(case["envelope"]) for case in cases])

    def settled() -> bool:
        metrics = scrape(worker)
        return (
            metrics.total("trackbridge_envelopes_consumed_total") == len(cases)
            and metrics.total(ITEMS["consumed"]) == expected["consumed"]
        )

    wait_for(settled, 60, f"{len(cases)} envelopes to be counted")
    time.sleep(1.0)  # anything counted late would show now
    metrics = scrape(worker)
    totals = {what: metrics.total(name) for what, name in ITEMS.items()}
    assert totals["consumed"] == totals["mapped"] + totals["skipped"] + totals["dead_lettered"]
    assert totals == expected
    assert metrics.total("trackbridge_envelopes_consumed_total") == len(cases)


def test_lag_falls_to_its_floor_once_drained(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
) -> None:
    """A backlog produced before the worker starts shows as lag per partition, which falls as it
    drains and settles at a floor.

    The floor is not asserted to be 0: the embedded broker (Tansu) reports a partition's end offset
    as the start of its last stored record batch + 1, not the offset after its last record, so a
    drained partition's `trackbridge_consumer_lag` is off by up to that batch's size. So the test
    ends every partition with a batch of one record (one produce request of one record) and
    asserts what holds whatever the broker's error: the lag is never negative, it rises with the
    backlog, it is no higher once drained than during the backlog, and it reaches a stable floor no
    larger than the last batch (one record).
    """
    topic_factory()
    partitions = kafka_settings.input_partitions
    backlog = envelope_stream(10_000, "backlog", poison_every=0)
    produce(kafka_settings.raw_topic, backlog)
    # Then one produce request of one record per partition, until every partition has had one:
    # each partition's last stored batch is a single record.
    tails: set[int] = set()
    tail_count = 0
    while len(tails) < partitions:
        assert tail_count < 1000, f"no key reached partitions {set(range(partitions)) - tails}"
        key = f"tail-{tail_count}"
        value = envelope_stream(1, key, poison_every=0)
        [(partition, _)] = produce(kafka_settings.raw_topic, value, [key.encode()])
        tails.add(partition)
        tail_count += 1

    worker = worker_factory(wait=False)
    wait_for(worker.serving, 60, "the worker's own web server")
    history: dict[str, list[float]] = {}
    stable_for = 0
    previous: dict[str, float] | None = None
    deadline = time.monotonic() + 60
    while stable_for < 10:  # ten identical scrapes in a row, 0.1 s apart, with everything consumed
        assert time.monotonic() < deadline, f"lag never settled: {history}"
        metrics = scrape(worker)
        lags = {
            dict(labels)["partition"]: value
            for (name, labels), value in metrics.samples.items()
            if name == "trackbridge_consumer_lag"
        }
        for partition, lag in lags.items():
            history.setdefault(partition, []).append(lag)
        drained = metrics.total("trackbridge_envelopes_consumed_total") >= len(backlog) + tail_count
        stable_for = stable_for + 1 if drained and lags == previous and len(lags) == partitions else 0
        previous = lags
        time.sleep(0.1)

    assert all(lag >= 0 for lags in history.values() for lag in lags), history
    assert max(max(lags) for lags in history.values()) > 1, "no scrape saw the backlog"
    assert previous is not None
    for partition, floor in previous.items():
        assert floor <= max(history[partition]), partition
        assert floor <= 1, f"partition {partition}: a floor of {floor} is more than its last batch"


def test_healthz_and_readyz_answer_200_once_assigned(
    topic_factory: Callable[..., Catalog], worker_factory: Callable[..., WorkerProcess]
) -> None:
    topic_factory()
    worker = worker_factory()  # returns once /readyz has answered 200
    assert status(worker, "/healthz") == 200
    assert status(worker, "/readyz") == 200
    assert scrape(worker).total("trackbridge_partitions_assigned") > 0
