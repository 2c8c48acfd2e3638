"""At-least-once, end to end on a real broker: crashes, clean stops, a late broker, unacknowledged outputs."""

from __future__ import annotations

import json
import random
import time
import urllib.error
from collections import defaultdict
from collections.abc import Callable

import pytest

from tests.kafka_helpers import (
    Consume,
    KafkaProxy,
    Produce,
    RecordId,
    ScrapedMetrics,
    committed_offsets,
    consume_records,
    envelope_stream,
    expected_by_input,
    expected_records,
    headers_of,
    produce_records,
    record_id,
    with_settings,
)
from topics.catalog import Catalog, Role
from worker.config.settings import Settings
from worker.local.embedded import EmbeddedBroker, free_port
from worker.local.process import WorkerProcess

pytestmark = pytest.mark.integration


def output_topics(catalog: Catalog) -> list[str]:
    return [spec.name for spec in catalog.topics if spec.role is not Role.INPUT]


def read_outputs(
    consume: Consume, catalog: Catalog, want: set[RecordId], timeout: float
) -> dict[RecordId, list[bytes]]:
    """Every copy of every record on the output topics, by record id; waits until `want` are all there."""
    copies: dict[RecordId, list[bytes]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    for topic in output_topics(catalog):
        wanted = {rid for rid in want if rid[0] == topic}

        def complete(records: list[object], topic: str = topic, wanted: set[RecordId] = wanted) -> bool:
            ids = {record_id(topic, headers_of(r), r.value) for r in records}  # type: ignore[attr-defined]
            return wanted <= ids

        for record in consume(topic, until=complete, timeout=max(1.0, deadline - time.monotonic())):
            copies[record_id(topic, headers_of(record), record.value)].append(record.value)
    return copies


def consumed(worker: WorkerProcess) -> float:
    """Envelopes this worker process has handled so far (its own counter)."""
    try:
        return ScrapedMetrics(worker.metrics_text()).total("trackbridge_envelopes_consumed_total")
    except OSError:
        return 0.0


def test_sigkill_during_stream_loses_nothing(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    catalog = topic_factory()
    values = envelope_stream(60_000, "kill")
    expected = expected_records(kafka_settings, values)
    placed = produce(kafka_settings.raw_topic, values, [str(i % 1000).encode() for i in range(len(values))])
    ends: dict[int, int] = defaultdict(int)
    for partition, offset in placed:
        ends[partition] = max(ends[partition], offset + 1)

    kills = 0
    for _ in range(5):
        worker = worker_factory()
        # Kill once this process has handled a random number of envelopes (some batches
        # committed, some in flight): a random point of the stream, whatever the machine's speed.
        threshold = rng.randrange(1_000, 12_000)
        deadline = time.monotonic() + 20
        while consumed(worker) < threshold and time.monotonic() < deadline:
            time.sleep(0.02)
        worker.kill()
        committed = committed_offsets(kafka_settings, kafka_settings.raw_topic)
        mid_stream = any(committed.get(partition, 0) < end for partition, end in ends.items())
        print(f"seed {seed}: kill {kills + 1}, committed {dict(committed)} of {dict(ends)}")
        if not mid_stream:
            break
        kills += 1
    assert kills >= 5, f"only {kills} kills landed mid-stream (seed {seed}); make the stream longer"

    worker = worker_factory()
    copies = read_outputs(consume, catalog, set(expected), timeout=120)
    assert worker.stop() == 0

    missing = set(expected) - set(copies)
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:3]} (seed {seed})"
    unexpected = set(copies) - set(expected)
    assert not unexpected, f"records nobody asked for, e.g. {sorted(unexpected)[:3]}"
    duplicated = 0
    for rid, values_seen in copies.items():
        first = json.loads(values_seen[0])
        assert first == json.loads(expected[rid])
        for again in values_seen[1:]:
            duplicated += 1
            copy = json.loads(again)
            if "messageId" in first:
                assert copy["messageId"] == first["messageId"], rid
            assert again == values_seen[0], rid
    print(f"seed {seed}: {len(expected)} records, {duplicated} duplicates after {kills} kills")
    assert committed_offsets(kafka_settings, kafka_settings.raw_topic) == dict(ends)


