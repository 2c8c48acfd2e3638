"""A real Prometheus scrapes a real worker under traffic, then runs every rule and every dashboard
query against it.

`scrape_target` starts `trackbridge worker` and `trackbridge edge` on the session's embedded
broker, with the spec's test sources (plus one destination filter) and a thread producing every
spec vector -- mapped calls, batches with bad items, rejects, skips -- twice a second for as long
as the module runs, and sending Track API requests (accepted and refused) through the edge, so
rate() windows always have samples. `run_prometheus` starts Prometheus scraping the worker's web
port as job "trackbridge" and the edge as job "trackbridge-edge", with
deploy/prometheus/rules.yaml loaded; the tests then query it over its HTTP
API: every rule loads, evaluates and parses as a query, every recording rule records series, and
every dashboard query returns at least one non-NaN sample. No panel is exempt.

Prometheus listens on loopback only, keeps its data in a temporary directory and scrapes and
evaluates every second, so the whole module takes a few seconds past the worker's start.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import math
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from metric_names import EDGE_JOB, JOB
from promql_refs import DASHBOARD, RULES, dashboard_targets, grafana_expr, load_rules

from tests.kafka_helpers import (
    TEST_CONFIG,
    credentials_in,
    produce_records,
    settings_for,
    sources_toml,
    start_edge,
    start_worker,
    vector_cases,
    vector_value,
)
from worker import topology
from worker.config.settings import Settings
from worker.config.sources import load_sources
from worker.local.embedded import EmbeddedBroker

pytestmark = pytest.mark.integration

INTERVAL = "1s"
# Grafana's $__rate_interval is at least four scrape intervals.
RATE_INTERVAL = "10s"
STARTUP_TIMEOUT_S = 30.0
DATA_TIMEOUT_S = 30.0


class QueryError(Exception):
    """Prometheus answered a query with an error."""


@dataclass(frozen=True)
class PrometheusServer:
    """A running Prometheus, queried through its HTTP API."""

    url: str
    log: Path

    def get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: a bad or failing query
            body = json.load(error)
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) of `expr` now."""
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] == "vector":
            result: list[dict[str, Any]] = data["result"]
            return result
        return [{"metric": {}, "value": data["result"]}]

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.get("/api/v1/rules")["groups"] for rule in group["rules"]]

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.get("/api/v1/targets")["activeTargets"]
        return active


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def run_prometheus(
    binary: str, targets: dict[str, str], rule_files: list[Path], workdir: Path
) -> Iterator[PrometheusServer]:
    """Prometheus scraping each job's target (host:port, path /metrics), on loopback."""
    config = {
        "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in targets.items()
        ],
    }
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = _free_port()
    log = workdir / "prometheus.log"
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    with log.open("w") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=workdir)
    server = PrometheusServer(f"http://127.0.0.1:{port}", log)
    try:

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        _wait(ready, STARTUP_TIMEOUT_S, "prometheus to start")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# The sources of the spec vectors, plus a filter on one destination so `trackbridge_filtered_total`
# counts something: `warehouse` takes identify and group calls only, so web-prod's other calls (track,
# page, screen, ...) are refused there by the `types` filter.
_FILTERED_DESTINATION = ("warehouse", ["identify", "group"])
# Traffic goes on at this pace for the whole module, so every rate() window has samples.
ROUND_EVERY_S = 0.5


