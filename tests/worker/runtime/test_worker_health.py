"""Health that tells the truth: an idle member is ready, a worker cut off from every broker is not
(and its lag is unknown, not frozen), liveness stays up through an outage, and the client's error
flood stays a few lines."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.kafka_helpers import KafkaProxy, ScrapedMetrics, envelope_stream, produce_records, with_settings
from topics.catalog import Catalog
from worker.config.settings import Settings
from worker.local.embedded import EmbeddedBroker, free_port
from worker.local.process import WorkerProcess

pytestmark = pytest.mark.integration

BROKER_TIMEOUT = 3.0


class CuttableProxy(KafkaProxy):
    """A KafkaProxy that can cut every connection and refuse new ones: a network partition
    between the worker and every broker."""

    def __init__(self, upstream_port: int, port: int) -> None:
        super().__init__(upstream_port, port)
        self.refusing = False
        self._clients: set[asyncio.StreamWriter] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        self._clients.add(writer)
        try:
            await super()._serve(reader, writer)
        finally:
            self._clients.discard(writer)

    async def _cut(self) -> None:
        self.refusing = True
        for writer in list(self._clients):
            writer.transport.abort()

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(10)

    def restore(self) -> None:
        self.refusing = False


def _get(worker: WorkerProcess, path: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{worker.web_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.2)


def test_an_idle_member_of_a_healthy_group_is_ready(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    """Two workers on a one-partition input: the one without a partition is idle by design, ready."""
    settings = with_settings(kafka_settings, input_partitions=1)
    topic_factory(settings)
    workers = [worker_factory(settings, wait=False) for _ in range(2)]
    _wait_for(lambda: all(worker.ready() for worker in workers), 60, "both workers to be ready")
    _wait_for(
        lambda: sorted(json.loads(_get(w, "/readyz")[1])["assigned_partitions"] for w in workers) == [0, 1],
        30,
        "the partition to settle on one worker",
    )
    for worker in workers:
        status, body = _get(worker, "/readyz")
        assert status == 200, body
        metrics = ScrapedMetrics(worker.metrics_text())
        assert metrics.get_sample_value("trackbridge_ready") == 1
        assert (metrics.get_sample_value("trackbridge_rebalances_total") or 0) >= 1


def test_a_broker_outage_makes_the_worker_unready_with_unknown_lag_but_alive(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    broker_port, proxy_port = free_port(), free_port()
    settings = with_settings(
        kafka_settings, bootstrap_servers=(f"127.0.0.1:{proxy_port}",), broker_timeout=BROKER_TIMEOUT
    )
    with (
        EmbeddedBroker(port=broker_port, advertised_port=proxy_port),
        CuttableProxy(broker_port, proxy_port) as proxy,
    ):
        topic_factory(settings)
        produce_records(settings, settings.raw_topic, envelope_stream(50, "outage", poison_every=0))
        worker = worker_factory(settings)

        def lag_series() -> int:
            text = worker.metrics_text()
            return sum(line.startswith("trackbridge_consumer_lag{") for line in text.splitlines())

        _wait_for(lambda: lag_series() > 0, 30, "the lag gauge")

        proxy.cut()
        cut_at = time.monotonic()
        log_before = len(worker.log_text().splitlines())
        _wait_for(lambda: _get(worker, "/readyz")[0] == 503, BROKER_TIMEOUT + 10, "/readyz to answer 503")
        assert time.monotonic() - cut_at >= BROKER_TIMEOUT - 0.5, "not ready before the documented bound"
        time.sleep(6)  # the outage goes on
        status, body = _get(worker, "/readyz")
        assert status == 503
        assert json.loads(body)["brokers_reachable"] is False
        assert _get(worker, "/healthz")[0] == 200, "liveness must not restart a worker over a broker outage"
        text = worker.metrics_text()
        metrics = ScrapedMetrics(text)
        assert (metrics.get_sample_value("trackbridge_broker_unreachable_seconds") or 0) >= BROKER_TIMEOUT
        assert metrics.get_sample_value("trackbridge_ready") == 0
        assert "trackbridge_consumer_lag{" not in text, "lag must be unknown, not frozen"
        outage_lines = worker.log_text().splitlines()[log_before:]
        client_errors = [line for line in outage_lines if " aiokafka" in line and "ERROR" in line]
        assert len(client_errors) <= 10, "\n".join(client_errors[:40])
        assert worker.returncode is None

        proxy.restore()
        _wait_for(worker.ready, 60, "/readyz to answer 200 again")
        _wait_for(lambda: lag_series() > 0, 30, "the lag gauge to come back")
        metrics = ScrapedMetrics(worker.metrics_text())
        assert metrics.get_sample_value("trackbridge_broker_unreachable_seconds") == 0
        assert worker.stop() == 0
