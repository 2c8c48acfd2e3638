"""The Faust app: one agent on the raw topic, the health and metrics pages, at-least-once commits.

The agent consumes the raw topic (keys and values as raw bytes) one fetched batch at a time (see
worker/runtime/driver.py for why batches, not events): for each batch it translates and routes every
call, sends the records in whole per-partition batches (worker/produce/sender.py) through the
aiokafka producer under Faust's, waits for all acknowledgements, and only then acknowledges the
batch to the consumer, whose commit timer commits its offsets. A batch whose records are not all
acknowledged stays uncommitted while what was not acknowledged is retried (pipeline.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Awaitable
from functools import partial
from typing import Any, Final

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from topics.catalog import OUTPUT_MAX_MESSAGE_BYTES
from worker import web
from worker.config.settings import Settings
from worker.config.sources import SourcesConfig
from worker.logs import flush_collapsed
from worker.metrics import Metrics
from worker.produce.sender import BatchSender
from worker.routing import Router
from worker.runtime import driver
from worker.runtime.driver import FetchedBatch
from worker.runtime.health import BrokerProbe
from worker.runtime.pipeline import MappedBatch, Pipeline, Translate
from worker.sealing import sealer_for

logger = logging.getLogger(__name__)

AGENT_NAME = "trackbridge.translate"
# Fetched batches waiting for the agent: one being processed, one or two prefetched.
INBOX_BATCHES = 2
# Bytes of records the producer may gather per partition into one request. A fetched batch of
# 500 calls makes ~1,400 records over a handful of partitions; Faust's 16 KiB default splits that
# into dozens of requests per partition, each waiting for the previous one to be drained.
PRODUCER_MAX_BATCH_BYTES = 512 * 1024
# Put in the agent's inbox to wake it when its delivering task has ended.
_WAKE: Final = object()


class WorkerApp:
    """The Faust app for one settings + sources file, with its router, pipeline and metrics."""

    def __init__(
        self,
        settings: Settings,
        sources: SourcesConfig,
        *,
        metrics: Metrics | None = None,
        translate: Translate | None = None,
    ) -> None:
        if translate is None:
            from mapping import Translator

            # The worker sees few distinct authorization headers: parse each once.
            translate = Translator()
        self.settings = settings
        self.config = sources.with_prefix(settings.topic_prefix)
        self.router = Router(self.config, sealer=sealer_for(settings.sealing_keys))
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics.know_sources(source.name for source in sources.sources)
        self.datadir = tempfile.TemporaryDirectory(prefix="trackbridge-faust-")
        self.app = faust.App(
            settings.group_id,
            broker=settings.broker_url(),
            broker_credentials=settings.faust_credentials(),
            broker_client_id=f"trackbridge-{settings.group_id}",
            broker_session_timeout=settings.session_timeout,
            broker_rebalance_timeout=settings.rebalance_timeout,
            broker_heartbeat_interval=settings.heartbeat_interval,
            broker_commit_interval=settings.commit_interval,
            broker_max_poll_records=settings.batch_size,
            consumer_auto_offset_reset="earliest",
            producer_request_timeout=settings.produce_timeout,
            producer_max_request_size=OUTPUT_MAX_MESSAGE_BYTES,
            producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
            producer_acks=-1,
            stream_wait_empty=True,
            topic_disable_leader=True,
            topic_allow_declare=False,
            autodiscover=False,
            datadir=self.datadir.name,
            web_enabled=True,
            web_bind=settings.web_host,
            web_port=settings.web_port,
            web_host=settings.web_host,
        )
        driver.install(
            self.app,
            driver.Tuning(
                fetch_max_wait_ms=settings.fetch_max_wait_ms,
                enable_idempotence=settings.enable_idempotence,
                batch_timeout=settings.batch_timeout,
            ),
        )
        self.pipeline = Pipeline(self.router, translate, self.metrics)
        # acks=False: Faust's per-event acking is not used for this topic; batches are
        # acknowledged to the consumer by the agent once their outputs are acknowledged.
        self.topic = self.app.topic(
            settings.raw_topic,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            acks=False,
            maxsize=INBOX_BATCHES,
        )
        self.app.agent(self.topic, name=AGENT_NAME, concurrency=1)(self._agent)
        self.probe = BrokerProbe(settings, on_tick=flush_collapsed)
        self.app.task(self._probe_brokers)
        self.assignments = 0
        """Assignments received since the start (empty ones too): > 0 once the worker is in the group."""
        self._add_pages()
        self.app.on_partitions_assigned.connect(self._on_partitions_assigned)

    async def _agent(self, stream: faust.StreamT[Any]) -> None:
        """Process fetched batches of the raw topic in order, acknowledging each when done.

        Two stages, one batch apart: this coroutine translates and routes a batch while a second
        task (`_deliver`) produces the one before it and waits for its acknowledgements, so the
        broker's round trip overlaps with translation instead of adding to it. Batches are still
        produced, acknowledged and committed one after the other, in order: a batch is sent only
        once every record of the one before it is acknowledged, so one person's records keep
        their order on every output partition, and a batch left stale by a rewind (after a
        delivery given up) or a rebalance is dropped unsent.
        """
        consumer = driver.consumer_of(self.app)
        inbox = stream.channel.queue  # type: ignore[attr-defined]
        await consumer.attach_inbox(inbox)
        send = BatchSender(
            driver.producer_of(self.app).aiokafka_producer(), max_request_size=OUTPUT_MAX_MESSAGE_BYTES
        )
        mapped_batches: asyncio.Queue[MappedBatch] = asyncio.Queue(maxsize=1)
        delivering = asyncio.ensure_future(self._deliver(mapped_batches, consumer, send))

        def wake(task: asyncio.Future[None]) -> None:
            # A crash of the delivering task must end this one too (its supervisor restarts the
            # agent): wake it if it is waiting for a batch.
            if not task.cancelled() and not inbox.full():
                inbox.put_nowait(_WAKE)

        delivering.add_done_callback(wake)
        try:
            async for batch in stream:
                if delivering.done():
                    delivering.result()  # raises what the delivering task died of
                    return
                if not isinstance(batch, FetchedBatch) or not consumer.begin(batch):
                    continue
                try:
                    mapped = await self.pipeline.map_in_steps(batch)
                    if mapped_batches.full():
                        await _first(mapped_batches.put(mapped), delivering)
                    else:
                        mapped_batches.put_nowait(mapped)
                except BaseException:
                    consumer.end(batch)
                    raise
        finally:
            delivering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivering
            consumer.detach_inbox(inbox)

    async def _deliver(
        self, mapped_batches: asyncio.Queue[MappedBatch], consumer: driver.Consumer, send: BatchSender
    ) -> None:
        """Produce each mapped batch, wait for its acknowledgements, and acknowledge it to the
        consumer (whose commit timer commits its offsets); one at a time, in order."""
        pipeline = self.pipeline
        while True:
            mapped = await mapped_batches.get()
            batch = mapped.batch
            try:
                if not consumer.is_current(batch):
                    continue  # a rewind or rebalance since it was fetched: its records come again
                delivered = await pipeline.deliver(mapped, send, partial(consumer.is_current, batch))
                if delivered and consumer.acknowledge(batch):
                    pipeline.settle(mapped)
                elif not delivered:
                    await consumer.abandon(batch)
            finally:
                consumer.end(batch)

    async def _on_partitions_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Faust's `on_partitions_assigned` signal: `args[0]` is the new assignment."""
        assigned: set[Any] = args[0] if args else set()
        self.assignments += 1
        self.metrics.rebalances.inc()
        self.metrics.partitions.set(len(assigned))
        logger.info(
            "assigned %d partition(s): %s",
            len(assigned),
            ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)) or "none",
        )

    async def _probe_brokers(self) -> None:
        """A Faust task: ask the brokers for metadata every few seconds (worker/runtime/health.py)."""
        await self.probe.run()

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the worker is in the group (it has received an assignment, even an empty
        one: a member idle by design, with more members than partitions, is ready), not
        rebalancing, a broker has answered within `TRACKBRIDGE_BROKER_TIMEOUT`, and it can write
        dead letters."""
        app = self.app
        try:
            assigned = len(app.consumer.assignment())
        except Exception:  # the consumer has not started
            assigned = 0
        rebalancing = bool(app.rebalancing)
        in_group = self.assignments > 0
        unreachable = self.probe.unreachable_for()
        reachable = self.probe.reachable()
        blocked = self.pipeline.blocked
        details: dict[str, Any] = {
            "in_group": in_group,
            "assigned_partitions": assigned,
            "rebalancing": rebalancing,
            "brokers_reachable": reachable,
            "dead_letters_blocked": blocked,
        }
        if unreachable:
            details["brokers_unanswered_seconds"] = round(unreachable, 1)
        return in_group and not rebalancing and reachable and not blocked, details

    def _add_pages(self) -> None:
        worker = self
        consumer_commit = self.metrics.watch_commits

        def last_commit_at() -> float | None:
            consumer = worker.app.consumer
            return consumer.last_commit_at if isinstance(consumer, driver.Consumer) else None

        consumer_commit(last_commit_at)

        def lags() -> list[tuple[str, int, int]]:
            # Unknown, not frozen: with no broker answering, the high watermark cannot be refreshed.
            consumer = worker.app.consumer
            if not isinstance(consumer, driver.Consumer) or not worker.probe.reachable():
                return []
            return consumer.lags()

        self.metrics.watch_lag(lags)

        def commit_failures() -> float:
            consumer = worker.app.consumer
            return float(consumer.commit_failures) if isinstance(consumer, driver.Consumer) else 0.0

        self.metrics.commit_failures.source = commit_failures
        self.metrics.ready.set_function(lambda: 1.0 if worker.ready()[0] else 0.0)
        self.metrics.broker_unreachable.set_function(self.probe.unreachable_for)

        class Healthz(View):
            # Liveness: the event loop answers. Not the brokers, nor the consumer's progress: a
            # restart fixes neither (docs/deploy.md, "Health checks").
            async def get(self, request: Request) -> Response:
                return self.json({"status": "ok", "brokers_reachable": worker.probe.reachable()})

        class Readyz(View):
            async def get(self, request: Request) -> Response:
                ready, details = worker.ready()
                return self.json({"ready": ready, **details}, status=200 if ready else 503)

        class MetricsPage(View):
            async def get(self, request: Request) -> Response:
                # aiohttp wants the charset outside content_type; the header carries it whole.
                return self.bytes(
                    generate_latest(worker.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
                )

        self.app.page(web.HEALTHZ)(Healthz)
        self.app.page(web.READYZ)(Readyz)
        self.app.page(web.METRICS)(MetricsPage)


async def _first(step: Awaitable[None], delivering: asyncio.Future[None]) -> None:
    """Wait for `step`, unless the delivering task ends first: then raise what it died of."""
    task = asyncio.ensure_future(step)
    await asyncio.wait({task, delivering}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        delivering.result()
        raise RuntimeError("the delivering task ended")
