"""`Pipeline.deliver` against a scripted producer: a permanent refusal dead-letters its call once and
the batch goes on; a retry sends only what was not acknowledged (and what follows it under the same
key); a dead letter that cannot be written at all blocks loudly, once."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

import mapping
from tests.worker.runtime.test_worker_pipeline import CONFIG, batch_of
from worker.config.sources import parse_sources
from worker.metrics import Metrics
from worker.records import HEADER_REDRIVES, ProblemRecord, Record
from worker.routing import Router
from worker.runtime.pipeline import Pipeline

DLQ = CONFIG.dead_letter_topic
AUTH = "Basic c2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0"


def identify(person: int, request: str, size: int = 10) -> bytes:
    return json.dumps(
        {
            "method": "PUT",
            "path": f"/api/v1/customers/{person}",
            "authorization": AUTH,
            "body": {"blob": "x" * size},
            "received_at": "2024-05-01T10:00:00Z",
            "request_id": request,
        }
    ).encode()


class Producer:
    """The pipeline's `Send` (worker/produce/sender.py): one call per attempt, whose
    `verdict(record, attempt)` says what becomes of each record: None (acknowledged) or the
    exception it fails with."""

    def __init__(self, verdict: Callable[[Record, int], BaseException | None]) -> None:
        self.verdict = verdict
        self.sent: list[tuple[int, Record]] = []
        self.attempt = 0

    async def send(
        self, records: Sequence[Record], indexes: Sequence[int]
    ) -> list[tuple[int, BaseException]]:
        failures = []
        for index in indexes:
            record = records[index]
            self.sent.append((self.attempt, record))
            error = self.verdict(record, self.attempt)
            if error is not None:
                failures.append((index, error))
        self.attempt += 1
        return failures


def deliver(pipeline: Pipeline, values: list[bytes], producer: Producer) -> Any:
    mapped = pipeline.map(batch_of(values))
    assert asyncio.run(pipeline.deliver(mapped, producer.send, lambda: True))
    pipeline.settle(mapped)
    return mapped


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    monkeypatch.setattr("worker.runtime.pipeline.RETRY_FIRST_DELAY", 0.01)
    return Pipeline(Router(CONFIG), mapping.translate, Metrics())


def test_a_refused_output_dead_letters_its_call_once_and_the_batch_goes_on(pipeline: Pipeline) -> None:
    values = [identify(1, "a"), identify(2, "big", size=900), identify(3, "c")]

    def verdict(record: Record, attempt: int) -> BaseException | None:
        too_big = record.topic != DLQ and b"x" * 900 in record.value
        return MessageSizeTooLargeError() if too_big else None

    producer = Producer(verdict)
    deliver(pipeline, values, producer)

    dead = [record for _, record in producer.sent if record.topic == DLQ]
    assert len(dead) == 1
    value = msgspec.json.decode(dead[0].value, type=ProblemRecord)
    assert (value.reason.value, value.request_id, value.source) == ("output_refused", "big", "web-prod")
    outputs = [json.loads(r.value)["userId"] for _, r in producer.sent if r.topic != DLQ]
    assert outputs == ["1", "2", "3"]  # sent once each: no retry, no re-send
    assert {attempt for attempt, _ in producer.sent} == {0, 1}
    get = pipeline.metrics.registry.get_sample_value
    assert get("trackbridge_dead_letters_total", {"reason": "output_refused", "source": "web-prod"}) == 1
    assert get("trackbridge_items_mapped_total", {"source": "web-prod"}) == 2
    assert get("trackbridge_items_consumed_total", {"source": "web-prod"}) == 3
    assert get("trackbridge_produce_retries_total") == 0


def test_a_retry_sends_only_what_was_not_acknowledged_and_what_follows_it_by_key(pipeline: Pipeline) -> None:
    # Person 1's first call fails once; its second call (same key) was acknowledged after it.
    values = [identify(1, "a"), identify(2, "b"), identify(1, "c"), identify(3, "d")]

    def verdict(record: Record, attempt: int) -> BaseException | None:
        return KafkaTimeoutError() if attempt == 0 and _request(record) == "a" else None

    producer = Producer(verdict)
    deliver(pipeline, values, producer)

    retried = [_request(record) for attempt, record in producer.sent if attempt == 1]
    assert retried == ["a", "c"]  # not b, not d; c again so person 1 ends in order
    assert pipeline.metrics.registry.get_sample_value("trackbridge_produce_retries_total") == 1
    assert pipeline.metrics.registry.get_sample_value("trackbridge_records_resent_total") == 1


def test_a_dead_letter_that_cannot_be_written_blocks_loudly_once(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    values = [b"not json", identify(1, "a")]

    def verdict(record: Record, attempt: int) -> BaseException | None:
        return MessageSizeTooLargeError() if record.topic == DLQ and attempt < 6 else None

    producer = Producer(verdict)
    seen_blocked: list[bool] = []
    gauge = pipeline.metrics.dead_letters_blocked
    original_set = gauge.set

    def spy(value: float) -> None:
        seen_blocked.append(bool(value))
        original_set(value)

    gauge.set = spy  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="worker.runtime.pipeline"):
        deliver(pipeline, values, producer)

    assert seen_blocked == [True, False]
    blocked_lines = [r for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(blocked_lines) == 1
    assert not pipeline.blocked
    dead = [r for a, r in producer.sent if r.topic == DLQ and a == max(a for a, _ in producer.sent)]
    value = msgspec.json.decode(dead[-1].value, type=ProblemRecord)
    assert value.input.copy in {"cut", "undecodable"} and value.sealed is None


def test_a_redriven_input_is_counted_and_its_dead_letter_carries_the_count(pipeline: Pipeline) -> None:
    from aiokafka.structs import ConsumerRecord, TopicPartition

    from worker.runtime.driver import FetchedBatch

    bad = b'{"method": "PUT", "path": "/x", "request_id": "r", "received_at": "2024-05-01T10:00:00Z"}'
    record = ConsumerRecord("raw", 0, 0, 0, 0, None, bad, None, 0, len(bad), [(HEADER_REDRIVES, b"2")])
    mapped = pipeline.map(FetchedBatch(0, 0, [(TopicPartition("raw", 0), [record])]))
    pipeline.settle(mapped)
    (dead,) = mapped.records
    assert (HEADER_REDRIVES, b"2") in dead.headers
    get = pipeline.metrics.registry.get_sample_value
    assert get("trackbridge_redriven_envelopes_total", {"source": "unknown"}) == 1


def _request(record: Record) -> str:
    for name, value in record.headers:
        if name == "cio-request-id":
            return value.decode()
    return ""


TWO_DESTINATIONS = parse_sources(
    """