def test_sigterm_exits_zero_with_offsets_committed(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    catalog = topic_factory()
    values = envelope_stream(30_000, "term")
    placed = produce(kafka_settings.raw_topic, values)
    by_input = expected_by_input(kafka_settings, values)

    worker = worker_factory()
    time.sleep(0.3)
    started = time.monotonic()
    assert worker.stop(timeout=30) == 0
    print(f"stopped in {time.monotonic() - started:.2f} s")
    assert "Traceback" not in worker.log_text()

    committed = committed_offsets(kafka_settings, kafka_settings.raw_topic)
    assert committed, "nothing committed"
    done = {i for i, (partition, offset) in enumerate(placed) if offset < committed.get(partition, 0)}
    assert 0 < len(done) < len(values), "stop the worker mid-stream: make the stream longer"
    must = {rid for i in done for rid in by_input[i]}
    must_not = {rid for i in range(len(values)) if i not in done for rid in by_input[i]}
    copies = read_outputs(consume, catalog, must, timeout=30)
    assert must <= set(copies), "an input below the committed offset has no outputs"
    assert not (must_not & set(copies)), (
        "outputs of an input above the committed offset: the batch was not committed"
    )
    assert all(len(seen) == 1 for seen in copies.values()), "a clean stop produced duplicates"


def test_broker_down_at_start_waits_then_proceeds(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    port = free_port()
    settings = with_settings(kafka_settings, bootstrap_servers=(f"127.0.0.1:{port}",))
    worker = worker_factory(settings, wait=False)
    time.sleep(3)
    assert worker.returncode is None, worker.log_text()
    assert "not reachable" in worker.log_text()
    assert worker.healthy(), "alive while waiting: a liveness probe must not restart it"
    assert not worker.ready()
    assert not worker.serving()
    with pytest.raises(urllib.error.HTTPError, match="503"):
        worker.metrics_text()  # Prometheus records the worker as down until it reaches Kafka

    with EmbeddedBroker(port=port):
        catalog = topic_factory(settings)
        worker.wait_ready(60)
        assert worker.serving()
        values = envelope_stream(200, "late", poison_every=0)
        expected = expected_records(settings, values)
        produce_records(settings, settings.raw_topic, values)
        copies = _read(settings, catalog, set(expected))
        assert set(expected) <= set(copies)
        assert worker.stop() == 0


def test_failure_before_ack_leaves_offset_uncommitted(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    broker_port, proxy_port = free_port(), free_port()
    settings = with_settings(
        kafka_settings,
        bootstrap_servers=(f"127.0.0.1:{proxy_port}",),
        produce_timeout=2.0,
        commit_interval=0.2,
    )
    with (
        EmbeddedBroker(port=broker_port, advertised_port=proxy_port),
        KafkaProxy(broker_port, proxy_port) as proxy,
    ):
        catalog = topic_factory(settings)
        values = envelope_stream(500, "noack", poison_every=0)
        expected = expected_records(settings, values)
        produce_records(settings, settings.raw_topic, values)

        proxy.drop_produce = True
        worker = worker_factory(settings)
        deadline = time.monotonic() + 30
        while "were not acknowledged" not in worker.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "were not acknowledged" in worker.log_text()
        assert proxy.dropped > 0
        time.sleep(1.5)  # several commit intervals with the batch unacknowledged
        assert committed_offsets(settings, settings.raw_topic) == {}, (
            "committed before the outputs were acked"
        )
        assert worker.returncode is None, "the worker must retry, not crash"

        proxy.drop_produce = False
        copies = _read(settings, catalog, set(expected), timeout=60)
        assert set(expected) <= set(copies)
        deadline = time.monotonic() + 10
        while sum(committed_offsets(settings, settings.raw_topic).values()) < len(values):
            assert time.monotonic() < deadline, "offsets not committed once the outputs were acknowledged"
            time.sleep(0.2)
        assert worker.stop() == 0


def _read(
    settings: Settings, catalog: Catalog, want: set[RecordId], timeout: float = 30
) -> dict[RecordId, list[bytes]]:
    def consume(
        topic: str, until: Callable[[list[object]], bool] | None = None, timeout: float = 10.0
    ) -> list[object]:
        return consume_records(settings, topic, until, timeout)

    return read_outputs(consume, catalog, want, timeout)


def test_rebalance_hands_partitions_over_without_loss(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    """Two workers share the group; one joins mid-stream, then the first leaves (SIGTERM): every
    partition changes hands twice while batches are in flight, and nothing is lost or skipped."""
    catalog = topic_factory()
    values = envelope_stream(30_000, "rebalance")
    expected = expected_records(kafka_settings, values)
    produce(kafka_settings.raw_topic, values, [str(i % 500).encode() for i in range(len(values))])

    first = worker_factory()
    while consumed(first) < 3_000:
        time.sleep(0.02)
    second = worker_factory()  # ready = assigned: the group rebalanced under the first one
    second_metrics = ScrapedMetrics(second.metrics_text())
    assert 0 < (second_metrics.get_sample_value("trackbridge_partitions_assigned") or 0) < 4
    assert first.stop() == 0
    deadline = time.monotonic() + 30
    while ScrapedMetrics(second.metrics_text()).get_sample_value("trackbridge_partitions_assigned") != 4:
        assert time.monotonic() < deadline, "the remaining worker never got every partition"
        time.sleep(0.1)

    copies = read_outputs(consume, catalog, set(expected), timeout=60)
    missing = set(expected) - set(copies)
    assert not missing, f"{len(missing)} records lost in the rebalances, e.g. {sorted(missing)[:3]}"
    duplicates = sum(len(seen) - 1 for seen in copies.values())
    print(f"{len(expected)} records, {duplicates} produced twice across two clean rebalances")
    assert all(len(set(seen)) == 1 for seen in copies.values())
    assert second.stop() == 0
