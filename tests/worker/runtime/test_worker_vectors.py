"""Every spec vector through the running worker: right topics, right records, nowhere else (spec §15)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mapping.reasons import Kind, Reason
from tests.kafka_helpers import (
    TEST_CONFIG,
    VECTORS,
    Consume,
    Produce,
    ScrapedMetrics,
    headers_of,
    vector_value,
)
from topics.catalog import Catalog, Role
from worker.config.settings import Settings
from worker.local.process import WorkerProcess

pytestmark = pytest.mark.integration

CONFIG = json.loads(TEST_CONFIG.read_text())
SOURCE_OF_SITE = {source["site_id"]: source for source in CONFIG["sources"]}
DESTINATION_TOPIC = {name: spec["topic"] for name, spec in CONFIG["destinations"].items()}


def load_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(VECTORS.glob("*.json")):
        if path.name != TEST_CONFIG.name:
            cases.extend(json.loads(path.read_text()))
    return cases


def source_of(envelope: dict[str, Any]) -> dict[str, Any] | None:
    header = envelope.get("authorization")
    if not isinstance(header, str) or " " not in header:
        return None
    token = header.split(None, 1)[1].strip().replace("-", "+").replace("_", "/")
    try:
        site_id = base64.b64decode(token + "=" * (-len(token) % 4)).decode().split(":", 1)[0]
    except (ValueError, UnicodeDecodeError):
        return None
    return SOURCE_OF_SITE.get(site_id)


def test_every_vector_reaches_exactly_its_topics(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    catalog = topic_factory()
    prefix = kafka_settings.topic_prefix
    dead_letter_topic = prefix + CONFIG["dead_letter_topic"]
    skip_topic = prefix + CONFIG["skip_topic"]
    cases = load_cases()
    assert len(cases) > 200

    # What each case must produce, per topic on the broker.
    expected: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    problem_cases: dict[str, dict[str, Any]] = {}
    for case in cases:
        name = case["name"]
        source = source_of(case["envelope"])
        if case["expect"]:
            assert source is not None, name
            for destination in source["destinations"]:
                expected[prefix + DESTINATION_TOPIC[destination]][name] = case["expect"]
        if case["expect_reason"] is not None:
            kind = Reason(case["expect_reason"]).kind
            topic = dead_letter_topic if kind is Kind.REJECT else skip_topic
            expected[topic][name].append(case["expect_reason"])
            problem_cases[name] = case

    worker = worker_factory()
    produce(kafka_settings.raw_topic, [vector_value(case["envelope"]) for case in cases])
    counts = {topic: sum(len(items) for items in by_case.values()) for topic, by_case in expected.items()}

    case_of_request = {
        case["envelope"].get("request_id"): case["name"] for case in cases if "request_id" in case["envelope"]
    }
    actual: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for spec in catalog.topics:
        if spec.role is Role.INPUT:
            continue
        want = counts.get(spec.name, 0)
        records = consume(spec.name, until=lambda got, want=want: len(got) >= want, timeout=60)
        for record in records:
            value = json.loads(record.value)
            headers = headers_of(record)
            if spec.role is Role.DESTINATION:
                name = case_of_request[headers["cio-request-id"]]
                actual[spec.name][name].append((headers, record.key, value))
            else:
                name = _problem_case(value, case_of_request, problem_cases)
                actual[spec.name][name].append(value)
                assert value["kind"] == ("reject" if spec.role is Role.DEAD_LETTER else "skip")

    # Nothing on a topic that was not expected there, nothing missing.
    for spec in catalog.topics:
        if spec.role is not Role.INPUT:
            assert set(actual[spec.name]) == set(expected[spec.name]), spec.name

    for topic, by_case in expected.items():
        for name, wanted in by_case.items():
            got = actual[topic][name]
            if topic in (dead_letter_topic, skip_topic):
                assert [value["reason"] for value in got] == wanted, name
                continue
            got.sort(key=lambda item: (int(item[0]["cio-item-index"]), int(item[0]["cio-output-index"])))
            assert [value for _, _, value in got] == wanted, name
            for headers, key, value in got:
                assert (
                    key == (value.get("userId") or value.get("anonymousId") or value.get("groupId")).encode()
                )
                assert headers["cio-source"] == source_of(_case(cases, name)["envelope"])["name"]  # type: ignore[index]

    metrics = ScrapedMetrics(worker.metrics_text())
    assert metrics.total("trackbridge_envelopes_consumed_total") == len(cases)
    assert metrics.total("trackbridge_dead_letters_total") == counts[dead_letter_topic]
    assert metrics.total("trackbridge_skipped_total") == counts[skip_topic]
    produced = metrics.total("trackbridge_outputs_produced_total")
    assert produced == sum(
        count for topic, count in counts.items() if topic not in (dead_letter_topic, skip_topic)
    )
    consumed = metrics.total("trackbridge_items_consumed_total")
    mapped = metrics.total("trackbridge_items_mapped_total")
    assert consumed == mapped + counts[dead_letter_topic] + counts[skip_topic]


def _case(cases: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(case for case in cases if case["name"] == name)


def _problem_case(
    value: dict[str, Any], case_of_request: dict[str, str], problem_cases: dict[str, Any]
) -> str:
    """The case a dead-letter or skip record belongs to: by request_id, else by its envelope."""
    request_id = value["request_id"]
    if request_id is not None and request_id in case_of_request:
        return case_of_request[request_id]
    for name, case in problem_cases.items():
        if hashlib.sha256(vector_value(case["envelope"])).hexdigest() == value["input"]["sha256"]:
            return name
    raise AssertionError(f"a record no case explains: {value}")


def test_vectors_directory_exists() -> None:
    assert Path(VECTORS).is_dir()
