"""`BatchSender` against a scripted aiokafka producer: one batch per partition, keys where the Java
client puts them, records too large refused before batching, a refused batch searched record by
record with the partition's order kept, and other errors given to every record of their batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, ProducerClosed
from aiokafka.partitioner import DefaultPartitioner

from worker.produce.sender import BatchSender, Failures
from worker.records import Record

PARTITIONS = 4
ALL = list(range(PARTITIONS))


class Builder:
    """`BatchBuilder` as the sender uses it: full after `capacity` records."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes | None, bytes]] = []

    def append(self, *, timestamp: int, key: bytes | None, value: bytes, headers: Any) -> object | None:
        if self.records and len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()


Sent = tuple[str, int, list[bytes]]


class Producer:
    """`AIOKafkaProducer`'s batch API; `verdict(sent)` is what the broker answers to a batch."""

    def __init__(self, verdict: Callable[[Sent], BaseException | None], *, capacity: int = 1000) -> None:
        self.verdict = verdict
        self.capacity = capacity
        self.sent: list[Sent] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(ALL)

    def create_batch(self) -> Builder:
        return Builder(self.capacity)

    async def send_batch(self, batch: Builder, topic: str, *, partition: int) -> asyncio.Future[None]:
        sent = (topic, partition, [value for _, value in batch.records])
        self.sent.append(sent)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        error = self.verdict(sent)
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
        return future


def records_for(keys: list[bytes | None], topic: str = "out") -> list[Record]:
    return [Record(topic, key, f"v{index}".encode(), []) for index, key in enumerate(keys)]


def send(producer: Producer, records: list[Record], limit: int = 1 << 20) -> Failures:
    sender = BatchSender(producer, max_request_size=limit)
    return asyncio.run(sender(records, range(len(records))))


def partition_of(key: bytes) -> int:
    return int(DefaultPartitioner()(key, ALL, ALL))


def test_one_batch_per_partition_in_order_on_the_java_clients_partition() -> None:
    keys: list[bytes | None] = [str(person).encode() for person in range(40)] * 3
    records = records_for(keys)
    producer = Producer(lambda sent: None)
    assert send(producer, records) == []
    assert len(producer.sent) == len({partition_of(key) for key in keys if key is not None})
    for topic, partition, values in producer.sent:
        expected = [r.value for r in records if r.key is not None and partition_of(r.key) == partition]
        assert (topic, values) == ("out", expected)


def test_full_batches_are_handed_over_round_by_round_each_partition_in_order() -> None:
    keys: list[bytes | None] = [str(person).encode() for person in range(40)] * 3
    records = records_for(keys)
    producer = Producer(lambda sent: None, capacity=10)
    assert send(producer, records) == []
    rounds = [partition for _, partition, _ in producer.sent]
    partitions = sorted(set(rounds))
    # Every partition's first batch before any partition's second one, and so on.
    assert sorted(rounds[: len(partitions)]) == partitions
    for partition in partitions:
        expected = [r.value for r in records if r.key is not None and partition_of(r.key) == partition]
        handed = [value for _, sent_to, values in producer.sent if sent_to == partition for value in values]
        assert handed == expected and all(len(values) <= 10 for _, _, values in producer.sent)


def test_keyless_records_of_one_send_share_one_partition() -> None:
    producer = Producer(lambda sent: None)
    assert send(producer, records_for([None] * 10)) == []
    ((_, partition, values),) = producer.sent
    assert partition in ALL and len(values) == 10


def test_a_record_larger_than_a_request_is_refused_before_batching() -> None:
    records = [*records_for([b"a", b"b"]), Record("out", b"c", b"x" * 5000, [])]
    producer = Producer(lambda sent: None)
    ((index, error),) = send(producer, records, limit=1000)
    assert index == 2 and isinstance(error, MessageSizeTooLargeError)
    assert b"x" * 5000 not in [value for _, _, values in producer.sent for value in values]


def test_a_refused_batch_is_searched_one_record_at_a_time_keeping_the_partition_order() -> None:
    # One key, so one partition; batches of 3: [v0 v1 v2] [v3 v4 v5] [v6]. v1 is the culprit.
    records = records_for([b"k"] * 7)

    def verdict(sent: Sent) -> BaseException | None:
        return MessageSizeTooLargeError() if b"v1" in sent[2] else None

    producer = Producer(verdict, capacity=3)
    failures = send(producer, records)
    assert [(index, type(error)) for index, error in failures] == [(1, MessageSizeTooLargeError)]
    values = [values for _, _, values in producer.sent]
    # The whole batches first, then every record from the refused batch on, one at a time: what
    # the partition ends with after v1's batch was refused is v0, v2, v3, ..., v6, in order.
    assert values[:3] == [[b"v0", b"v1", b"v2"], [b"v3", b"v4", b"v5"], [b"v6"]]
    assert values[3:] == [[f"v{index}".encode()] for index in range(7)]


def test_a_retriable_error_fails_every_record_of_its_batch_and_no_other() -> None:
    keys = [str(person).encode() for person in range(30)]
    records = records_for(keys)
    unlucky = partition_of(keys[0])

    def verdict(sent: Sent) -> BaseException | None:
        return KafkaTimeoutError() if sent[1] == unlucky else None

    failures = send(Producer(verdict), records)
    assert sorted(index for index, _ in failures) == [
        index for index, key in enumerate(keys) if partition_of(key) == unlucky
    ]
    assert all(isinstance(error, KafkaTimeoutError) for _, error in failures)


@pytest.mark.parametrize("error", [ProducerClosed(), KafkaTimeoutError()])
def test_a_batch_the_producer_does_not_take_fails_its_records(error: BaseException) -> None:
    class Closed(Producer):
        async def send_batch(self, batch: Builder, topic: str, *, partition: int) -> asyncio.Future[None]:
            raise error

    failures = send(Closed(lambda sent: None), records_for([b"a", b"b", None]))
    assert sorted(index for index, _ in failures) == [0, 1, 2]
    assert all(failure is error for _, failure in failures)
