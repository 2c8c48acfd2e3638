"""`trackbridge map` and `trackbridge hash-key`, end to end as a user runs them (a subprocess)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import mapping
from tests.worker.cli.conftest import Run
from worker.config.sources import load_sources
from worker.routing import Router

ROOT = Path(__file__).resolve().parents[3]
VECTORS = ROOT / "tests" / "mapping" / "vectors"
EXAMPLE_SOURCES = ROOT / "examples" / "sources.toml"
EXAMPLE_ENVELOPES = ROOT / "examples" / "envelopes.jsonl"
TEST_CONFIG: dict[str, Any] = json.loads((VECTORS / "test_config.json").read_text())

requires_translate = pytest.mark.skipif(
    not hasattr(mapping, "translate"), reason="mapping.translate is not written yet"
)


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    def write_file(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write_file


def records(stdout: bytes) -> list[dict[str, Any]]:
    lines = stdout.decode().splitlines()
    return [json.loads(line) for line in lines]


def vector_lines() -> bytes:
    """Every vector's Kafka value as one JSON line (spec §15: `{"raw": ...}` is sent verbatim)."""
    values = []
    for path in sorted(VECTORS.glob("*.json")):
        if path.name == "test_config.json":
            continue
        for case in json.loads(path.read_text()):
            envelope = case["envelope"]
            raw = envelope["raw"].encode() if list(envelope) == ["raw"] else msgspec.json.encode(envelope)
            assert b"\n" not in raw
            values.append(raw)
    return b"\n".join(values) + b"\n"


# --- map -----------------------------------------------------------------------------------------


@requires_translate
def test_map_prints_exactly_what_the_worker_routing_produces(trackbridge: Run, write: Any) -> None:
    envelopes = write("vectors.jsonl", vector_lines())

    result = trackbridge("map", "--sources", EXAMPLE_SOURCES, envelopes)

    assert result.returncode == 0, result.stderr
    router = Router(load_sources(EXAMPLE_SOURCES))
    expected = [
        {
            "topic": record.topic,
            "key": None if record.key is None else record.key.decode(),
            "value": json.loads(record.value),
            "headers": {name: value.decode() for name, value in record.headers},
        }
        for raw in envelopes.read_bytes().splitlines()
        for record in router.route(raw, mapping.translate(raw)).records
    ]
    assert records(result.stdout) == expected
    assert {line["topic"] for line in expected} == {
        "dp.out.analytics",
        "dp.out.warehouse",
        "journeys.dlq",
        "journeys.skipped",
    }


@requires_translate
def test_map_runs_the_examples_and_reports_the_accounting_identity(trackbridge: Run) -> None:
    result = trackbridge("map", "--sources", EXAMPLE_SOURCES, EXAMPLE_ENVELOPES)

    assert result.returncode == 0, result.stderr
    lines = records(result.stdout)
    topics = {line["topic"] for line in lines}
    assert topics == {"dp.out.analytics", "dp.out.warehouse", "journeys.dlq", "journeys.skipped"}
    reasons = sorted(line["value"]["reason"] for line in lines if line["topic"].startswith("journeys."))
    assert reasons == [
        "form_submission_not_forwarded",
        "malformed_envelope",
        "unauthorized",
        "unsupported_action",
    ]
    for line in lines:
        if line["topic"].startswith("dp.out."):
            assert line["key"] and line["value"]["messageId"]
            assert set(line["headers"]) == {
                "cio-source",
                "cio-request-id",
                "cio-item-index",
                "cio-output-index",
            }
    # 16 envelopes, two of them batches of 3 items: 14 + 3 + 3 = 20 items. Settled: the form submit
    # (skip), the bad key, the malformed line and one batch item (dead letters); the rest mapped.
    assert result.stderr.decode() == (
        "trackbridge map: 16 envelopes, 20 items: 16 mapped, 1 skipped, 3 dead-lettered; "
        f"{len(lines)} records\n"
    )


