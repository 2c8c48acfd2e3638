"""A real Prometheus scrapes a target, then runs every rule and every dashboard query against it.

`run_prometheus` and `PrometheusServer` work with any scrape target. `scrape_target` is the one
place that picks it: a stand-in exposing the worker's metric names through prometheus_client
(metric_names.py), or the `host:port` in TRACKBRIDGE_LIVE_SCRAPE_TARGET. When the worker exists,
that fixture starts it instead and nothing else here changes.

Prometheus listens on loopback only, keeps its data in a temporary directory and scrapes and
evaluates every second, so the whole module takes a few seconds.
"""

from __future__ import annotations

import json
import os
import random
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
from pathlib import Path
from typing import Any

import pytest
import yaml
from metric_names import JOB, METRICS
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from promql_refs import DASHBOARD, RULES, dashboard_targets, grafana_expr, load_rules

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
    binary: str, target: str, rule_files: list[Path], workdir: Path
) -> Iterator[PrometheusServer]:
    """Prometheus scraping `target` (host:port, path /metrics) as job "trackbridge", on loopback."""
    config = {
        "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
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


# Label values the stand-in target uses; two sources so that `by (source)` has something to split.
_LABEL_VALUES = {
    "source": ["web-prod", "mobile"],
    "api_version": ["v1"],
    "endpoint": ["identify"],
    "reason": ["invalid_body"],
    "destination": ["analytics"],
    "type": ["identify"],
    "filter": ["types"],
    "topic": ["journeys.track.raw"],
    "partition": ["0", "1"],
}
_ITEMS_PER_TICK = {"consumed": 10, "mapped": 7, "skipped": 2, "dead": 1}


@contextmanager
def stand_in_worker() -> Iterator[str]:
    """A /metrics endpoint with every metric of metric_names.py moving as a busy worker's would."""
    registry = CollectorRegistry()
    made: dict[str, Any] = {}
    for metric in METRICS:
        labels = list(metric.labels)
        if metric.kind == "counter":
            made[metric.name] = Counter(
                metric.name.removesuffix("_total"), metric.name, labels, registry=registry
            )
        elif metric.kind == "gauge":
            made[metric.name] = Gauge(metric.name, metric.name, labels, registry=registry)
        else:
            made[metric.name] = Histogram(metric.name, metric.name, labels, registry=registry)

    def children(name: str) -> list[Any]:
        metric = made[name]
        names = next(m.labels for m in METRICS if m.name == name)
        if not names:
            return [metric]
        return [metric.labels(*values) for values in _combinations([_LABEL_VALUES[label] for label in names])]

    stop = threading.Event()
    rng = random.Random(7)

    def tick() -> None:
        while not stop.is_set():
            for name, child_list in everything.items():
                metric = next(m for m in METRICS if m.name == name)
                for child in child_list:
                    if metric.kind == "counter":
                        child.inc(_counter_step(name))
                    elif metric.kind == "histogram":
                        child.observe(rng.uniform(0.001, 2.0))
                    elif name == "trackbridge_consumer_lag":
                        child.set(rng.randint(0, 50))
                    elif name == "trackbridge_partitions_assigned":
                        child.set(2)
                    else:
                        child.set(rng.uniform(0.0, 2.0))
            stop.wait(0.1)

    everything = {metric.name: children(metric.name) for metric in METRICS}
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        stop.set()
        ticker.join(timeout=5)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _combinations(value_lists: list[list[str]]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for values in value_lists:
        combos = [(*combo, value) for combo in combos for value in values]
    return combos


def _counter_step(name: str) -> int:
    # Keep the accounting identity: consumed = mapped + skipped + dead-lettered.
    return {
        "trackbridge_items_consumed_total": _ITEMS_PER_TICK["consumed"],
        "trackbridge_items_mapped_total": _ITEMS_PER_TICK["mapped"],
        "trackbridge_skipped_total": _ITEMS_PER_TICK["skipped"],
        "trackbridge_dead_letters_total": _ITEMS_PER_TICK["dead"],
    }.get(name, 3)


@pytest.fixture(scope="module")
def scrape_target() -> Iterator[str]:
    """host:port of the /metrics endpoint under test (see the module docstring)."""
    given = os.environ.get("TRACKBRIDGE_LIVE_SCRAPE_TARGET")
    if given:
        yield given
        return
    with stand_in_worker() as target:
        yield target


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, scrape_target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prometheus")
    with run_prometheus(prometheus_binary, scrape_target, [RULES], workdir) as server:

        def scraped_and_evaluated() -> bool:
            up = server.query(f'up{{job="{JOB}"}} == 1')
            rules = server.rules()
            return bool(up) and all(rule.get("lastEvaluation", "").startswith("2") for rule in rules)

        _wait(scraped_and_evaluated, DATA_TIMEOUT_S, f"a scrape of {scrape_target} and a rule evaluation")
        yield server


def _until_all_have_data(server: PrometheusServer, exprs: dict[str, str]) -> dict[str, str]:
    """Query until every expr returns samples or time runs out; the ones still empty, with why."""
    missing: dict[str, str] = {}
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        missing = {}
        for name, expr in exprs.items():
            try:
                if not server.query(expr):
                    missing[name] = f"no data: {expr}"
            except QueryError as error:
                missing[name] = f"{error}: {expr}"
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.5)


def test_the_target_is_scraped_as_job_trackbridge(prometheus: PrometheusServer, scrape_target: str) -> None:
    targets = prometheus.targets()
    assert [(t["labels"]["job"], t["labels"]["instance"], t["health"]) for t in targets] == [
        (JOB, scrape_target, "up")
    ]


def test_every_rule_loads_and_evaluates_without_error(prometheus: PrometheusServer) -> None:
    loaded = {rule["name"]: rule for rule in prometheus.rules()}
    expected = {rule.get("alert") or rule["record"] for rule in load_rules()}
    assert set(loaded) == expected
    failing = {name: rule.get("lastError") for name, rule in loaded.items() if rule["health"] != "ok"}
    assert not failing


def test_every_recording_rule_records_series(prometheus: PrometheusServer) -> None:
    records = {rule["record"]: rule["record"] for rule in load_rules() if "record" in rule}
    assert not _until_all_have_data(prometheus, records)


def test_every_alert_expression_is_a_valid_query(prometheus: PrometheusServer) -> None:
    for rule in load_rules():
        if "alert" in rule:
            prometheus.query(rule["expr"])  # raises QueryError on a bad expression


def test_every_dashboard_query_returns_data(prometheus: PrometheusServer) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = {
        f"{panel['title']} / {target['refId']}": grafana_expr(target["expr"], rate_interval=RATE_INTERVAL)
        for panel, target in dashboard_targets(dashboard)
    }
    assert not _until_all_have_data(prometheus, exprs)
