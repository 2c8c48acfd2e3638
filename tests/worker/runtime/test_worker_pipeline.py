"""The hot path without a broker: a fetched batch in, records and counts out, never an exception."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from aiokafka.structs import ConsumerRecord, TopicPartition

import mapping
from mapping.reasons import Reason
from mapping.results import Translation
from tests.kafka_helpers import envelope_stream
from worker.config.sources import parse_sources
from worker.metrics import UNKNOWN, Metrics
from worker.routing import Router
from worker.runtime.driver import FetchedBatch
from worker.runtime.pipeline import Pipeline

CONFIG = parse_sources(
    """
dead_letter_topic = "journeys.dlq"
[destinations.analytics]
topic = "dp.out.analytics"
[[sources]]
name = "web-prod"
site_id = "site_prod_1"
api_key_sha256 = "a0693410cc39535f7059c0d21931e776f3923473e2f2761ab585b94071b21625"
destinations = ["analytics"]
"""
)


def batch_of(values: list[bytes | None]) -> FetchedBatch:
    tp = TopicPartition("raw", 0)
    records = [
        ConsumerRecord("raw", 0, offset, 0, 0, None, value, None, 0, len(value or b""), ())
        for offset, value in enumerate(values)
    ]
    return FetchedBatch(0, 0, [(tp, records)])


def test_a_batch_maps_to_exactly_what_the_router_says() -> None:
    values: list[bytes | None] = [*envelope_stream(50, "unit", poison_every=7), None]
    router = Router(CONFIG)
    pipeline = Pipeline(router, mapping.translate, Metrics())
    mapped = pipeline.map(batch_of(values))
    expected = [
        record
        for value in values
        for record in Router(CONFIG).route(value or b"", mapping.translate(value or b"")).records
    ]
    assert mapped.records == expected
    assert len(mapped.durations) == len(values)
    pipeline.settle(mapped)
    get = pipeline.metrics.registry.get_sample_value
    assert get("trackbridge_batch_size_sum") == len(values)
    assert get("trackbridge_mapping_seconds_count") == len(values)
    consumed = sum(
        sample.value
        for family in pipeline.metrics.registry.collect()
        for sample in family.samples
        if sample.name == "trackbridge_envelopes_consumed_total"
    )
    assert consumed == len(values)


def test_a_call_the_worker_fails_on_is_dead_lettered_and_the_batch_goes_on() -> None:
    envelope = {
        "method": "PUT",
        "path": "/api/v1/customers/1",
        "authorization": "Basic c2VjcmV0",
        "request_id": "r",
    }
    poison = json.dumps(envelope).encode()
    good = envelope_stream(3, "ok", poison_every=0)

    def translate(raw: bytes) -> Translation:
        if raw == poison:
            raise RuntimeError("a bug")
        return mapping.translate(raw)

    pipeline = Pipeline(Router(CONFIG), translate, Metrics())
    mapped = pipeline.map(batch_of([good[0], poison, good[1], good[2]]))
    dead = [
        record
        for record in mapped.records
        if dict(record.headers).get("cio-reason") == Reason.INTERNAL_ERROR.value.encode()
    ]
    assert len(dead) == 1 and dead[0].topic == "journeys.dlq"
    value: dict[str, Any] = msgspec.json.decode(dead[0].value)
    assert value["kind"] == "reject" and value["reason"] == Reason.INTERNAL_ERROR.value
    assert value["envelope"]["authorization"] == "<redacted>"  # never persist credentials
    assert "raw[0]@1" in value["detail"]
    others = [record for record in mapped.records if record is not dead[0]]
    assert others == [
        r for v in (good[0], good[1], good[2]) for r in Router(CONFIG).route(v, mapping.translate(v)).records
    ]
    pipeline.settle(mapped)
    get = pipeline.metrics.registry.get_sample_value
    assert (
        get("trackbridge_dead_letters_total", {"reason": Reason.INTERNAL_ERROR.value, "source": UNKNOWN}) == 1
    )


def test_mapping_in_steps_maps_exactly_what_mapping_at_once_does() -> None:
    import asyncio

    values: list[bytes | None] = [*envelope_stream(150, "steps", poison_every=9), None]
    at_once = Pipeline(Router(CONFIG), mapping.translate, Metrics()).map(batch_of(values))
    in_steps = asyncio.run(
        Pipeline(Router(CONFIG), mapping.translate, Metrics()).map_in_steps(batch_of(values), step=7)
    )
    assert in_steps.records == at_once.records
    assert in_steps.ends == at_once.ends and in_steps.calls == at_once.calls
    assert in_steps.received == at_once.received and len(in_steps.durations) == len(values)
