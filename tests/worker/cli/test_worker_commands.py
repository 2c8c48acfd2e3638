"""The Kafka commands end to end: `send`, `tail`, `run` (embedded broker) and `demo`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kafka_helpers import (
    ROOT,
    consume_records,
    envelope_stream,
    expected_records,
    headers_of,
    produce_records,
    record_id,
)
from worker.cli import main as cli
from worker.config.settings import FIELDS, Settings, env_name, load_settings, to_environ
from worker.local.embedded import free_port, kafka_ready
from worker.local.process import WorkerProcess

pytestmark = pytest.mark.integration


def _environ(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name, value in to_environ(settings).items():
        monkeypatch.setenv(name, value)


def test_send_then_tail_prints_key_headers_and_value(
    kafka_settings: Settings,
    topic_factory: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _environ(monkeypatch, kafka_settings)
    assert cli.main(["topics", "create"]) == 0
    lines = [{"request_id": f"r{i}", "method": "GET", "path": "/x"} for i in range(3)]
    path = tmp_path / "envelopes.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines[:2]) + "\n\n" + json.dumps(lines[2]) + "\n")
    capsys.readouterr()
    assert cli.main(["send", str(path), "--key-field", "request_id"]) == 0
    assert "sent 3 envelope(s)" in capsys.readouterr().err

    assert (
        cli.main(["tail", kafka_settings.raw_topic, "--from-beginning", "--max", "3", "--timeout", "10"]) == 0
    )
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(record["key"] for record in printed) == ["r0", "r1", "r2"]
    assert sorted(record["value"]["request_id"] for record in printed) == ["r0", "r1", "r2"]
    assert all(record["topic"] == kafka_settings.raw_topic and record["headers"] == {} for record in printed)

    assert cli.main(["tail", kafka_settings.topic("no.such.topic"), "--timeout", "1"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_run_starts_an_embedded_broker_and_stops_both_on_ctrl_c(tmp_path: Path, sources_file: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRACKBRIDGE_")}
    web_port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.cli.main",
            "run",
            "--sources",
            str(sources_file),
            "--web-port",
            str(web_port),
        ],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "run.log").open("wb"),
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = ""
        while "listening on" not in banner:
            line = process.stdout.readline()
            assert line, f"`trackbridge run` exited: {(tmp_path / 'run.log').read_text()}"
            banner += line
        match = re.search(r"listening on (127\.0\.0\.1):(\d+)", banner)
        assert match is not None
        host, port = match[1], int(match[2])
        probe = WorkerProcess({env_name("web_port"): str(web_port)})
        deadline = time.monotonic() + 60
        while not probe.ready():
            assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(0.1)

        settings, _ = load_settings(
            environ={
                "TRACKBRIDGE_BOOTSTRAP_SERVERS": f"{host}:{port}",
                "TRACKBRIDGE_SOURCES": str(sources_file),
            }
        )
        values = envelope_stream(50, "run", poison_every=0)
        produce_records(settings, settings.raw_topic, values)
        want = {rid for rid in expected_records(settings, values) if rid[0] == "dp.out.analytics"}
        records = consume_records(
            settings,
            "dp.out.analytics",
            until=lambda got: want <= {record_id("dp.out.analytics", headers_of(r), r.value) for r in got},
            timeout=30,
        )
        assert want <= {record_id("dp.out.analytics", headers_of(r), r.value) for r in records}
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(60)
    assert status == 0, (tmp_path / "run.log").read_text()
    assert not kafka_ready(host, port), "the embedded broker outlived `trackbridge run`"


def test_demo_prints_every_topic_and_exits_zero() -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRACKBRIDGE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "worker.cli.main",
            "demo",
            "--sources",
            str(ROOT / "examples" / "sources.toml"),
            "--input",
            str(ROOT / "examples" / "envelopes.jsonl"),
        ],
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sent = re.search(r"sent (\d+) envelope", result.stdout)
    processed = re.search(r"processed (\d+) of them", result.stdout)
    assert sent and processed and sent[1] == processed[1]
    for topic in ("dp.out.analytics", "dp.out.warehouse", "journeys.dlq", "journeys.skipped"):
        assert f"== {topic} (" in result.stdout
    assert "worker stopped (status 0)" in result.stdout


def test_fields_cover_the_documented_variables() -> None:
    assert {env_name(field) for field in FIELDS} >= {
        "TRACKBRIDGE_BOOTSTRAP_SERVERS",
        "TRACKBRIDGE_SECURITY_PROTOCOL",
        "TRACKBRIDGE_SSL_CAFILE",
        "TRACKBRIDGE_SSL_CERTFILE",
        "TRACKBRIDGE_SSL_KEYFILE",
        "TRACKBRIDGE_SASL_MECHANISM",
        "TRACKBRIDGE_SASL_USERNAME",
        "TRACKBRIDGE_SASL_PASSWORD",
        "TRACKBRIDGE_GROUP_ID",
        "TRACKBRIDGE_INPUT_TOPIC",
        "TRACKBRIDGE_TOPIC_PREFIX",
        "TRACKBRIDGE_SOURCES",
        "TRACKBRIDGE_WEB_PORT",
        "TRACKBRIDGE_BATCH_SIZE",
        "TRACKBRIDGE_BATCH_TIMEOUT",
        "TRACKBRIDGE_FETCH_MAX_WAIT_MS",
        "TRACKBRIDGE_SESSION_TIMEOUT",
        "TRACKBRIDGE_REBALANCE_TIMEOUT",
        "TRACKBRIDGE_LOG_LEVEL",
        "TRACKBRIDGE_ENABLE_IDEMPOTENCE",
        "TRACKBRIDGE_INPUT_PARTITIONS",
    }
