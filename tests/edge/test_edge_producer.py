"""`EnvelopeProducer` against a scripted aiokafka producer: the envelopes queued while a delivery is
out go together, one record batch per partition, and a record the broker refuses for good answers
503 on its own while the rest of its batch is acknowledged, without tripping the circuit breaker."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from worker.config.settings import load_settings
from worker.edge.metrics import EdgeMetrics
from worker.edge.producer import EnvelopeProducer, Unavailable

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sources.toml"
PARTITIONS = 4


class Builder:
    """`BatchBuilder` as the edge fills it: full after `capacity` records."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: list[bytes] = []

    def append(self, *, timestamp: int, key: bytes | None, value: bytes, headers: Any) -> object | None:
        if len(self.values) >= self.capacity:
            return None
        self.values.append(value)
        return object()


class Cluster:
    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))


class Metadata:
    def __init__(self, topic: str) -> None:
        self.topic = topic

    def topics(self) -> set[str]:
        return {self.topic}


class Client:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.cluster = Cluster()

    async def fetch_all_metadata(self) -> Metadata:
        return Metadata(self.topic)

    def add_topic(self, topic: str) -> None:
        pass


class Delivery:
    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class Queue:
    """aiokafka's `MessageAccumulator` as the edge uses it: batches appended, in order."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._closed = False

    def _append_batch(self, builder: Builder, tp: Any) -> Delivery:
        delivery = Delivery()
        self.broker.batches.append(builder.values)
        self.broker.open.append((builder.values, delivery.future))
        return delivery


class Broker:
    """`AIOKafkaProducer` as the edge uses it. Each batch's future stays open until `answer()`;
    a batch holding a value in `refuse` fails with a permanent refusal."""

    def __init__(self, topic: str) -> None:
        self.client = Client(topic)
        self._message_accumulator = Queue(self)
        self.batches: list[list[bytes]] = []
        self.open: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self.refuse: set[bytes] = set()
        self.capacity = 1000

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def create_batch(self) -> Builder:
        return Builder(self.capacity)

    def answer(self) -> None:
        open_, self.open = self.open, []
        for values, future in open_:
            if self.refuse.intersection(values):
                future.set_exception(MessageSizeTooLargeError("too large (test)"))
            else:
                future.set_result(None)


class ScriptedProducer(EnvelopeProducer):
    def __init__(self) -> None:
        settings, _ = load_settings(environ={"TRACKBRIDGE_SOURCES": str(EXAMPLES)})
        super().__init__(settings, EdgeMetrics())
        self.broker = Broker(settings.raw_topic)

    def _new_producer(self) -> Any:
        return self.broker


def run(scenario: Callable[[ScriptedProducer, Broker], Awaitable[None]]) -> None:
    """`scenario` against a connected producer, closed afterwards."""

    async def main() -> None:
        producer = ScriptedProducer()
        assert await producer.connect(asyncio.Event())
        await scenario(producer, producer.broker)
        await producer.close()

    asyncio.run(main())


async def _until(condition: Any) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def _answered(sends: list[asyncio.Task[None]], broker: Broker) -> None:
    while not all(send.done() for send in sends):
        await _until(lambda: broker.open or all(send.done() for send in sends))
        broker.answer()
        await asyncio.sleep(0)


def test_envelopes_queued_during_a_delivery_go_out_together_one_batch_per_partition() -> None:
    async def scenario(producer: ScriptedProducer, broker: Broker) -> None:
        first = asyncio.create_task(producer.send(b"first", b"person-0"))
        await _until(lambda: broker.open)
        assert broker.batches == [[b"first"]]
        values = [f"v{n}".encode() for n in range(20)]
        later = [asyncio.create_task(producer.send(value, b"p" + value)) for value in values]
        await asyncio.sleep(0)
        assert len(broker.batches) == 1  # nothing more is handed over while the first is out
        await _answered([first, *later], broker)
        second = broker.batches[1:]
        assert 1 < len(second) <= PARTITIONS
        assert sorted(value for batch in second for value in batch) == sorted(values)
        assert all(send.exception() is None for send in [first, *later])

    run(scenario)


def test_a_record_refused_for_good_answers_unavailable_alone() -> None:
    async def scenario(producer: ScriptedProducer, broker: Broker) -> None:
        broker.refuse = {b"poison"}
        # One key, so all three share a partition and a batch: the refusal is searched record by record.
        sends = [asyncio.create_task(producer.send(value, b"same")) for value in (b"a", b"poison", b"b")]
        await _answered(sends, broker)
        assert broker.batches[0] == [b"a", b"poison", b"b"]
        assert broker.batches[1:] == [[b"a"], [b"poison"], [b"b"]]
        assert sends[0].exception() is None and sends[2].exception() is None
        with pytest.raises(Unavailable):
            sends[1].result()
        assert producer.ready()  # one record refused is no outage: the next request is let through

    run(scenario)


def test_a_request_settled_before_its_turn_is_not_produced() -> None:
    async def scenario(producer: ScriptedProducer, broker: Broker) -> None:
        first = asyncio.create_task(producer.send(b"first", b"p1"))
        await _until(lambda: broker.open)
        late = asyncio.create_task(producer.send(b"late", b"p2"))
        await asyncio.sleep(0)
        late.cancel()  # its request went away (or `_sweep` gave up on it) while "first" was out
        with pytest.raises(asyncio.CancelledError):
            await late
        broker.answer()
        await first
        await asyncio.sleep(0)
        assert broker.batches == [[b"first"]]  # "late" was never handed over

    run(scenario)


def test_a_partitions_batches_go_one_at_a_time_and_a_refusal_keeps_their_order() -> None:
    async def scenario(producer: ScriptedProducer, broker: Broker) -> None:
        broker.refuse, broker.capacity = {b"poison"}, 2
        first = asyncio.create_task(producer.send(b"first", b"same"))
        await _until(lambda: broker.open)
        # One key: queued while "first" is out, these four make two batches of one partition.
        values = (b"a", b"poison", b"b", b"c")
        sends = [asyncio.create_task(producer.send(value, b"same")) for value in values]
        await asyncio.sleep(0)
        broker.answer()
        await _until(lambda: broker.open)
        assert broker.batches[1:] == [[b"a", b"poison"]]  # its second batch waits for the first
        await _answered([first, *sends], broker)
        # The refused batch searched record by record, then the partition's next batch: in order.
        assert broker.batches[1:] == [[b"a", b"poison"], [b"a"], [b"poison"], [b"b", b"c"]]
        assert [send.exception() is None for send in sends] == [True, False, True, True]

    run(scenario)
