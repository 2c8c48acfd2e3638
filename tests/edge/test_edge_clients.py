"""The official Customer.io clients, pointed at the edge, reach the destination topics.

customerio (PyPI) and customerio-node (npm, tests/edge/node) call every method they offer against
`trackbridge edge` on loopback (HTTPS: the Python client speaks nothing else); a worker consumes
what the edge produced, and the records on the destination, dead-letter and skip topics are
exactly what `trackbridge map` prints for the envelopes on the input topic.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import customerio
import pytest

from tests.kafka_helpers import ROOT, Consume, credential_forms, credentials_in, headers_of
from topics.catalog import Catalog, Role
from worker.config.settings import Settings
from worker.local.process import EdgeProcess, WorkerProcess

pytestmark = pytest.mark.integration

SITE_ID, API_KEY = "site_prod_1", "key_prod_secret"  # tests/mapping/vectors/test_config.json
NODE_DIR = ROOT / "tests" / "edge" / "node"


BATCH = [
    {
        "type": "person",
        "identifiers": {"id": "py-person"},
        "action": "identify",
        "attributes": {"plan": "team"},
    },
    {"type": "person", "identifiers": {"id": "py-person"}, "action": "event", "name": "upgraded"},
]


def python_calls(client: customerio.CustomerIO) -> dict[str, Callable[[], Any]]:
    """Every Track method of the Python client, once."""
    when = datetime(2024, 5, 1, 10, 0, 0)
    return {
        "identify": lambda: client.identify("py-person", email="py@example.com", plan="pro", created_at=when),
        "identify_email_path": lambda: client.identify("py.person@example.com", first_name="Ada"),
        "track": lambda: client.track("py-person", "purchase", {"price": 23.45}, timestamp=1714557600),
        "track_anonymous": lambda: client.track_anonymous("py-anon", "visit", {"page": "/"}),
        "pageview": lambda: client.pageview("py-person", "https://example.com/pricing", referrer="x"),
        "backfill": lambda: client.backfill("py-person", "imported", 1714557600, source="csv"),
        "add_device": lambda: client.add_device("py-person", "py-token", "android", app_version="3"),
        "delete_device": lambda: client.delete_device("py-person", "py-token"),
        "suppress": lambda: client.suppress("py-person"),
        "unsuppress": lambda: client.unsuppress("py-person"),
        "merge_customers": lambda: client.merge_customers("id", "py-person", "email", "py.old@example.com"),
        "batch": lambda: client.batch(BATCH),
        "delete": lambda: client.delete("py-person"),
    }


def run_node(edge: EdgeProcess, cert: Path) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        "EDGE_URL": f"{edge.url.replace('127.0.0.1', 'localhost')}/api/v1",
        "SITE_ID": SITE_ID,
        "API_KEY": API_KEY,
        "NODE_EXTRA_CA_CERTS": str(cert),
    }
    node = shutil.which("node")
    assert node, "node is not installed"
    result = subprocess.run(
        [node, str(NODE_DIR / "drive.js")], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def mapped(settings: Settings, envelopes: list[bytes]) -> list[dict[str, Any]]:
    """What `trackbridge map` prints for `envelopes`, topics given the test's prefix."""
    assert settings.sources is not None
    result = subprocess.run(
        [sys.executable, "-m", "worker.cli.main", "map", "--sources", settings.sources, "-q"],
        input=b"\n".join(envelopes) + b"\n",
        capture_output=True,
        timeout=60,
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRACKBRIDGE_")},
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        line["topic"] = settings.topic(line["topic"])
    return lines


def _record(topic: str, record: Any) -> tuple[str, str | None, str, str]:
    key = None if record.key is None else record.key.decode()
    return (
        topic,
        key,
        json.dumps(json.loads(record.value), sort_keys=True),
        json.dumps(headers_of(record), sort_keys=True),
    )


def _line(line: dict[str, Any]) -> tuple[str, str | None, str, str]:
    return (
        line["topic"],
        line["key"],
        json.dumps(line["value"], sort_keys=True),
        json.dumps(line["headers"], sort_keys=True),
    )


def test_the_official_clients_reach_the_destinations_as_trackbridge_map_says(  # noqa: PLR0917
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    edge_factory: Callable[..., EdgeProcess],
    worker_factory: Callable[..., WorkerProcess],
    consume: Consume,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests prefers these variables to a session's own `verify`: trust the test certificate.
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(variable, str(tls_files[0]))
    catalog = topic_factory()
    edge = edge_factory(tls=tls_files)
    worker = worker_factory()
    port = edge.web_port

    client = customerio.CustomerIO(SITE_ID, API_KEY, host="127.0.0.1", port=port, retries=0)
    python_answers = {}
    for name, call in python_calls(client).items():
        python_answers[name] = call().status_code
    assert python_answers == dict.fromkeys(python_answers, 200)
    wrong = customerio.CustomerIO(SITE_ID, "not-the-key", host="127.0.0.1", port=port, retries=0)
    with pytest.raises(customerio.CustomerIOException, match=r"^401"):
        wrong.identify("py-person", plan="free")

    node_answers = {answer["call"]: answer for answer in run_node(edge, tls_files[0])}
    assert {call: answer["status"] for call, answer in node_answers.items()} == {
        **dict.fromkeys(node_answers, 200),
        "identify_wrong_key": 401,
    }, node_answers
    assert json.loads(node_answers["identify_wrong_key"]["body"]) == {
        "meta": {"error": "Unauthorized request"}
    }
    assert node_answers["getAccountRegion"]["body"]["url"].endswith(f":{port}")
    accepted = len(python_answers) + len(node_answers) - 1

    # Exactly one envelope per accepted call: the wrong key produced nothing.
    inputs = consume(kafka_settings.raw_topic, until=lambda records: len(records) >= accepted)
    assert len(inputs) == accepted
    envelopes = [json.loads(record.value) for record in inputs]
    basic = "Basic " + base64.b64encode(f"{SITE_ID}:{API_KEY}".encode()).decode()
    assert {e["authorization"] for e in envelopes} == {basic}  # verbatim, both clients
    assert len({e["request_id"] for e in envelopes}) == accepted
    by_path = {(e["method"], e["path"], e["query"]) for e in envelopes}
    assert ("PUT", "/api/v1/customers/py.person%40example.com", None) in by_path  # still percent-encoded
    assert ("POST", "/api/v1/segments/7/add_customers", "id_type=id") in by_path
    assert ("POST", "/unsubscribe/node-delivery", None) in by_path
    # One person's calls share a partition: keyed by the person.
    keys = {record.key for record in inputs if b'"/api/v1/customers/py-person' in record.value}
    assert keys == {b"py-person"}

    expected = sorted(_line(line) for line in mapped(kafka_settings, [record.value for record in inputs]))
    topics = [spec.name for spec in catalog.topics if spec.role is not Role.INPUT]

    def records() -> list[tuple[str, str | None, str, str]]:
        found = []
        for topic in topics:
            found.extend(_record(topic, r) for r in consume(topic, until=lambda rs, t=topic: True, timeout=5))
        return sorted(found)

    got = records()
    for _ in range(10):
        if len(got) >= len(expected):
            break
        got = records()
    assert got == expected
    assert any(t.endswith("dp.out.analytics") for t, *_ in got)
    assert any(t.endswith("journeys.skipped") for t, *_ in got)  # forms, segments, region, unsubscribe
    # The input topic holds the header verbatim (spec §1); nothing written after it may.
    written = "\n".join("\n".join(map(str, row)) for row in got)
    pages = worker.log_text() + edge.log_text() + worker.metrics_text() + edge.metrics_text()
    assert not credentials_in(written + pages, credential_forms(SITE_ID, API_KEY))
    assert worker.returncode is None
    assert edge.stop() == 0
