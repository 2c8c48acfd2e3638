"""The dead-letter path through a running worker on the embedded broker: no credential stored, no
input stops the worker, and every dead letter can come back with `trackbridge redrive`."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mapping.reasons import Reason
from mapping.results import Problem
from tests.kafka_helpers import (
    ROOT,
    TEST_CONFIG,
    Consume,
    Produce,
    credentials_in,
    envelope_stream,
    expected_records,
    headers_of,
    record_id,
    sources_toml,
    stored_bytes,
    with_settings,
)
from topics.catalog import MAX_RECORD_BYTES, Catalog, Role
from worker.config.settings import Settings, to_environ
from worker.local.process import WorkerProcess
from worker.records import HEADER_REDRIVES, ProblemRecord, input_copy, problem_record
from worker.sealing import Sealer

pytestmark = pytest.mark.integration

CONFIG = json.loads(TEST_CONFIG.read_text())
PROD_KEY, MOBILE_KEY = "key_prod_secret", "key_mobile_secret"


def basic(site: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{site}:{key}".encode()).decode()


def envelope(
    request_id: str, *, person: str = "42", site: str = "site_prod_1", key: str = PROD_KEY
) -> dict[str, Any]:
    return {
        "method": "PUT",
        "path": f"/api/v1/customers/{person}",
        "authorization": basic(site, key),
        "body": {"first_name": "Cool", "plan": "pro"},
        "received_at": "2024-05-01T10:00:00Z",
        "request_id": request_id,
    }


def every_record(consume: Consume, catalog: Catalog) -> list[Any]:
    return [record for spec in catalog.topics if spec.role is not Role.INPUT for record in consume(spec.name)]


def test_no_credential_is_stored_for_any_hostile_input(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    catalog = topic_factory()
    good = json.dumps(envelope("r-good")).encode()
    capital = json.dumps({**envelope("r-capital"), "Authorization": basic("site_prod_1", PROD_KEY)}).encode()
    hostile = [
        good.replace(b'"Cool"', b"1e400"),  # a number out of range, valid credentials
        good.replace(b'"Cool"', b'"\\ud800"'),  # a lone surrogate escape
        good + b" and then some",  # bytes after the closing brace
        good.replace(b'"Cool"', b"[" * 10_000 + b"]" * 10_000),  # nested 10,000 deep
        good.replace(b"Cool", b"\xff\xfe"),  # invalid UTF-8 inside the object
        capital.replace(b'"authorization"', b'"AUTHORIZATION"'),  # the header in capitals
        capital,  # the header twice
        json.dumps(basic("site_prod_1", PROD_KEY)).encode(),  # not an object
        b"Authorization: " + basic("site_prod_1", PROD_KEY).encode(),  # not JSON
    ]
    worker = worker_factory()
    produce(kafka_settings.raw_topic, hostile)

    records: list[Any] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(records) < len(hostile):
        records = every_record(consume, catalog)
    assert len(records) >= len(hostile)
    everything = b"\n".join(stored_bytes(record) for record in records)
    everything += worker.log_text().encode() + worker.metrics_text().encode()
    assert not credentials_in(everything)
    reasons = Counter(headers_of(record)["cio-reason"] for record in records if record.topic.endswith("dlq"))
    assert sum(reasons.values()) == len(hostile) - 1  # the capital-A envelope with its lower-case twin maps


def test_oversized_inputs_are_dead_lettered_bounded_and_the_stream_goes_on_once(
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
) -> None:
    catalog = topic_factory()
    stream = envelope_stream(3000, "big", poison_every=10_000)
    huge_json = json.dumps({**envelope("r-huge"), "body": {"blob": "x" * 5_000_000}}).encode()
    huge_binary = b"\xff" + os.urandom(3_500_000)
    values = [*stream[:1500], huge_json, *stream[1500:2200], huge_binary, *stream[2200:]]
    keys = [str(index % 37).encode() for index in range(len(values))]  # every partition
    worker_factory()
    produce(kafka_settings.raw_topic, values, keys, max_request_size=8 * 1024 * 1024)

    expected = expected_records(kafka_settings, values)
    seen: Counter[Any] = Counter()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        records = every_record(consume, catalog)
        seen = Counter(record_id(r.topic, headers_of(r), r.value) for r in records)
        if set(expected) <= set(seen):
            break
    assert set(seen) == set(expected)
    assert all(count == 1 for count in seen.values()), "a record was produced twice"
    big = [r for r in records if json.loads(r.value).get("input", {}).get("bytes", 0) > 3_000_000]
    assert len(big) == 2
    assert all(len(r.value) < MAX_RECORD_BYTES for r in big)
    copies = sorted(json.loads(r.value)["input"]["copy"] for r in big)
    assert copies == ["cut", "undecodable"]


def _redrive(settings: Settings, *args: str, keys: list[bytes]) -> subprocess.Popen[bytes]:
    environ = {**os.environ, **to_environ(settings)}
    environ["TRACKBRIDGE_SEALING_KEYS"] = ",".join(base64.b64encode(key).decode() for key in keys)
    return subprocess.Popen(
        [sys.executable, "-m", "worker.cli.main", "redrive", "--json", *args],
        env=environ,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _summary(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    summary: dict[str, Any] = json.loads(out)
    return summary


def test_unauthorized_calls_come_back_byte_identical_once_the_key_is_known(  # noqa: PLR0917 - fixtures
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    worker_factory: Callable[..., WorkerProcess],
    produce: Produce,
    consume: Consume,
    tmp_path: Path,
) -> None:
    key = os.urandom(32)
    sealing = base64.b64encode(key).decode()
    topic_factory()
    without = tmp_path / "without-mobile.toml"
    without.write_text(
        sources_toml({**CONFIG, "sources": [s for s in CONFIG["sources"] if s["name"] != "mobile"]})
    )
    calls = [
        json.dumps(envelope(f"m-{i}", person=str(i), site="site_mob_2", key=MOBILE_KEY)).encode()
        for i in range(40)
    ]

    first = worker_factory(
        with_settings(kafka_settings, sources=str(without)), TRACKBRIDGE_SEALING_KEYS=sealing
    )
    produce(kafka_settings.raw_topic, calls)
    dead: list[Any] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(dead) < len(calls):
        dead = consume(kafka_settings.topic(CONFIG["dead_letter_topic"]))
    assert [headers_of(r)["cio-reason"] for r in dead] == ["unauthorized"] * len(calls)
    assert not credentials_in(b"\n".join(stored_bytes(r) for r in dead))
    assert first.stop() == 0

    worker_factory(kafka_settings, TRACKBRIDGE_SEALING_KEYS=sealing)  # the key is known now
    summary = _summary(_redrive(kafka_settings, "--reason", "unauthorized", keys=[key]))
    assert (summary["selected"], summary["sent"], summary["refused"]) == (len(calls), len(calls), {})

    analytics = kafka_settings.topic(CONFIG["destinations"]["analytics"]["topic"])
    direct = {
        rid: value for rid, value in expected_records(kafka_settings, calls).items() if rid[0] == analytics
    }
    outputs: list[Any] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(outputs) < len(direct):
        outputs = consume(analytics)
    assert {record_id(r.topic, headers_of(r), r.value): r.value for r in outputs} == direct
    assert all(headers_of(r).get("cio-source") == "mobile" for r in outputs)


def _dead_letters(sealer: Sealer | None, request_ids: list[str]) -> list[bytes]:
    values = []
    for request_id in request_ids:
        raw = json.dumps(envelope(request_id)).encode()
        record = problem_record(
            "dlq",
            Problem(Reason.UNAUTHORIZED, "x"),
            input_copy(raw, sealer),
            request_id=request_id,
            source="web-prod",
        )
        values.append(record.value)
    return values


def test_what_cannot_be_restored_is_refused_and_counted(
    kafka_settings: Settings, topic_factory: Callable[..., Catalog], produce: Produce, consume: Consume
) -> None:
    topic_factory()
    dlq = kafka_settings.topic(CONFIG["dead_letter_topic"])
    ours, theirs = os.urandom(32), os.urandom(32)
    good = _dead_letters(Sealer([ours]), ["good", "limit"])
    wrong_key = _dead_letters(Sealer([theirs]), ["wrong-key"])
    redacted = _dead_letters(None, ["redacted"])
    tampered_record = msgspec.json.decode(_dead_letters(Sealer([ours]), ["tampered"])[0], type=ProblemRecord)
    assert tampered_record.sealed is not None
    data = bytearray(base64.b64decode(tampered_record.sealed.data))
    data[20] ^= 0x55
    tampered = msgspec.json.encode(
        msgspec.structs.replace(
            tampered_record,
            sealed=msgspec.structs.replace(
                tampered_record.sealed, data=base64.b64encode(bytes(data)).decode()
            ),
        )
    )
    values = [good[0], good[1], wrong_key[0], redacted[0], tampered]
    headers = [[], [(HEADER_REDRIVES, b"3")], [], [], []]
    produce(dlq, values, headers=headers)

    dry = _summary(_redrive(kafka_settings, "--dry-run", keys=[ours]))
    assert (dry["selected"], dry["sent"]) == (5, 1)
    assert dry["by_reason"] == {"unauthorized": 5} and dry["by_source"] == {"web-prod": 5}
    assert consume(kafka_settings.raw_topic) == []  # a dry run sends nothing

    summary = _summary(_redrive(kafka_settings, keys=[ours]))
    assert summary["sent"] == 1
    assert summary["refused"] == {"redrive_limit": 1, "unknown_sealing_key": 1, "redacted": 1, "tampered": 1}
    (sent,) = consume(kafka_settings.raw_topic)
    assert json.loads(sent.value) == envelope("good")
    assert headers_of(sent)[HEADER_REDRIVES] == "1"
    assert _summary(_redrive(kafka_settings, keys=[ours]))["read"] == 0  # it resumes past what it did


def test_a_killed_redrive_continues_without_skipping_anything(
    kafka_settings: Settings, topic_factory: Callable[..., Catalog], produce: Produce, consume: Consume
) -> None:
    topic_factory()
    key = os.urandom(32)
    ids = [f"k-{i}" for i in range(3000)]
    produce(kafka_settings.topic(CONFIG["dead_letter_topic"]), _dead_letters(Sealer([key]), ids))

    first = _redrive(kafka_settings, "--rate", "1000", keys=[key])
    time.sleep(2.5)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    partial = {json.loads(r.value)["request_id"] for r in consume(kafka_settings.raw_topic)}
    assert 0 < len(partial) < len(ids), "kill the redrive half-way: slow it down"

    _summary(_redrive(kafka_settings, keys=[key]))
    sent = [json.loads(r.value)["request_id"] for r in consume(kafka_settings.raw_topic)]
    assert set(sent) == set(ids)
