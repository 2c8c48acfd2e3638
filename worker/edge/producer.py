"""The edge's one Kafka producer: envelopes in, acknowledged (acks=all) or refused in bounded time.

`send` returns once the broker has acknowledged the envelope, or raises `Unavailable` when the
producer is not connected, when the acknowledgement does not come within `edge_produce_timeout`,
or when the broker refuses the record. After a failure the producer refuses at once (a circuit
breaker) and lets one request through every `PROBE_INTERVAL_S` to find out whether Kafka is back,
so an outage costs callers a fast 503 rather than a pile of envelopes waiting in memory.

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
from typing import Any, Final

from worker.config.settings import Settings
from worker.edge.metrics import EdgeMetrics

logger = logging.getLogger("trackbridge.edge")

PROBE_INTERVAL_S: Final = 1.0
SWEEP_INTERVAL_S: Final = 0.05
"""How often overdue acknowledgements are given up on (the produce timeout's resolution)."""
CONNECT_RETRY_FIRST_S: Final = 1.0
CONNECT_RETRY_MAX_S: Final = 30.0
# Largest envelope the producer sends: the edge's body cap plus the envelope's own fields.
MAX_REQUEST_BYTES: Final = 1024 * 1024


class Unavailable(Exception):
    """The envelope is not known to be on Kafka; `str(error)` says why (no request data)."""


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
        producer = self._producer
        if producer is None:
            raise Unavailable("not connected to Kafka yet")
        probe = False
        if self._failed_at is not None:
            if self._probing or time.monotonic() - self._failed_at < PROBE_INTERVAL_S:
                raise Unavailable("Kafka did not acknowledge recent envelopes")
            self._probing = probe = True
        started = time.perf_counter()
        try:
            # Bounded by aiokafka's request timeout (= the produce timeout) while it waits for
            # metadata or buffer space; the acknowledgement by `_sweep`.
            acknowledged = await producer.send(self.topic, value, key=key)
            self._waiting.append((time.monotonic() + self.settings.edge_produce_timeout, acknowledged))
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

    def _given_up(self, started: float, error: BaseException) -> None:
        self.metrics.produce_seconds.observe(time.perf_counter() - started)
        self._fail(error)
        raise Unavailable(f"Kafka did not acknowledge the envelope: {type(error).__name__}") from None

    async def _sweep(self) -> None:
        """Give up on acknowledgements past their deadline: cancelling one wakes its request,
        which answers 503 (aiokafka skips futures already done when the batch completes)."""
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
        if producer is not None:
            await producer.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
