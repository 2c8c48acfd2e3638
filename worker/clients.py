"""Kafka clients for the commands and tools beside the worker (send, tail, redrive, the edge, bench):
configured from the same settings as the worker. The worker's own clients are Faust's."""

from __future__ import annotations

from typing import Any

from topics.catalog import OUTPUT_MAX_MESSAGE_BYTES
from worker.config.settings import Settings


def producer(settings: Settings, *, client_id: str, **overrides: Any) -> Any:
    """An `AIOKafkaProducer` that waits for every in-sync replica (acks=all)."""
    from aiokafka import AIOKafkaProducer

    options: dict[str, Any] = {
        "bootstrap_servers": list(settings.bootstrap_servers),
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": settings.enable_idempotence,
        "max_batch_size": 256 * 1024,
        "max_request_size": OUTPUT_MAX_MESSAGE_BYTES,
        "linger_ms": 5,
        **settings.kafka_auth(),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def consumer(settings: Settings, *, client_id: str, **overrides: Any) -> Any:
    """An `AIOKafkaConsumer` that commits only when told to."""
    from aiokafka import AIOKafkaConsumer

    options: dict[str, Any] = {
        "bootstrap_servers": list(settings.bootstrap_servers),
        "client_id": client_id,
        "enable_auto_commit": False,
        "fetch_max_wait_ms": min(settings.fetch_max_wait_ms, 500),
        "max_partition_fetch_bytes": OUTPUT_MAX_MESSAGE_BYTES,
        **settings.kafka_auth(),
    }
    options.update(overrides)
    return AIOKafkaConsumer(**options)
