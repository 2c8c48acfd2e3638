"""Records to the broker in whole per-partition batches, with per-record outcomes.

aiokafka's `send` makes a future per record, runs the partitioner and the size check per record,
and resolves every future when the broker answers: a third of the worker's time went there.
`BatchSender` instead places each record itself (`worker.produce.partitioner`, the Java
client's partition for every key), fills one record batch per partition with
`AIOKafkaProducer.create_batch`, hands each to `send_batch` whole, and waits for one future per
batch. aiokafka's sender still groups the batches into one request per broker, retries them
while the request timeout allows, and keeps one request in flight per broker, so a partition's
batches are written in the order they were handed over.

The pipeline still needs to know what became of each record: a permanent refusal (too large,
invalid) must dead-letter one call, not the batch. So each record is checked against the
producer's maximum request size before it is batched, as aiokafka's `send` does, and a batch the
broker refuses for good is sent again one record at a time to find the culprit -- from that
batch on, every batch of its partition, so that what follows it on the partition stays after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from worker.produce.partitioner import Partitioner
from worker.records import Record

# Errors the broker or the producer gives one record for good: sending it again cannot help.
REFUSALS: Final = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
)

Failures = list[tuple[int, BaseException]]
"""(index, error) of each record not acknowledged; every other record sent was acknowledged."""

Send = Callable[[Sequence[Record], Sequence[int]], Awaitable[Failures]]
"""Send the records at the given indexes and wait for every outcome (what `Pipeline` needs)."""

_estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes


class Batch:
    """One record batch for one partition and the indexes of its records."""

    __slots__ = ("builder", "indexes")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.indexes: list[int] = []


def fill_batches(
    create: Callable[[], Any], records: Sequence[Record], indexes: Sequence[int], timestamp: int
) -> list[Batch]:
    """`indexes`' records in batches made by `create` (an `AIOKafkaProducer.create_batch`): each
    at most the producer's batch size, and one record at least."""
    batch = Batch(create())
    batches = [batch]
    append, members = batch.builder.append, batch.indexes
    for index in indexes:
        record = records[index]
        key, value, headers = record.key, record.value, record.headers
        if append(timestamp=timestamp, key=key, value=value, headers=headers) is None:  # full
            batch = Batch(create())
            batches.append(batch)
            append, members = batch.builder.append, batch.indexes
            append(timestamp=timestamp, key=key, value=value, headers=headers)  # an empty one takes any
        members.append(index)
    return batches


class BatchSender:
    """`Send` over a started `AIOKafkaProducer`, one record batch per partition at a time.

    `max_request_size` must be the producer's own (`max_request_size`): a record larger than it
    is refused before it is batched, as aiokafka's `send` would refuse it.
    """

    def __init__(
        self, producer: Any, *, max_request_size: int, partitioner: Partitioner | None = None
    ) -> None:
        self.producer = producer
        self.max_request_size = max_request_size
        self.partitioner = partitioner if partitioner is not None else Partitioner()

    async def __call__(self, records: Sequence[Record], indexes: Sequence[int]) -> Failures:
        """Send the records at `indexes` (in that order within each partition); return the failures."""
        failures: Failures = []
        partitions: dict[tuple[str, int], list[int]] = {}
        counts: dict[str, int] = {}
        place = self.partitioner.partition
        limit = self.max_request_size
        for index in indexes:
            record = records[index]
            topic, key = record.topic, record.key
            count = counts.get(topic)
            if count is None:
                found = await self._partition_count(topic)
                if isinstance(found, BaseException):
                    failures.append((index, found))
                    continue
                count = counts[topic] = found
            if _estimate(key, record.value, record.headers) > limit:
                failures.append((index, _too_large(record, limit)))
                continue
            tp = (topic, place(topic, key, count))
            members = partitions.get(tp)
            if members is None:
                partitions[tp] = [index]
            else:
                members.append(index)
        self.partitioner.shuffle()
        if not partitions:
            return failures
        timestamp = int(time.time() * 1000)
        plans = [
            (tp, fill_batches(self.producer.create_batch, records, members, timestamp))
            for tp, members in partitions.items()
        ]
        queued = await self._submit_all(plans)
        outcomes = await asyncio.gather(
            *(future for futures in queued for future in futures), return_exceptions=True
        )
        start = 0
        for (tp, batches), futures in zip(plans, queued, strict=True):
            mine = outcomes[start : start + len(futures)]
            start += len(futures)
            failures += await self._settle(records, tp, batches, mine, timestamp)
        return failures

    async def _partition_count(self, topic: str) -> int | BaseException:
        try:
            partitions = await self.producer.partitions_for(topic)
        except Exception as error:  # no metadata within the request timeout
            return error
        return len(partitions)

    async def _submit_all(self, plans: list[tuple[tuple[str, int], list[Batch]]]) -> list[list[Any]]:
        """Hand every partition's batches to the producer, in order within each partition: one
        future (or the error) per batch. Round by round -- every partition's first batch, then
        every second one -- because the producer takes a partition's next batch only once the one
        before it is on its way, which happens to all of a broker's partitions at once."""
        queued: list[list[Any]] = [[] for _ in plans]
        refused: list[BaseException | None] = [None] * len(plans)
        for position in range(max(len(batches) for _, batches in plans)):
            for plan, ((topic, partition), batches) in enumerate(plans):
                if position >= len(batches):
                    continue
                error = refused[plan]
                if error is None:
                    try:
                        builder = batches[position].builder
                        queued[plan].append(
                            await self.producer.send_batch(builder, topic, partition=partition)
                        )
                        continue
                    except Exception as failure:  # not queued (producer closed, timed out waiting for room)
                        error = refused[plan] = failure
                queued[plan].append(_failed(error))
        return queued

    async def _settle(
        self,
        records: Sequence[Record],
        tp: tuple[str, int],
        batches: list[Batch],
        outcomes: Sequence[Any],
        timestamp: int,
    ) -> Failures:
        """The failures of one partition's batches, given each batch's outcome."""
        failures: Failures = []
        for position, (batch, outcome) in enumerate(zip(batches, outcomes, strict=True)):
            if not isinstance(outcome, BaseException):
                continue
            if isinstance(outcome, REFUSALS) and len(batch.indexes) > 1:
                # Which record? Send this batch's records, and every later one of the partition
                # (acknowledged or not, to keep their order after it), one batch each.
                rest = [index for later in batches[position:] for index in later.indexes]
                return failures + await self._one_by_one(records, rest, tp, timestamp)
            failures += [(index, outcome) for index in batch.indexes]
        return failures

    async def _one_by_one(
        self, records: Sequence[Record], indexes: list[int], tp: tuple[str, int], timestamp: int
    ) -> Failures:
        batches = [
            fill_batches(self.producer.create_batch, records, [index], timestamp)[0] for index in indexes
        ]
        (queued,) = await self._submit_all([(tp, batches)])
        outcomes = await asyncio.gather(*queued, return_exceptions=True)
        return [
            (index, outcome)
            for index, outcome in zip(indexes, outcomes, strict=True)
            if isinstance(outcome, BaseException)
        ]


def _too_large(record: Record, limit: int) -> MessageSizeTooLargeError:
    size = _estimate(record.key, record.value, record.headers)
    return MessageSizeTooLargeError(
        f"The message is {size} bytes when serialized, larger than the maximum request size ({limit})"
    )


def _failed(error: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future
