"""Every foreseeable failure of a command: one line on stderr, the documented exit status, no traceback.

The statuses are worker/cli/exits.py's (docs/reference.md, "Exit codes").
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from tests.worker.cli.conftest import ROOT, Run
from worker.cli.exits import FAILURE, USAGE
from worker.local.embedded import free_port

SOURCES = ROOT / "examples" / "sources.toml"
ENVELOPES = ROOT / "examples" / "envelopes.jsonl"


@pytest.fixture
def closed() -> str:
    """A loopback address where nothing listens: every connection is refused."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        yield listener.getsockname()[1]


def assert_one_error_line(result: object, command: str, status: int, words: str) -> None:
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == status, stderr  # type: ignore[attr-defined]
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"trackbridge {command}: error: "), stderr
    assert words in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (("tail", "journeys.dlq"), "tail"),
        (("send", ENVELOPES), "send"),
        (("topics", "list"), "topics list"),
        (("topics", "create"), "topics create"),
    ],
    ids=["tail", "send", "topics-list", "topics-create"],
)
def test_an_unreachable_broker_is_a_runtime_failure(
    trackbridge: Run, closed: str, args: tuple[str, ...], command: str
) -> None:
    result = trackbridge(*args, "--bootstrap-servers", closed, env={"TRACKBRIDGE_SOURCES": str(SOURCES)})
    assert_one_error_line(result, command, FAILURE, f"cannot reach the Kafka brokers at {closed}")
    assert b"Unclosed" not in result.stderr  # the Kafka client was closed


def test_run_on_a_busy_port_fails_before_starting_anything(trackbridge: Run, busy_port: int) -> None:
    result = trackbridge("run", "--sources", SOURCES, "--web-port", str(busy_port))
    assert_one_error_line(result, "run", FAILURE, f"cannot serve on 0.0.0.0:{busy_port}")
    assert result.stdout == b""  # no embedded broker, no topics


def test_worker_on_a_busy_port_fails_before_connecting(trackbridge: Run, busy_port: int, closed: str) -> None:
    result = trackbridge(
        "worker", "--sources", SOURCES, "--web-port", str(busy_port), "--bootstrap-servers", closed
    )
    assert_one_error_line(result, "worker", FAILURE, "TRACKBRIDGE_WEB_PORT")


@pytest.mark.parametrize(
    ("args", "command", "words"),
    [
        (
            ("send", "missing.jsonl", "--bootstrap-servers", "127.0.0.1:9"),
            "send",
            "missing.jsonl: cannot read",
        ),
        (("map", "--sources", SOURCES, "missing.jsonl"), "map", "missing.jsonl: cannot read"),
        (("map", "--sources", "missing.toml"), "map", "--sources: 'missing.toml' is not a readable file"),
        (("demo", "--sources", SOURCES, "--input", "missing.jsonl"), "demo", "missing.jsonl: cannot read"),
        (
            ("topics", "render", "--strimzi", "--cluster", "c", "--sources", "missing.toml"),
            "topics render",
            "is not a readable file",
        ),
        (("map",), "map", "no sources file: set TRACKBRIDGE_SOURCES or pass --sources FILE"),
    ],
    ids=["send", "map-input", "map-sources", "demo-input", "render-sources", "map-no-sources"],
)
def test_a_missing_file_is_a_usage_error(
    trackbridge: Run, args: tuple[str, ...], command: str, words: str
) -> None:
    assert_one_error_line(trackbridge(*args), command, USAGE, words)


@pytest.mark.parametrize(
    ("args", "command", "words"),
    [
        (("tail", "t", "--batch-size", "3"), "tail", "unrecognized arguments: --batch-size 3"),
        (("map", "--bogus"), "map", "unrecognized arguments: --bogus"),
        (("topics", "list", "--web-port", "1"), "topics list", "unrecognized arguments: --web-port 1"),
        (
            ("worker", "--batch-size", "0", "--sources", SOURCES),
            "worker",
            "--batch-size: expected an integer >= 1",
        ),
        (("tail",), "tail", "the following arguments are required: TOPIC"),
    ],
    ids=["flag-of-another-command", "unknown-flag", "topics-flag", "bad-value", "missing-argument"],
)
def test_a_bad_flag_is_a_usage_error(
    trackbridge: Run, args: tuple[str, ...], command: str, words: str
) -> None:
    assert_one_error_line(trackbridge(*args), command, USAGE, words)


def test_a_bad_variable_is_a_usage_error_naming_it(trackbridge: Run) -> None:
    result = trackbridge("tail", "t", env={"TRACKBRIDGE_SECURITY_PROTOCOL": "carrier-pigeon"})
    assert_one_error_line(result, "tail", USAGE, "TRACKBRIDGE_SECURITY_PROTOCOL")


def test_version(trackbridge: Run) -> None:
    result = trackbridge("--version")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("trackbridge 0.")


def test_tail_help_lists_only_what_tail_uses(trackbridge: Run) -> None:
    text = trackbridge("tail", "--help").stdout.decode()
    assert "--bootstrap-servers" in text and "--sasl-password" in text and "--from-beginning" in text
    for other in (
        "--batch-size",
        "--group-id",
        "--sources",
        "--web-port",
        "--input-partitions",
        "--topic-prefix",
    ):
        assert other not in text
    assert len(text.splitlines()) < 60


@pytest.mark.parametrize(
    ("command", "present", "absent"),
    [
        (("map",), ["--sources"], ["--bootstrap-servers", "--batch-size"]),
        (("send",), ["--bootstrap-servers", "--topic-prefix", "--key-field"], ["--batch-size", "--sources"]),
        (("topics", "render"), ["--sources", "--output-partitions"], ["--bootstrap-servers", "--web-port"]),
        (("worker",), ["--bootstrap-servers", "--sources", "--batch-size"], ["--input-partitions"]),
        (("hash-key",), [], ["--sources", "--bootstrap-servers"]),
    ],
    ids=["map", "send", "topics-render", "worker", "hash-key"],
)
def test_each_command_offers_the_flags_it_uses(
    trackbridge: Run, command: tuple[str, ...], present: list[str], absent: list[str]
) -> None:
    text = trackbridge(*command, "--help").stdout.decode()
    assert all(flag in text for flag in present)
    assert not any(flag in text for flag in absent)


def test_map_reads_the_sources_file_from_the_environment(trackbridge: Run) -> None:
    result = (
        trackbridge(ENVELOPES, env={"TRACKBRIDGE_SOURCES": str(SOURCES)})
        if False
        else trackbridge("map", ENVELOPES, env={"TRACKBRIDGE_SOURCES": str(SOURCES)})
    )
    assert result.returncode == 0
    assert result.stdout.count(b"\n") > 0


def test_an_embedded_broker_that_cannot_start_is_a_runtime_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.cli import main as cli
    from worker.local import embedded

    def missing() -> str:
        raise embedded.EmbeddedBrokerError("the embedded broker needs the `embedded` extra")

    monkeypatch.setattr(embedded, "_broker_binary", missing)
    for name in [name for name in os.environ if name.startswith("TRACKBRIDGE_")]:
        monkeypatch.delenv(name)
    assert cli.main(["run", "--sources", str(SOURCES), "--web-port", str(free_port())]) == FAILURE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("trackbridge run: error: the embedded broker needs the `embedded` extra")
