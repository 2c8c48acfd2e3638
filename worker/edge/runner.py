"""Running the edge in this process: JSON logs, the HTTP server, the producer, a graceful stop.

`run_edge` serves at once (answering 503 until the producer connects, so an edge started before
Kafka simply waits) and returns 0 after SIGTERM/SIGINT: it stops accepting connections, answers
every request in flight, flushes the producer and exits, all within `shutdown_timeout` seconds;
past that it returns 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from worker.collector import tune_gc
from worker.config.settings import Settings
from worker.config.sources import SourcesConfig
from worker.edge.server import Edge
from worker.logs import configure_logging
from worker.signals import stop_on_signals

logger = logging.getLogger("trackbridge.edge")


async def serve(edge: Edge, stop: asyncio.Event) -> int:
    """Serve until `stop` is set, then shut down gracefully; the exit status."""
    settings = edge.settings
    runner = web.AppRunner(
        edge.app, access_log=None, handle_signals=False, shutdown_timeout=settings.shutdown_timeout
    )
    await runner.setup()
    context = settings.edge_ssl_context()
    site = web.TCPSite(runner, settings.edge_host, settings.edge_port, ssl_context=context, backlog=1024)
    await site.start()
    scheme = "https" if context else "http"
    logger.info(
        "Track API edge on %s://%s:%d; producing to %s",
        scheme,
        settings.edge_host,
        settings.edge_port,
        settings.raw_topic,
        extra={"event": "serving"},
    )
    connecting = asyncio.create_task(edge.producer.connect(stop))
    await stop.wait()
    edge.stopping = True
    logger.info("stopping: answering the requests in flight", extra={"event": "stopping"})
    try:
        async with asyncio.timeout(settings.shutdown_timeout):
            await connecting
            await runner.cleanup()  # stops listening, waits for the handlers in flight
            await edge.producer.close()  # sends what is buffered
    except TimeoutError:
        logger.critical(
            "shutdown did not finish within %.0f s; exiting without it",
            settings.shutdown_timeout,
            extra={"event": "shutdown_timeout"},
        )
        return 1
    logger.info("stopped", extra={"event": "stopped"})
    return 0


def run_edge(settings: Settings, sources: SourcesConfig) -> int:
    """Run the edge until SIGTERM/SIGINT (status 0), or 1 if it cannot stop in time."""
    configure_logging(settings.log_level, settings.log_format)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with stop_on_signals(loop) as stop:
            edge = Edge(settings, sources)
            tune_gc()
            return loop.run_until_complete(serve(edge, stop))
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
