"""The edge's one Kafka producer: envelopes in, acknowledged (acks=all) or refused in bounded time.

`send` returns once the broker has acknowledged the envelope, or raises `Unavailable` when the
producer is not connected, when the acknowledgement does not come within `edge_produce_timeout`,
or when the broker refuses the record. After a failure the producer refuses at once (a circuit
breaker) and lets one request through every `PROBE_INTERVAL_S` to find out whether Kafka is back,
so an outage costs callers a fast 503 rather than a pile of envelopes waiting in memory.

Envelopes go to the broker in whole record batches, placed as the worker places its records
(`worker.produce`): whatever the requests queued while the previous batches were on their way goes
as one batch per partition, so under load a produce request carries many envelopes, and a request
waits for no linger when the edge is idle. The batches are put straight on the producer's queue
and each request is settled from its batch's delivery callback, without a task, a gather or a
shield between the acknowledgement and the answer: every step between the two is an event-loop
turn, and at the edge's request rates those turns were a tenth of its CPU time
(docs/benchmarks.md). A partition has one batch on its way at a time (the rest of a large hand-over
follows as each is answered), and a record the broker refuses for good is searched for record by
record before the rest, as the worker does, and answers 503 alone.

A refused envelope may still reach the topic later (its batch was already on the wire when the
wait ran out): a 503 means "not known to be durable", never "half written" -- each request is one
Kafka record, written whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from functools import partial
from typing import Any, Final

from aiokafka.errors import UnknownTopicOrPartitionError
from aiokafka.structs import TopicPartition

from worker.config.settings import Settings
from worker.edge.metrics import EdgeMetrics
from worker.produce.partitioner import Partitioner
from worker.produce.sender import REFUSALS, Batch, fill_batches
from worker.records import Header, Record

logger = logging.getLogger("trackbridge.edge")

PROBE_INTERVAL_S: Final = 1.0
SWEEP_INTERVAL_S: Final = 0.05
"""How often overdue acknowledgements are given up on (the produce timeout's resolution)."""
CONNECT_RETRY_FIRST_S: Final = 1.0
CONNECT_RETRY_MAX_S: Final = 30.0
# Largest envelope the producer sends: the edge's body cap plus the envelope's own fields.
MAX_REQUEST_BYTES: Final = 1024 * 1024
_NO_HEADERS: Final[list[Header]] = []


class Unavailable(Exception):
    """The envelope is not known to be on Kafka; `str(error)` says why (no request data)."""


class _Flush:
    """The envelopes of one hand-over and their requests' acknowledgements, by index."""

    __slots__ = ("acknowledgements", "records", "timestamp")

    def __init__(
        self, records: list[Record], acknowledgements: list[asyncio.Future[None]], timestamp: int
    ) -> None:
        self.records = records
        self.acknowledgements = acknowledgements
        self.timestamp = timestamp


def _settle_all(
    acknowledgements: list[asyncio.Future[None]], indexes: list[int], error: BaseException | None
) -> None:
    """Acknowledge `indexes`' requests (error None) or fail them, skipping those given up on."""
    for index in indexes:
        acknowledged = acknowledgements[index]
        if acknowledged.done():
            continue
        if error is None:
            acknowledged.set_result(None)
        else:
            acknowledged.set_exception(error)


class EnvelopeProducer:
    """One AIOKafkaProducer per process (acks=all), started in the background with retries."""

    def __init__(self, settings: Settings, metrics: EdgeMetrics) -> None:
        self.settings = settings
        self.topic = settings.raw_topic
        self.metrics = metrics
        self._producer: Any = None
        self._failed_at: float | None = None
        self._probing = False
        # (deadline, acknowledgement) in send order: with one timeout for all, also deadline order.
        self._waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()
        self._sweeper: asyncio.Task[None] | None = None
        # What the requests queued since the last hand-over, and their acknowledgements.
        self._records: list[Record] = []
        self._acknowledgements: list[asyncio.Future[None]] = []
        self._flush_scheduled = False
        self._in_flight = 0  # batches handed to the producer and not yet settled
        self._partitioner = Partitioner()
        metrics.producer_ready = self.ready

    def ready(self) -> bool:
        """Connected, and the last produce did not fail (or a probe has since succeeded)."""
        return self._producer is not None and self._failed_at is None

    def _new_producer(self) -> Any:
        from aiokafka import AIOKafkaProducer

        settings = self.settings
        return AIOKafkaProducer(
            bootstrap_servers=list(settings.bootstrap_servers),
            client_id=f"trackbridge-edge-{settings.group_id}",
            acks="all",
            enable_idempotence=settings.enable_idempotence,
            linger_ms=settings.edge_linger_ms,
            max_batch_size=settings.edge_batch_bytes,
            max_request_size=MAX_REQUEST_BYTES,
            # A batch not acknowledged by then is failed, not kept: the edge has answered 503.
            request_timeout_ms=int(settings.edge_produce_timeout * 1000),
            **settings.kafka_auth(),
        )

    async def connect(self, stop: asyncio.Event) -> bool:
        """Start the producer, retrying with a warning per attempt until it connects (True) or
        `stop` is set (False)."""
        servers = ",".join(self.settings.bootstrap_servers)
        delay = CONNECT_RETRY_FIRST_S
        while not stop.is_set():
            producer = self._new_producer()
            try:
                await producer.start()
            except Exception as error:
                with contextlib.suppress(Exception):
                    await producer.stop()
                logger.warning(
                    "Kafka brokers %s not reachable (%s); retrying in %.0f s",
                    servers,
                    error,
                    delay,
                    extra={"event": "kafka_unreachable"},
                )
            else:
                self._producer = producer
                producer.client.add_topic(self.topic)  # its partitions, for placing envelopes
                self._sweeper = asyncio.create_task(self._sweep())
                topics = await producer.client.fetch_all_metadata()
                if self.topic not in topics.topics():
                    logger.warning(
                        "input topic %r does not exist (create it with `trackbridge topics create`); "
                        "requests are answered 503 until it does",
                        self.topic,
                        extra={"event": "topic_missing"},
                    )
                logger.info("producing to %s on %s", self.topic, servers, extra={"event": "kafka_connected"})
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, CONNECT_RETRY_MAX_S)
        return False

    async def send(self, value: bytes, key: bytes | None) -> None:
        """Produce one envelope and wait for its acknowledgement; raise `Unavailable` if it is not
        acknowledged within `edge_produce_timeout` (or cannot be sent at all)."""
        if self._producer is None:
            raise Unavailable("not connected to Kafka yet")
        probe = False
        if self._failed_at is not None:
            if self._probing or time.monotonic() - self._failed_at < PROBE_INTERVAL_S:
                raise Unavailable("Kafka did not acknowledge recent envelopes")
            self._probing = probe = True
        started = time.perf_counter()
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._records.append(Record(self.topic, key, value, _NO_HEADERS))
        self._acknowledgements.append(acknowledged)
        self._waiting.append((time.monotonic() + self.settings.edge_produce_timeout, acknowledged))
        if not (self._flush_scheduled or self._in_flight):
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        try:
            await acknowledged
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the handler itself is being cancelled
            self._given_up(started, TimeoutError())
        except Exception as error:  # KafkaError: the outside world failing
            self._given_up(started, error)
        finally:
            if probe:
                self._probing = False
        self.metrics.produce_seconds.observe(time.perf_counter() - started)
        self.metrics.produced_bytes += len(value)
        if self._failed_at is not None:
            self._failed_at = None
            logger.info("Kafka acknowledges envelopes again", extra={"event": "kafka_recovered"})

    def _flush(self) -> None:
        """Hand what the requests queued to the producer, one batch per partition (one hand-over
        at a time, so envelopes reach each partition in the order they were sent)."""
        self._flush_scheduled = False
        records, acknowledgements = self._records, self._acknowledgements
        self._records, self._acknowledgements = [], []
        # Requests already answered 503 (given up on by `_sweep`) are not produced at all.
        indexes = [index for index, acknowledged in enumerate(acknowledgements) if not acknowledged.done()]
        producer = self._producer
        if not indexes or producer is None:
            _settle_all(acknowledgements, indexes, Unavailable("the producer is closed"))
            return
        partitions = producer.client.cluster.partitions_for_topic(self.topic)
        if not partitions:  # no metadata for the input topic: none yet, or it does not exist
            producer.client.force_metadata_update()
            _settle_all(acknowledgements, indexes, UnknownTopicOrPartitionError(self.topic))
            return
        count = len(partitions)
        place = self._partitioner.partition
        groups: dict[int, list[int]] = {}
        for index in indexes:
            groups.setdefault(place(self.topic, records[index].key, count), []).append(index)
        self._partitioner.shuffle()
        flush = _Flush(records, acknowledgements, int(time.time() * 1000))
        for partition, members in groups.items():
            self._hand_over(
                flush, partition, fill_batches(producer.create_batch, records, members, flush.timestamp)
            )

    def _hand_over(self, flush: _Flush, partition: int, batches: list[Batch]) -> None:
        """Put the first of a partition's `batches` on the producer's queue; the rest follow one at
        a time as each is answered, so they keep their order whatever becomes of one of them."""
        producer = self._producer
        # Private to aiokafka (tests/edge/test_edge_hooks.py checks them): `send_batch` would wrap
        # the delivery in a shield, and awaiting it in a task, three event-loop turns per batch.
        if producer is None or producer._message_accumulator._closed:  # the producer is stopping
            closed = Unavailable("the producer is closed")
            for batch in batches:
                _settle_all(flush.acknowledgements, batch.indexes, closed)
            return
        batch, rest = batches[0], batches[1:]
        delivery = producer._message_accumulator._append_batch(
            batch.builder, TopicPartition(self.topic, partition)
        )
        self._in_flight += 1
        delivery.future.add_done_callback(partial(self._delivered, flush, partition, batch, rest))

    def _delivered(
        self, flush: _Flush, partition: int, batch: Batch, rest: list[Batch], delivery: asyncio.Future[Any]
    ) -> None:
        """The broker's answer to one batch: settle its requests, hand over the partition's next
        batch, and the next envelopes once nothing is on its way any more."""
        self._in_flight -= 1
        error = Unavailable("delivery cancelled") if delivery.cancelled() else delivery.exception()
        producer = self._producer
        if isinstance(error, REFUSALS) and len(batch.indexes) > 1 and producer is not None:
            # Which record? Each again on its own, in order, before the rest of the partition.
            create = producer.create_batch
            rest = [
                fill_batches(create, flush.records, [index], flush.timestamp)[0] for index in batch.indexes
            ] + rest
        else:
            _settle_all(flush.acknowledgements, batch.indexes, error)
        if rest:
            self._hand_over(flush, partition, rest)
        elif not (self._in_flight or self._flush_scheduled) and self._records:
            self._flush()

    def _given_up(self, started: float, error: BaseException) -> None:
        self.metrics.produce_seconds.observe(time.perf_counter() - started)
        if not isinstance(error, REFUSALS):  # a record refused for good says nothing of Kafka
            self._fail(error)
        raise Unavailable(f"Kafka did not acknowledge the envelope: {type(error).__name__}") from None

    async def _sweep(self) -> None:
        """Give up on acknowledgements past their deadline: cancelling one wakes its request,
        which answers 503 (`_deliver` skips acknowledgements already given up on)."""
        waiting = self._waiting
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            now = time.monotonic()
            while waiting and (waiting[0][1].done() or waiting[0][0] <= now):
                _, acknowledged = waiting.popleft()
                if not acknowledged.done():
                    acknowledged.cancel()

    def _fail(self, error: BaseException) -> None:
        if self._failed_at is None:
            logger.warning(
                "Kafka did not acknowledge an envelope (%s); answering 503 until it does",
                type(error).__name__,
                extra={"event": "kafka_unavailable"},
            )
        self._failed_at = time.monotonic()

    async def close(self) -> None:
        """Send what is buffered and stop (the HTTP server has answered everything by now)."""
        producer, self._producer = self._producer, None
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if producer is not None:
            await producer.stop()