dead_letter_topic = "journeys.dlq"
[destinations.analytics]
topic = "dp.out.analytics"
[destinations.warehouse]
topic = "dp.out.warehouse"
[[sources]]
name = "web-prod"
site_id = "site_prod_1"
api_key_sha256 = "a0693410cc39535f7059c0d21931e776f3923473e2f2761ab585b94071b21625"
destinations = ["analytics", "warehouse"]
"""
)


def test_a_call_whose_output_every_destination_refuses_is_one_dead_letter() -> None:
    pipeline = Pipeline(Router(TWO_DESTINATIONS), mapping.translate, Metrics())
    values = [identify(1, "a"), identify(2, "big", size=900)]

    def verdict(record: Record, attempt: int) -> BaseException | None:
        too_big = record.topic != DLQ and b"x" * 900 in record.value
        return MessageSizeTooLargeError() if too_big else None

    producer = Producer(verdict)
    deliver(pipeline, values, producer)
    dead = [record for _, record in producer.sent if record.topic == DLQ]
    assert len(dead) == 1
    get = pipeline.metrics.registry.get_sample_value
    assert get("trackbridge_dead_letters_total", {"reason": "output_refused", "source": "web-prod"}) == 1
    assert get("trackbridge_items_consumed_total", {"source": "web-prod"}) == 2
    assert get("trackbridge_items_mapped_total", {"source": "web-prod"}) == 1