@requires_translate
def test_bad_input_lines_become_malformed_envelope_dead_letters(trackbridge: Run, write: Any) -> None:
    envelopes = write("bad.jsonl", b'this is not json\n\n   \n[1, 2, 3]\n{}\r\n\xff\xfe\n{"method": "PUT"')

    result = trackbridge("map", "--sources", EXAMPLE_SOURCES, envelopes)

    assert result.returncode == 0, result.stderr
    lines = records(result.stdout)
    assert [(line["topic"], line["value"]["reason"]) for line in lines] == [
        ("journeys.dlq", "malformed_envelope")
    ] * 5
    # Only a JSON object is kept in the clear (docs/MAPPING.md §14): the rest by size and digest.
    assert [line["value"]["envelope"] for line in lines] == [None, None, {}, None, None]
    assert [line["value"]["input"]["copy"] for line in lines] == ["undecodable"] * 2 + ["redacted"] + [
        "undecodable"
    ] * 2
    assert lines[3]["value"]["input"] == {
        "bytes": 2,
        "sha256": hashlib.sha256(b"\xff\xfe").hexdigest(),
        "copy": "undecodable",
    }
    assert all(line["key"] is None and line["value"]["sealed"] is None for line in lines)


@requires_translate
def test_map_reads_stdin_by_default(trackbridge: Run) -> None:
    first = EXAMPLE_ENVELOPES.read_bytes().splitlines(keepends=True)[0]

    result = trackbridge("map", "--sources", EXAMPLE_SOURCES, "--quiet", stdin=first)

    assert result.returncode == 0, result.stderr
    assert [line["topic"] for line in records(result.stdout)] == ["dp.out.analytics", "dp.out.warehouse"]
    assert result.stderr == b""


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        pytest.param(
            'dead_letter_topic = "journeys.dlq"\n[[sources]]\nname = "x"\nsite_id = "s"\n'
            f'api_key_sha256 = "{"0" * 64}"\ndestinations = ["nowhere"]\n',
            "sources[0].destinations[0]: unknown destination 'nowhere'",
            id="unknown-destination",
        ),
        pytest.param('dead_letter_topic = "journeys.dlq"\n[[sources]\n', "not valid TOML", id="toml"),
        pytest.param(None, "is not a readable file", id="missing"),
    ],
)
def test_a_bad_sources_file_is_one_line_on_stderr_and_exit_2(
    trackbridge: Run, write: Any, tmp_path: Path, sources: str | None, message: str
) -> None:
    path = tmp_path / "missing.toml" if sources is None else write("sources.toml", sources)

    result = trackbridge("map", "--sources", path, EXAMPLE_ENVELOPES)

    assert result.returncode == 2
    assert result.stdout == b""
    stderr = result.stderr.decode()
    assert stderr.count("\n") == 1
    assert stderr.startswith("trackbridge map: error: ")
    assert str(path) in stderr
    assert message in stderr
    assert "Traceback" not in stderr


def test_an_unreadable_input_is_one_line_and_exit_2(trackbridge: Run, tmp_path: Path) -> None:
    result = trackbridge("map", "--sources", EXAMPLE_SOURCES, tmp_path / "nope.jsonl")

    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1
    assert "nope.jsonl: cannot read: No such file" in result.stderr.decode()


# --- hash-key ------------------------------------------------------------------------------------

KEYS = [(s["_test_only_plaintext_api_key"], s["api_key_sha256"]) for s in TEST_CONFIG["sources"]]


@pytest.mark.parametrize(("key", "digest"), KEYS)
def test_hash_key_prints_the_sources_file_digest_of_an_argument(
    trackbridge: Run, key: str, digest: str
) -> None:
    result = trackbridge("hash-key", key)

    assert (result.returncode, result.stdout, result.stderr) == (0, f"{digest}\n".encode(), b"")


@pytest.mark.parametrize(("key", "digest"), KEYS)
@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_hash_key_reads_stdin_without_its_newline(
    trackbridge: Run, key: str, digest: str, ending: str
) -> None:
    result = trackbridge("hash-key", stdin=f"{key}{ending}".encode())

    assert (result.returncode, result.stdout) == (0, f"{digest}\n".encode())


@pytest.mark.parametrize(
    ("stdin", "message"), [(b"", "empty"), (b"\n", "empty"), (b"a\nb\n", "several lines")]
)
def test_hash_key_refuses_an_empty_or_multiline_key(trackbridge: Run, stdin: bytes, message: str) -> None:
    result = trackbridge("hash-key", stdin=stdin)

    assert result.returncode == 2
    assert result.stdout == b""
    assert message in result.stderr.decode()
    assert result.stderr.decode().count("\n") == 1
