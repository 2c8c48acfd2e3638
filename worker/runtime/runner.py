"""Running the worker in this process: logging, waiting for the brokers, Faust's worker, exit status.

`run_worker` returns 0 after a clean stop (SIGTERM or SIGINT: stop taking input, finish and
commit the batch in flight) and 1 if Faust crashed. While no broker answers it waits and retries
with a log line per attempt instead of failing, so a worker started before Kafka simply waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import Any, Final

import faust

from worker import web
from worker.collector import tune_gc
from worker.config.settings import Settings
from worker.config.sources import SourcesConfig
from worker.logs import configure_logging, flush_collapsed
from worker.signals import stop_on_signals

logger = logging.getLogger("trackbridge")

__all__ = ["configure_logging", "run_worker", "wait_for_broker", "waiting_pages"]

BROKER_RETRY_FIRST: Final = 1.0
BROKER_RETRY_MAX: Final = 30.0


class _FaustWorker(faust.Worker):
    """Faust's worker, leaving logging and stdout as configured (no spinner, no redirection).

    After SIGTERM/SIGINT it has `shutdown_timeout` seconds to finish the batch in flight, commit
    and stop; past that (a broker gone for good can hang aiokafka's shutdown) the process exits
    with status 1 and the uncommitted batch is read again by the next worker.
    """

    def __init__(self, app: faust.App, *, shutdown_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, quiet=True, redirect_stdouts=False, override_logging=False, **kwargs)
        self.spinner = None
        self._shutdown_timeout = shutdown_timeout
        self._watchdog: threading.Timer | None = None

    def _on_sigterm(self) -> None:
        self._arm_watchdog()
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._arm_watchdog()
        super()._on_sigint()

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._shutdown_timeout, _give_up, (self._shutdown_timeout,))
            self._watchdog.daemon = True
            self._watchdog.start()


def _give_up(timeout: float) -> None:
    logger.critical("shutdown did not finish within %.0f s; exiting without it", timeout)
    flush_collapsed(everything=True)
    logging.shutdown()
    os._exit(1)


async def wait_for_broker(settings: Settings, stop: asyncio.Event) -> bool:
    """Return True once a bootstrap server answers; False if `stop` is set first."""
    from aiokafka.client import AIOKafkaClient

    servers = ",".join(settings.bootstrap_servers)
    delay = BROKER_RETRY_FIRST
    while not stop.is_set():
        client = AIOKafkaClient(
            bootstrap_servers=list(settings.bootstrap_servers),
            request_timeout_ms=10_000,
            **settings.kafka_auth(),
        )
        try:
            await client.bootstrap()
            topics = client.cluster.topics()
        except Exception as error:
            logger.warning("Kafka brokers %s not reachable (%s); retrying in %.0f s", servers, error, delay)
        else:
            if settings.raw_topic not in topics:
                logger.warning(
                    "input topic %r does not exist yet (create it with `trackbridge topics create`)",
                    settings.raw_topic,
                )
            logger.info("Kafka brokers %s reachable", servers)
            return True
        finally:
            await client.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, BROKER_RETRY_MAX)
    return False


@contextlib.asynccontextmanager
async def waiting_pages(settings: Settings) -> AsyncIterator[None]:
    """Serve /healthz (200), /readyz (503) and /metrics (503) while waiting for the brokers.

    A worker waiting for Kafka is alive, not ready: without this an orchestrator's liveness probe
    would restart it in a loop. It translates nothing yet, so a scrape of /metrics fails on purpose
    (Prometheus then records `up` 0, and `TrackbridgeDown` fires if no worker ever gets through).
    Faust's own web server takes the port over once Kafka answers.
    """
    from aiohttp import web as aiohttp

    async def healthz(request: aiohttp.Request) -> aiohttp.Response:
        return aiohttp.json_response({"status": "ok", "waiting_for": "kafka"})

    async def readyz(request: aiohttp.Request) -> aiohttp.Response:
        return aiohttp.json_response({"ready": False, "waiting_for": "kafka"}, status=503)

    async def metrics(request: aiohttp.Request) -> aiohttp.Response:
        return aiohttp.Response(text="waiting for the Kafka brokers\n", status=503)

    app = aiohttp.Application()
    app.router.add_get(web.HEALTHZ, healthz)
    app.router.add_get(web.READYZ, readyz)
    app.router.add_get(web.METRICS, metrics)
    runner = aiohttp.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await aiohttp.TCPSite(runner, settings.web_host, settings.web_port).start()
    except OSError as error:
        logger.warning("cannot serve /healthz on port %d while waiting: %s", settings.web_port, error)
    try:
        yield
    finally:
        await runner.cleanup()


async def _wait_serving(settings: Settings, stop: asyncio.Event) -> bool:
    async with waiting_pages(settings):
        return await wait_for_broker(settings, stop)


def run_worker(settings: Settings, sources: SourcesConfig) -> int:
    """Run the worker until SIGTERM/SIGINT (status 0) or a crash (status 1)."""
    from worker.runtime.app import WorkerApp

    configure_logging(settings.log_level, settings.log_format)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with stop_on_signals(loop) as stop:
        reachable = loop.run_until_complete(_wait_serving(settings, stop))
    if not reachable:
        logger.info("stopped while waiting for the Kafka brokers")
        loop.close()
        return 0
    worker_app = WorkerApp(settings, sources)
    logger.info(
        "consuming %s as group %r; producing to %s; web on %s:%d",
        settings.raw_topic,
        settings.group_id,
        ", ".join(sorted(worker_app.router.topics)),
        settings.web_host,
        settings.web_port,
    )
    tune_gc()
    worker = _FaustWorker(
        worker_app.app, loop=loop, loglevel=settings.log_level, shutdown_timeout=settings.shutdown_timeout
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        flush_collapsed(everything=True)
        worker_app.datadir.cleanup()
    return 0  # pragma: no cover - execute_from_commandline always exits
