"""trackbridge's Faust transport: Faust's aiokafka driver, delivering whole fetches to the agent.

Faust hands each consumed record to its streams one by one: a task per message to wait on the
flow-control event, an Event, a queue hop, sensors, and per-offset ack bookkeeping. That costs
several times the translation itself (earlier measurements here: ~2,300 calls/s awaiting a send
per event, ~6,800/s with `stream.take` and batched sends, where a bare aiokafka loop did several
times that). This driver keeps everything else of Faust -- the consumer thread, group membership
and rebalancing, flow control, the commit timer, the agent and its supervisor, the web server,
the lifecycle -- and changes only the unit of delivery: one `FetchedBatch` per fetch (up to
`batch_size` records), put straight into the agent's stream. bench/worker_e2e.py measures it.

At-least-once bookkeeping follows the batch too. The agent calls `acknowledge(batch)` once every
output of the batch is acknowledged by the broker; that records, per partition, the offset after
the batch's last record. Faust's commit timer and its shutdown and rebalance paths
(`wait_empty`, then `commit`) commit those offsets and nothing else, so an input offset is
committed only after all its outputs are acknowledged (spec §14).

Batches that can no longer be trusted -- fetched before a rebalance or a rewind -- are dropped,
never processed, and never skipped: Faust seeks every assigned partition back to its committed
offset after each rebalance, `rewind` does the same, and a fetch that straddled a rebalance
(whose records may come from either side of that seek) is sought back to its first offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, AppT

if TYPE_CHECKING:
    from mode import ServiceT
    from yarl import URL

logger = logging.getLogger(__name__)

# Faust waits this long for the first record of a fetch in its own drain loop; ours uses the
# `batch_timeout` setting instead.
_DEFAULT_BATCH_TIMEOUT: Final = 0.05


class Tuning:
    """The settings the driver needs that Faust has no setting for."""

    __slots__ = ("batch_timeout", "enable_idempotence", "fetch_max_wait_ms")

    def __init__(
        self,
        *,
        fetch_max_wait_ms: int,
        enable_idempotence: bool = False,
        batch_timeout: float = _DEFAULT_BATCH_TIMEOUT,
    ) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.enable_idempotence = enable_idempotence
        self.batch_timeout = batch_timeout


class FetchedBatch:
    """The records of one fetch, per partition, in offset order, tagged with when they were fetched.

    `generation` is the consumer group generation and `epoch` the consumer's rewind count at fetch
    time; a batch from an older generation or epoch is stale and must not be processed.
    """

    __slots__ = ("chunks", "epoch", "generation", "size")

    def __init__(self, generation: int, epoch: int, chunks: list[tuple[TP, list[Any]]]) -> None:
        self.generation = generation
        self.epoch = epoch
        self.chunks = chunks
        self.size = sum(len(records) for _, records in chunks)

    def records(self) -> Iterator[Any]:
        """Every aiokafka ConsumerRecord of the batch, partition by partition."""
        for _, records in self.chunks:
            yield from records

    def next_offsets(self) -> dict[TP, int]:
        """Per partition, the offset to commit once the whole batch is done (last offset + 1)."""
        return {tp: records[-1].offset + 1 for tp, records in self.chunks}

    def first_offsets(self) -> dict[TP, int]:
        return {tp: records[0].offset for tp, records in self.chunks}


def tuning_of(transport: Any) -> Tuning:
    tuning = getattr(transport, "tuning", None)
    if not isinstance(tuning, Tuning):
        raise TypeError("trackbridge's driver needs its own Transport (worker.runtime.driver.Transport)")
    return tuning


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with the fetch wait taken from the settings.

    Faust creates the AIOKafkaConsumer with `fetch_max_wait_ms=1500` written into the call
    (faust/transport/drivers/aiokafka.py, `_create_worker_consumer`). aiokafka reads that value
    only when the consumer starts, to build its Fetcher, so it is set on the fresh consumer here.
    With a broker that answers a fetch only when the wait runs out (Tansu), the wait is the floor
    of end-to-end latency.
    """

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = tuning_of(transport).fetch_max_wait_ms
        if not hasattr(consumer, "_fetch_max_wait_ms"):  # pragma: no cover - aiokafka changed
            raise RuntimeError(
                "this aiokafka version has no _fetch_max_wait_ms; update worker/runtime/driver.py"
            )
        consumer._fetch_max_wait_ms = wait_ms
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, delivering one `FetchedBatch` per fetch to the attached inbox."""

    _inbox: asyncio.Queue[FetchedBatch] | None = None
    _attached_before: bool = False
    _inbox_attached: asyncio.Event
    _acked_through: dict[TP, int]
    _in_flight: set[FetchedBatch]
    _idle: asyncio.Event
    _fetch_lock: asyncio.Lock
    epoch: int = 0
    last_commit_at: float | None = None
    """time.time() of the last successful offset commit."""
    commit_failures: int = 0
    """Offset commits that failed (refused after a rebalance, or raised)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._inbox_attached = asyncio.Event()
        self._acked_through = {}
        self._in_flight = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._fetch_lock = asyncio.Lock()

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # -- the agent's side ------------------------------------------------------------------------

    async def attach_inbox(self, inbox: asyncio.Queue[FetchedBatch]) -> None:
        """Deliver fetched batches to `inbox` (the agent's stream queue) from now on.

        A second call means the agent restarted: batches that were queued for, or being processed
        by, the previous one are lost, so every partition is rewound to its committed offset.
        """
        restarted = self._attached_before
        self._attached_before = True
        self._inbox = inbox
        self._inbox_attached.set()
        if restarted:
            self._end_in_flight()
            await self.rewind("the agent restarted")

    def detach_inbox(self, inbox: asyncio.Queue[FetchedBatch]) -> None:
        """The agent stopped reading `inbox` (it stopped, or crashed and will be restarted)."""
        if self._inbox is inbox:
            self._inbox = None
            self._inbox_attached.clear()
            self._end_in_flight()

    def is_current(self, batch: FetchedBatch) -> bool:
        """True while `batch` may still be processed: no rebalance, rewind or stop since its fetch."""
        return (
            self.flow_active
            and not self.should_stop
            and batch.generation == self.app.consumer_generation_id
            and batch.epoch == self.epoch
        )

    def begin(self, batch: FetchedBatch) -> bool:
        """Mark `batch` as being processed, or return False when it is stale and must be dropped.

        Two batches may be in flight: one being delivered while the next is translated.
        """
        if not self.is_current(batch):
            logger.debug("dropping a stale batch of %d records", batch.size)
            return False
        self._in_flight.add(batch)
        self._idle.clear()
        return True

    def acknowledge(self, batch: FetchedBatch) -> bool:
        """Record that every output of `batch` is acknowledged: its offsets may be committed.

        Returns False (and records nothing) if a rebalance or rewind made the batch stale; its
        records are then read again from the committed offsets.
        """
        if batch.generation != self.app.consumer_generation_id or batch.epoch != self.epoch:
            return False
        acked = self._acked_through
        for tp, offset in batch.next_offsets().items():
            if offset > acked.get(tp, -1):
                acked[tp] = offset
        return True

    async def abandon(self, batch: FetchedBatch) -> None:
        """`batch` will not be acknowledged: make sure nothing after it is committed before it.

        A rebalance or a stop already takes care of that (the next owner starts at the commit);
        otherwise every partition is rewound to its committed offset.
        """
        if self.should_stop or self.app.should_stop:
            return
        if batch.generation == self.app.consumer_generation_id and batch.epoch == self.epoch:
            await self.rewind("a batch was given up before all its outputs were acknowledged")

    def end(self, batch: FetchedBatch) -> None:
        """`batch` is finished with, acknowledged or not."""
        self._in_flight.discard(batch)
        if not self._in_flight:
            self._idle.set()

    def _end_in_flight(self) -> None:
        self._in_flight.clear()
        self._idle.set()

    async def rewind(self, why: str) -> None:
        """Drop every batch fetched so far and seek all assigned partitions to their committed offsets."""
        async with self._fetch_lock:
            self.epoch += 1
            logger.warning("rewinding to the committed offsets: %s", why)
            try:
                committed = await self.seek_to_committed()
                # aiokafka seeks only partitions with a committed offset above 0: the others start
                # over from the beginning, as auto_offset_reset=earliest does for a new group.
                for tp in self.assignment():
                    offset = committed.get(tp)
                    if offset:
                        self._committed_offset[tp] = offset
                    else:
                        await self.seek(tp, 0)
            except Exception as error:  # a rebalance seeks anyway
                logger.warning("could not seek to the committed offsets (%r); a rebalance will", error)

    def lags(self) -> list[tuple[str, int, int]]:
        """(topic, partition, lag) per assigned partition: high watermark - acknowledged offset.

        Partitions whose high watermark or position is not known yet are left out.
        """
        lags: list[tuple[str, int, int]] = []
        try:
            assigned = self.assignment()
        except Exception:  # not started
            return lags
        for tp in assigned:
            try:
                highwater = self.highwater(tp)
            except Exception:  # revoked meanwhile
                continue
            done = self._acked_through.get(tp, self._committed_offset.get(tp))
            if highwater is not None and done is not None:
                lags.append((tp.topic, tp.partition, max(0, highwater - done)))
        return lags

    # -- Faust's fetch loop, one batch per fetch ---------------------------------------------------

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Replace Faust's per-message delivery with one `FetchedBatch` per fetch."""
        timeout = tuning_of(self.transport).batch_timeout
        try:
            while not (self.should_stop or fetcher.should_stop):
                if self._inbox is None:
                    await self.wait(self._inbox_attached)  # type: ignore[arg-type]
                    continue
                if not self.flow_active:  # a rebalance: wait for it before tagging the next fetch
                    await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
                    continue
                async with self._fetch_lock:
                    generation, epoch = self.app.consumer_generation_id, self.epoch
                    records, active = await self._wait_next_records(timeout)
                    if not records or self.should_stop:
                        continue
                    chunks = [
                        (tp, list(batch))
                        for tp, batch in records.items()
                        if batch and (active is None or tp in active)
                    ]
                    if not self.flow_active or self.app.consumer_generation_id != generation:
                        # A rebalance began or ended while this fetch was out: the records may be
                        # from before its seek or after it. Read them again, to be sure.
                        await self._seek_back(chunks)
                        continue
                if chunks and self._inbox is not None:
                    await self.wait_first(
                        self._inbox.put(FetchedBatch(generation, epoch, chunks)), self.suspend_flow.wait()
                    )
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise

    async def _seek_back(self, chunks: list[tuple[TP, list[Any]]]) -> None:
        """Make the consumer read `chunks` again: seek each still-assigned partition to its first offset."""
        assigned = self.assignment()
        for tp, records in chunks:
            if tp in assigned:
                try:
                    await self.seek(tp, records[0].offset)
                except Exception as error:  # revoked meanwhile: its next owner starts at the commit
                    logger.debug("could not seek %s back: %r", tp, error)

    # -- committing acknowledged batches ------------------------------------------------------------

    def _filter_tps_with_pending_acks(self, topics: Iterable[Any] | None = None) -> Iterator[TP]:
        wanted = None if topics is None else set(topics)
        for tp in list(self._acked_through):
            if wanted is None or tp in wanted or tp.topic in wanted:
                yield tp

    def _new_offset(self, tp: TP) -> int | None:
        return self._acked_through.get(tp)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        try:
            committed = await super()._commit(offsets)
        except Exception:
            self.commit_failures += 1
            raise
        if committed:
            self.last_commit_at = time.time()
        else:
            self.commit_failures += 1
        return committed

    async def wait_empty(self) -> None:
        """Wait for the batches being processed (if any), then commit what is acknowledged.

        Faust calls this before partitions are revoked and when the worker stops; with the batch
        path its own unacked-message set is always empty, so the batches in flight are waited for
        here.
        """
        while not self._idle.is_set() and not self.should_stop:
            await self.wait_first(self._idle.wait(), asyncio.sleep(1.0))
            if not self._idle.is_set():
                logger.info("waiting for the batches in flight to be acknowledged or dropped")
        await super().wait_empty()

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        # Everything acknowledged was committed while the partitions were revoked; what is left
        # belongs to the previous generation and could move a new owner's offsets backwards.
        self._acked_through.clear()
        await super().on_partitions_assigned(assigned, generation_id)


