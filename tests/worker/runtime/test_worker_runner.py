"""The worker process around Faust: logging that keeps debug calls free, waiting for the brokers."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from typing import Any

import pytest

from worker.config.settings import Settings, load_settings
from worker.config.sources import parse_sources
from worker.local.embedded import free_port
from worker.runtime.runner import _FaustWorker, configure_logging, wait_for_broker, waiting_pages

SOURCES = parse_sources(
    """
dead_letter_topic = "dlq"
[destinations.a]
topic = "out.a"
[[sources]]
name = "s"
site_id = "site"
api_key_sha256 = "a0693410cc39535f7059c0d21931e776f3923473e2f2761ab585b94071b21625"
destinations = ["a"]
"""
)


def _settings(**environ: str) -> Settings:
    settings, _ = load_settings(
        environ={"TRACKBRIDGE_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", **environ}
    )
    return settings


def test_the_root_logger_stays_at_the_configured_level_under_faust() -> None:
    from worker.runtime.app import WorkerApp

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    configure_logging("INFO")
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        app = WorkerApp(_settings(), SOURCES, translate=lambda raw: None)  # type: ignore[arg-type,return-value]
        worker = _FaustWorker(app.app, loop=loop, loglevel="INFO", shutdown_timeout=1)
        assert worker.override_logging is False  # mode would reset the root logger to DEBUG
        assert worker.spinner is None
        worker.on_setup_root_logger(logging.getLogger(), logging.INFO)
        assert logging.getLogger().level == logging.INFO
        assert not logging.getLogger("worker.runtime.driver").isEnabledFor(logging.DEBUG)
        app.datadir.cleanup()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_waiting_for_unreachable_brokers_logs_and_stops_on_request(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> bool:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(1.5, stop.set)
        return await wait_for_broker(_settings(), stop)

    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        assert asyncio.run(run()) is False
    assert any("not reachable" in message and "retrying" in message for message in caplog.messages)


def test_while_waiting_the_worker_is_alive_not_ready_and_not_scraped() -> None:
    """/healthz 200, /readyz 503, and /metrics 503: a worker that cannot reach Kafka counts as down
    for Prometheus (`up` 0) instead of a 404 that reads as a misconfigured scrape."""
    port = free_port()
    settings = _settings(TRACKBRIDGE_WEB_PORT=str(port))

    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    async def probe() -> dict[str, tuple[int, bytes]]:
        async with waiting_pages(settings):
            return {path: await asyncio.to_thread(get, path) for path in ("/healthz", "/readyz", "/metrics")}

    pages = asyncio.run(probe())
    assert {path: status for path, (status, _) in pages.items()} == {
        "/healthz": 200,
        "/readyz": 503,
        "/metrics": 503,
    }
    assert json.loads(pages["/readyz"][1]) == {"ready": False, "waiting_for": "kafka"}


def test_the_fetch_wait_setting_reaches_aiokafka() -> None:
    """Faust writes fetch_max_wait_ms=1500 into its AIOKafkaConsumer call; the driver's thread fixes it."""
    from worker.runtime.app import WorkerApp
    from worker.runtime.driver import ConsumerThread

    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        app = WorkerApp(_settings(TRACKBRIDGE_FETCH_MAX_WAIT_MS="37"), SOURCES, translate=lambda raw: None)  # type: ignore[arg-type,return-value]
        thread = app.app.consumer._thread  # type: ignore[attr-defined]
        assert isinstance(thread, ConsumerThread)

        async def create() -> Any:
            consumer = thread._create_worker_consumer(app.app.transport)  # type: ignore[arg-type]
            await consumer.stop()
            return consumer

        consumer = loop.run_until_complete(create())
        assert consumer._fetch_max_wait_ms == 37
        assert consumer._max_poll_records == app.settings.batch_size
        app.datadir.cleanup()
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_a_worker_that_cannot_write_dead_letters_is_not_ready() -> None:
    from worker.runtime.app import WorkerApp

    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        app = WorkerApp(_settings(), SOURCES, translate=lambda raw: None)  # type: ignore[arg-type,return-value]
        app.assignments = 1  # in the group, idle: ready as far as the group goes
        ready, details = app.ready()
        assert ready and details["dead_letters_blocked"] is False
        app.pipeline.blocked = True
        ready, details = app.ready()
        assert not ready and details["dead_letters_blocked"] is True
        app.datadir.cleanup()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
