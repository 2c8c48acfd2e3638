"""The private aiokafka names worker/edge/producer.py relies on still exist and mean the same.

The edge puts its record batches straight on the producer's queue (`_message_accumulator.
_append_batch`) and settles requests from each batch's delivery future, instead of awaiting
`send_batch`'s shield in a task. A release that renamed or reshaped one of these would break the
edge at its first request, so each is checked on the installed version, together with the library
code that shows it still means what the edge takes it to mean. pyproject.toml bounds aiokafka to
the line this passes on.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.producer.message_accumulator import MessageAccumulator, MessageBatch


def _source(function: Any) -> str:
    return inspect.getsource(function)


def test_the_producer_keeps_its_queue_in_message_accumulator() -> None:
    assert "self._message_accumulator = MessageAccumulator(" in _source(AIOKafkaProducer.__init__)
    # ... and queues whole batches through it: send_batch -> add_batch -> _append_batch.
    assert "self._message_accumulator.add_batch(" in _source(AIOKafkaProducer.send_batch)


def test_append_batch_queues_a_builder_for_a_partition_and_returns_its_delivery() -> None:
    assert list(inspect.signature(MessageAccumulator._append_batch).parameters) == ["self", "builder", "tp"]
    append = _source(MessageAccumulator._append_batch)
    assert "MessageBatch(tp, builder" in append and "return batch" in append
    # add_batch, the public path, does the same once nothing is pending for the partition.
    assert "self._append_batch(builder, tp)" in _source(MessageAccumulator.add_batch)
    assert "self.future = create_future()" in _source(MessageBatch.__init__)
    assert "self.future.set_result(" in _source(MessageBatch.done)


def test_a_closed_queue_says_so_in_closed() -> None:
    assert "self._closed = False" in _source(MessageAccumulator.__init__)
    assert "self._closed = True" in _source(MessageAccumulator.close)


def test_the_client_knows_a_topics_partitions_without_waiting() -> None:
    assert "self.cluster = ClusterMetadata(" in _source(AIOKafkaClient.__init__)
    assert list(inspect.signature(ClusterMetadata.partitions_for_topic).parameters) == ["self", "topic"]
    assert list(inspect.signature(AIOKafkaClient.add_topic).parameters) == ["self", "topic"]
