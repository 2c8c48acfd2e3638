"""A 200 from the edge means the envelope is on Kafka; a broker that cannot acknowledge turns the
answers into 503s; SIGTERM answers what is in flight and exits 0.

The broker cut is the worker's tests' TCP proxy (tests/kafka_helpers.py `KafkaProxy`) swallowing
Produce requests: the edge's envelopes get no acknowledgement, so it must answer 503 within its
produce timeout, and every request it answered 200 must be on the input topic afterwards.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.kafka_helpers import Consume, KafkaProxy, ScrapedMetrics, consume_records, with_settings
from topics.catalog import Catalog
from worker.config.settings import Settings
from worker.local.embedded import EmbeddedBroker, free_port
from worker.local.process import EdgeProcess

pytestmark = pytest.mark.integration

AUTH = "Basic " + base64.b64encode(b"site_prod_1:key_prod_secret").decode()


def post(port: int, request_id: str, timeout: float = 30.0) -> tuple[int, str | None]:
    """One identify through a fresh connection, keyed for the test by its Idempotency-Key."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        body = json.dumps({"plan": request_id}).encode()
        headers = {"Authorization": AUTH, "Idempotency-Key": request_id, "Content-Type": "application/json"}
        connection.request("PUT", f"/api/v1/customers/{request_id}", body, headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Retry-After")
    finally:
        connection.close()


def on_topic(settings: Settings) -> dict[str, dict[str, object]]:
    """The envelopes on the input topic, by request id; each must be a whole envelope."""
    found = {}
    for record in consume_records(settings, settings.raw_topic, timeout=10):
        envelope = json.loads(record.value)
        assert envelope["body"] == {"plan": envelope["request_id"]}, "a partial or mixed envelope"
        found[envelope["request_id"]] = envelope
    return found


def test_a_broker_that_stops_acknowledging_turns_answers_into_503s_and_loses_nothing_answered_200(
    kafka_settings: Settings, topic_factory: Callable[..., Catalog], edge_factory: Callable[..., EdgeProcess]
) -> None:
    broker_port, proxy_port = free_port(), free_port()
    settings = with_settings(
        kafka_settings, bootstrap_servers=(f"127.0.0.1:{proxy_port}",), edge_produce_timeout=1.0
    )
    answers: dict[str, tuple[int, str | None]] = {}
    stop = threading.Event()

    def traffic(worker: int) -> None:
        n = 0
        while not stop.is_set():
            request_id = f"cut-{worker}-{n}"
            answers[request_id] = post(edge.web_port, request_id)
            n += 1

    with (
        EmbeddedBroker(port=broker_port, advertised_port=proxy_port),
        KafkaProxy(broker_port, proxy_port) as proxy,
    ):
        topic_factory(settings)
        edge = edge_factory(settings)
        with ThreadPoolExecutor(4) as pool:
            running = [pool.submit(traffic, worker) for worker in range(4)]
            time.sleep(1.0)
            proxy.drop_produce = True
            time.sleep(4.0)
            proxy.drop_produce = False
            time.sleep(3.0)
            stop.set()
            for future in running:
                future.result()
        statuses = [status for status, _ in answers.values()]
        assert statuses.count(200) > 0 and statuses.count(503) > 0, statuses
        assert set(statuses) == {200, 503}
        assert all(retry == "2" for status, retry in answers.values() if status == 503)
        assert proxy.dropped > 0
        # Back to 200s once the broker acknowledges again.
        assert [post(edge.web_port, f"after-{i}")[0] for i in range(5)] == [200] * 5

        answered_200 = {rid for rid, (status, _) in answers.items() if status == 200}
        found = on_topic(settings)
        assert answered_200 <= set(found), f"lost: {sorted(answered_200 - set(found))[:5]}"
        assert set(found) <= set(answers) | {f"after-{i}" for i in range(5)}
        metrics = ScrapedMetrics(edge.metrics_text())
        assert metrics.get_sample_value(
            "trackbridge_edge_requests_total", {"endpoint": "v1.identify", "status": "503"}
        ) == statuses.count(503)
        assert metrics.get_sample_value(
            "trackbridge_edge_refused_total", {"reason": "kafka_unavailable"}
        ) == statuses.count(503)
        assert edge.stop() == 0


def test_an_edge_without_kafka_serves_503_and_is_not_ready_until_kafka_answers(
    kafka_settings: Settings, edge_factory: Callable[..., EdgeProcess]
) -> None:
    settings = with_settings(kafka_settings, bootstrap_servers=(f"127.0.0.1:{free_port()}",))
    edge = edge_factory(settings, wait=False)
    deadline = time.monotonic() + 30
    while not edge.healthy():
        assert time.monotonic() < deadline, edge.log_text()
        time.sleep(0.1)
    assert not edge.ready()
    assert post(edge.web_port, "nobroker") == (503, "2")
    assert "kafka_unreachable" in edge.log_text()
    assert edge.stop() == 0


def test_sigterm_answers_every_request_in_flight_and_exits_0(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    edge_factory: Callable[..., EdgeProcess],
    consume: Consume,
) -> None:
    topic_factory()
    # A long linger keeps every request in flight for a while: SIGTERM lands among them.
    edge = edge_factory(with_settings(kafka_settings, edge_linger_ms=1500))
    with ThreadPoolExecutor(32) as pool:
        pending = [pool.submit(post, edge.web_port, f"term-{i}") for i in range(32)]
        time.sleep(0.5)
        started = time.monotonic()
        assert edge.process is not None
        edge.process.terminate()
        answers = [future.result()[0] for future in pending]
    assert edge.process.wait(timeout=kafka_settings.shutdown_timeout) == 0
    assert time.monotonic() - started < kafka_settings.shutdown_timeout
    assert answers == [200] * 32  # accepted before SIGTERM: every one answered, none dropped
    assert {f"term-{i}" for i in range(32)} <= set(on_topic(kafka_settings))
    log = [json.loads(line) for line in edge.log_text().splitlines() if line.startswith("{")]
    assert [entry["event"] for entry in log if entry.get("event") in ("stopping", "stopped")] == [
        "stopping",
        "stopped",
    ]
    assert "key_prod_secret" not in edge.log_text() and AUTH not in edge.log_text()