def mixed_round() -> list[bytes]:
    """Every spec vector once: mapped calls, batches (some with bad items), rejects and skips.

    Calls that map get a fresh `received_at`, so the end-to-end latency histogram observes real
    latencies rather than the vectors' fixed 2024 timestamps; calls that carry a reason keep theirs
    (their reason may be the timestamp)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values = []
    for case in vector_cases():
        envelope = case["envelope"]
        if case["expect_reason"] is None and isinstance(envelope.get("received_at"), str):
            envelope = {**envelope, "received_at": now}
        values.append(vector_value(envelope))
    return values


_AUTH = "Basic " + base64.b64encode(b"site_prod_1:key_prod_secret").decode()
# Through the edge each round: accepted calls (v1 and v2) and refused ones (401, 404, 400).
EDGE_ROUND = [
    ("PUT", "/api/v1/customers/live-1", b'{"plan": "pro"}', _AUTH),
    ("POST", "/api/v2/entity", b'{"type":"person","identifiers":{"id":"2"},"action":"page","name":"/"}', _AUTH),  # noqa: E501
    ("PUT", "/api/v1/customers/live-1", b"{}", None),
    ("GET", "/api/v1/nothing", None, _AUTH),
    ("PUT", "/api/v1/customers/live-1", b"{not json", _AUTH),
]  # fmt: skip


def edge_round(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for method, path, body, auth in EDGE_ROUND:
            connection.request(method, path, body, {"Authorization": auth} if auth else {})
            connection.getresponse().read()
    finally:
        connection.close()


class Traffic:
    """Produces `mixed_round()` to the worker's input topic every ROUND_EVERY_S, and sends
    `EDGE_ROUND` through the edge, in a thread."""

    def __init__(self, settings: Settings, edge_port: int) -> None:
        self.settings = settings
        self.edge_port = edge_port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def send_round(self) -> None:
        produce_records(self.settings, self.settings.raw_topic, mixed_round())
        edge_round(self.edge_port)

    def _run(self) -> None:
        try:
            while not self._stop.wait(ROUND_EVERY_S):
                self.send_round()
        except BaseException as error:  # reported by __exit__
            self._error = error

    def __enter__(self) -> Traffic:
        self.send_round()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self._error is not None and exc[0] is None:
            raise AssertionError("producing the traffic failed") from self._error


@pytest.fixture(scope="module")
def scrape_targets(
    broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """host:port of a real `trackbridge worker` and `trackbridge edge` on the embedded broker, by
    scrape job, busy with mixed traffic for as long as the module runs."""
    workdir = tmp_path_factory.mktemp("live-worker")
    config = json.loads(TEST_CONFIG.read_text())
    destination, types = _FILTERED_DESTINATION
    config["destinations"][destination] = {**config["destinations"][destination], "types": types}
    sources = workdir / "sources.toml"
    sources.write_text(sources_toml(config))
    settings = settings_for(broker.bootstrap, f"live-{os.getpid()}.", sources)
    asyncio.run(topology.create_topics(settings, topology.catalog(settings, load_sources(sources))))
    worker = start_worker(settings, workdir / "worker.log")
    edge = start_edge(settings, workdir / "edge.log")
    try:
        with Traffic(settings, edge.web_port):
            yield {JOB: f"127.0.0.1:{worker.web_port}", EDGE_JOB: f"127.0.0.1:{edge.web_port}"}
    finally:
        edge.stop(timeout=30)
        worker.stop(timeout=30)


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, scrape_targets: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prometheus")
    with run_prometheus(prometheus_binary, scrape_targets, [RULES], workdir) as server:

        def scraped_and_evaluated() -> bool:
            up = server.query("up == 1")
            rules = server.rules()
            return len(up) == len(scrape_targets) and all(
                rule.get("lastEvaluation", "").startswith("2") for rule in rules
            )

        _wait(scraped_and_evaluated, DATA_TIMEOUT_S, f"a scrape of {scrape_targets} and a rule evaluation")
        yield server


def _until_all_have_data(server: PrometheusServer, exprs: dict[str, str]) -> dict[str, str]:
    """Query until every expr returns a non-NaN sample or time runs out; the ones still without, with why."""
    missing: dict[str, str] = {}
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        missing = {}
        for name, expr in exprs.items():
            try:
                samples = server.query(expr)
                if not samples:
                    missing[name] = f"no data: {expr}"
                elif all(math.isnan(float(sample["value"][1])) for sample in samples):
                    missing[name] = f"only NaN: {expr}"
            except QueryError as error:
                missing[name] = f"{error}: {expr}"
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.5)


def test_no_metrics_page_holds_the_credentials_the_traffic_used(scrape_targets: dict[str, str]) -> None:
    for target in scrape_targets.values():
        with urllib.request.urlopen(f"http://{target}/metrics", timeout=5) as response:
            page = response.read()
        assert b"trackbridge_" in page
        assert not credentials_in(page), target


def test_the_worker_is_scraped_as_job_trackbridge_and_the_edge_as_trackbridge_edge(
    prometheus: PrometheusServer, scrape_targets: dict[str, str]
) -> None:
    targets = prometheus.targets()
    assert sorted((t["labels"]["job"], t["labels"]["instance"], t["health"]) for t in targets) == sorted(
        (job, target, "up") for job, target in scrape_targets.items()
    )


def test_every_rule_loads_and_evaluates_without_error(prometheus: PrometheusServer) -> None:
    loaded = {rule["name"]: rule for rule in prometheus.rules()}
    expected = {rule.get("alert") or rule["record"] for rule in load_rules()}
    assert set(loaded) == expected
    failing = {name: rule.get("lastError") for name, rule in loaded.items() if rule["health"] != "ok"}
    assert not failing


def test_every_recording_rule_records_series(prometheus: PrometheusServer) -> None:
    records = {rule["record"]: rule["record"] for rule in load_rules() if "record" in rule}
    assert not _until_all_have_data(prometheus, records)


def test_every_rule_expression_is_a_valid_query(prometheus: PrometheusServer) -> None:
    for rule in load_rules():
        prometheus.query(rule["expr"])  # raises QueryError on a bad expression


def test_every_dashboard_query_returns_data(prometheus: PrometheusServer) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {
        f"{panel['title']} / {target['refId']}": grafana_expr(target["expr"], rate_interval=RATE_INTERVAL)
        for panel, target in dashboard_targets(dashboard)
    }
    assert not _until_all_have_data(prometheus, exprs)
