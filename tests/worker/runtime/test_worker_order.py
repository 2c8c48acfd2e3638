"""One person's calls stay in order on every destination across a 4-partition run (spec §14), and
the worker's metrics say what it did."""

from __future__ import annotations

import base64
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable

import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.kafka_helpers import Consume, Produce, ScrapedMetrics, headers_of
from topics.catalog import Catalog, Role
from worker.config.settings import Settings
from worker.local.process import WorkerProcess

pytestmark = pytest.mark.integration

WEB_PROD = "Basic " + base64.b64encode(b"site_prod_1:key_prod_secret").decode()
PEOPLE = 300
CALLS_EACH = 40


def person_calls(seed: int) -> list[tuple[str, bytes]]:
    """(person, envelope) in a random interleaving that keeps each person's own sequence order."""
    rng = random.Random(seed)
    queues = {f"person-{p}": list(range(CALLS_EACH)) for p in range(PEOPLE)}
    calls = []
    while queues:
        person = rng.choice(list(queues))
        seq = queues[person].pop(0)
        if not queues[person]:
            del queues[person]
        body: dict[str, object]
        if seq % 5 == 0:
            method, path, body = "PUT", f"/api/v1/customers/{person}", {"seq": seq}
        else:
            method, path, body = (
                "POST",
                f"/api/v1/customers/{person}/events",
                {"name": "step", "data": {"seq": seq}},
            )
        envelope = {
            "method": method,
            "path": path,
            "authorization": WEB_PROD,
            "body": body,
            "received_at": "2024-05-01T10:00:00Z",
            "request_id": f"{person}-{seq}",
        }
        calls.append((person, json.dumps(envelope).encode()))
    return calls


def seq_of(value: dict[str, object]) -> int:
    fields = value.get("traits") if value["type"] == "identify" else value.get("properties")
    assert isinstance(fields, dict)
    return int(fields["seq"])


def test_per_person_order_holds_on_every_destination(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    catalog = topic_factory()
    assert catalog.input.partitions == 4
    calls = person_calls(seed=7)
    worker = worker_factory()
    produce(kafka_settings.raw_topic, [value for _, value in calls], [person.encode() for person, _ in calls])
    total = PEOPLE * CALLS_EACH

    for spec in catalog.by_role(Role.DESTINATION):
        if spec.destination not in ("analytics", "warehouse"):
            continue
        records = consume(spec.name, until=lambda got: len(got) >= total, timeout=60)
        assert len(records) == total, spec.name
        placed = list(range(spec.partitions))
        partitions: dict[bytes, set[int]] = defaultdict(set)
        sequences: dict[bytes, list[int]] = defaultdict(list)
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            value = json.loads(record.value)
            assert record.key == value["userId"].encode()
            assert headers_of(record)["cio-source"] == "web-prod"
            partitions[record.key].add(record.partition)
            # where every other Kafka client puts the key (the Java client's murmur2)
            assert record.partition == DefaultPartitioner()(record.key, placed, placed)
            sequences[record.key].append(seq_of(value))
        assert len(sequences) == PEOPLE
        for person, seen in sequences.items():
            assert len(partitions[person]) == 1, f"{person!r} spread over partitions {partitions[person]}"
            assert seen == list(range(CALLS_EACH)), f"{person!r} out of order on {spec.name}: {seen[:10]}..."

    deadline = time.monotonic() + 10
    while True:
        metrics = ScrapedMetrics(worker.metrics_text())
        lag = metrics.total("trackbridge_consumer_lag")
        if lag == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lag == 0
    labels = {"source": "web-prod", "api_version": "v1"}
    assert metrics.get_sample_value(
        "trackbridge_envelopes_consumed_total", {**labels, "endpoint": "v1.event"}
    ) == (total * 4 // 5)
    assert metrics.get_sample_value(
        "trackbridge_envelopes_consumed_total", {**labels, "endpoint": "v1.identify"}
    ) == (total // 5)
    assert metrics.get_sample_value("trackbridge_items_mapped_total", {"source": "web-prod"}) == total
    for destination in ("analytics", "warehouse"):
        assert metrics.get_sample_value(
            "trackbridge_outputs_produced_total",
            {"source": "web-prod", "destination": destination, "type": "track"},
        ) == (total * 4 // 5)
    assert metrics.get_sample_value("trackbridge_partitions_assigned") == 4
    assert metrics.get_sample_value("trackbridge_end_to_end_latency_seconds_count") == total
    assert metrics.get_sample_value("trackbridge_mapping_seconds_count") == total
    batches = metrics.get_sample_value("trackbridge_batch_size_count")
    assert batches is not None and 0 < batches < total
    assert metrics.get_sample_value("trackbridge_batch_size_sum") == total
    since_commit = metrics.get_sample_value("trackbridge_seconds_since_last_commit")
    assert since_commit is not None and since_commit < 5