class Producer(faust_aiokafka.Producer):
    """Faust's aiokafka producer, with the idempotent producer as a setting, and its aiokafka
    producer handed out for whole-batch sends.

    Faust enables idempotence only inside transactions; production may want it on its own
    (acks=all is Faust's default). Tansu refuses idempotent producers, so it stays off there.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        extra = dict(super()._settings_extra())
        if tuning_of(self.transport).enable_idempotence:
            extra.update(enable_idempotence=True, acks="all")
        return extra

    def aiokafka_producer(self) -> Any:
        """The started `AIOKafkaProducer` underneath, for whole-batch sends (worker/produce/sender.py)."""
        return self._ensure_producer()


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with trackbridge's consumer and producer."""

    Consumer: ClassVar[type[Any]] = Consumer
    Producer: ClassVar[type[Any]] = Producer

    def __init__(self, url: list[URL], app: AppT, *, tuning: Tuning) -> None:
        super().__init__(url, app)
        self.tuning = tuning


def install(app: AppT, tuning: Tuning) -> None:
    """Make `app` use this driver for consuming and producing (before it starts)."""
    conf = app.conf
    app.transport = Transport(conf.broker_consumer, app, tuning=tuning)
    app.producer_transport = Transport(conf.broker_producer, app, tuning=tuning)


def consumer_of(app: AppT) -> Consumer:
    consumer = app.consumer
    if not isinstance(consumer, Consumer):
        raise TypeError("the app does not use trackbridge's driver (call worker.runtime.driver.install)")
    return consumer


def producer_of(app: AppT) -> Producer:
    producer = app.producer
    if not isinstance(producer, Producer):
        raise TypeError("the app does not use trackbridge's driver (call worker.runtime.driver.install)")
    return producer
