"""One batch of raw calls -> records produced and acknowledged: the worker's hot path.

`Pipeline.map` translates and routes every record of a fetched batch (pure CPU, no awaits);
`Pipeline.deliver` sends all resulting records with the producer's `send` without awaiting
each, then waits for every acknowledgement, retrying the whole batch while it fails;
`Pipeline.settle` counts the batch in the metrics once it is acknowledged. The agent
(worker/runtime/app.py) strings them together and only then lets the batch's offsets be committed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from mapping.reasons import Reason
from mapping.results import Problem, Translation
from worker.metrics import Metrics, Tally
from worker.records import Record, envelope_copy, problem_record
from worker.routing import Router
from worker.runtime.driver import FetchedBatch

logger = logging.getLogger(__name__)

RETRY_FIRST_DELAY: Final = 0.5
RETRY_MAX_DELAY: Final = 10.0

Translate = Callable[[bytes], Translation]
Send = Callable[[str, bytes | None, bytes, int | None, float | None, list[tuple[str, bytes]]], Awaitable[Any]]


class MappedBatch:
    """A fetched batch after translation and routing: the records to produce and what to count."""

    __slots__ = ("batch", "durations", "received", "records", "tally")

    def __init__(self, batch: FetchedBatch) -> None:
        self.batch = batch
        self.records: list[Record] = []
        self.received: list[str] = []
        self.durations: list[float] = []
        self.tally = Tally()


class Pipeline:
    """Translate, route and produce batches for one sources file."""

    def __init__(self, router: Router, translate: Translate, metrics: Metrics) -> None:
        self.router = router
        self.translate = translate
        self.metrics = metrics
        self.dead_letter_topic = router.config.dead_letter_topic

    def map(self, batch: FetchedBatch) -> MappedBatch:
        """Translate and route every record of `batch`. Never raises for any input bytes."""
        mapped = MappedBatch(batch)
        extend = mapped.records.extend
        received = mapped.received.append
        duration = mapped.durations.append
        add = mapped.tally.add
        translate = self.translate
        route = self.router.route
        clock = time.perf_counter
        for record in batch.records():
            raw = record.value if record.value is not None else b""
            start = clock()
            try:
                translation = translate(raw)
                routed = route(raw, translation)
            except Exception as error:
                # translate and route promise never to raise: this is a bug. Keep the input.
                logger.exception(
                    "translating %s[%d]@%d raised; writing it to the dead-letter topic",
                    record.topic,
                    record.partition,
                    record.offset,
                )
                where = f"{record.topic}[{record.partition}]@{record.offset}"
                extend([self._internal_error(raw, error, where)])
                mapped.tally.add_internal_error()
                continue
            duration(clock() - start)
            extend(routed.records)
            add(routed, translation.endpoint)
            if translation.received_at is not None:
                received(translation.received_at)
        return mapped

    async def produce(self, records: list[Record], send: Send) -> tuple[int, BaseException | None]:
        """Send every record without awaiting each, then wait for all acknowledgements.

        Returns how many records were not acknowledged (0 when all were) and the first error. The
        default partitioner places each record by its key, so one person's records share a
        partition (spec §14).
        """
        futures: list[Awaitable[Any]] = []
        append = futures.append
        first: BaseException | None = None
        try:
            for record in records:
                append(await send(record.topic, record.key, record.value, None, None, record.headers))
        except Exception as error:  # the producer refused a record: the rest of the batch is not sent
            first = error
        failed = len(records) - len(futures)
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                failed += 1
                first = first or result
        return failed, first

    async def deliver(self, mapped: MappedBatch, send: Send, still_current: Callable[[], bool]) -> bool:
        """Produce the batch until every record is acknowledged; False if it was abandoned.

        A failed attempt is retried whole (outputs already acknowledged are produced again; their
        messageIds are the same, spec §10) after a growing pause, for as long as `still_current()`
        holds -- it stops holding when the worker stops or a rebalance takes the partitions.
        """
        delay = RETRY_FIRST_DELAY
        attempt = 1
        while True:
            failed, error = await self.produce(mapped.records, send)
            if not failed:
                if attempt > 1:
                    logger.info(
                        "batch of %d records acknowledged on attempt %d", len(mapped.records), attempt
                    )
                return True
            first = mapped.batch.first_offsets()
            logger.error(
                "%d of %d records of a batch were not acknowledged (first error: %r); offsets from %s "
                "stay uncommitted; retrying in %.1f s",
                failed,
                len(mapped.records),
                error,
                ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in first.items()),
                delay,
            )
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline:
                if not still_current():
                    logger.warning("giving up on the batch: the worker is stopping or rebalancing")
                    return False
                await asyncio.sleep(min(0.1, delay))
            if not still_current():
                return False
            delay = min(delay * 2, RETRY_MAX_DELAY)
            attempt += 1

    def settle(self, mapped: MappedBatch) -> None:
        """Count an acknowledged batch: counters and histograms."""
        now = time.time()
        metrics = self.metrics
        metrics.count(mapped.tally)
        metrics.mapping_seconds.observe_many(mapped.durations)
        metrics.batch_size.observe(mapped.batch.size)
        metrics.latency.observe_many(_latencies(now, mapped.received))

    def _internal_error(self, raw: bytes, error: Exception, where: str) -> Record:
        detail = f"the worker failed on input {where}: {error!r}"[:1000]
        return problem_record(
            self.dead_letter_topic, Problem(Reason.INTERNAL_ERROR, detail), envelope_copy(raw)
        )


def _latencies(now: float, received: list[str]) -> list[float]:
    parse = datetime.datetime.fromisoformat
    latencies: list[float] = []
    append = latencies.append
    for text in received:
        try:
            append(now - parse(text).timestamp())
        except ValueError:  # spec §1 allows a lower-case t/z that fromisoformat does not
            try:
                append(now - parse(text.upper()).timestamp())
            except ValueError:
                continue
    return latencies
