"""worker/logs.py: JSON lines or text, and a Kafka client's error flood collapsed to a count."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.config.settings import SettingsError, load_settings
from worker.logs import Collapser, configure_logging, formatter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]


def _record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_json_line_is_one_object_with_the_traceback_as_a_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("worker.x", logging.ERROR, __file__, 7, "failed on %s", ("p[0]",), None)
        record.exc_info = sys.exc_info()
    line = formatter("json").format(record)
    assert "\n" not in line
    event = json.loads(line)
    assert event["level"] == "ERROR"
    assert event["logger"] == "worker.x"
    assert event["message"] == "failed on p[0]"
    assert event["time"]
    assert "Traceback" in event["exc_info"] and "ValueError: boom" in event["exc_info"]


def test_text_is_one_readable_line() -> None:
    line = formatter("text").format(_record("worker.x", logging.INFO, "assigned %d", 3))
    assert line.endswith("INFO    worker.x: assigned 3")


def test_a_flood_of_one_condition_is_one_line_then_one_count_per_window() -> None:
    clock, written = Clock(), []
    collapser = Collapser(written.append, window=30, clock=clock)
    passed = []
    for node in range(3150):
        template = "Unable connect to node with id %s: %s"
        record = _record("aiokafka.conn", logging.ERROR, template, node % 3, "x")
        if collapser.filter(record):
            passed.append(record)
        clock.now += 0.009  # 3,150 in ~28 s, as measured with every connection cut
    assert len(passed) == 1
    collapser.flush()
    assert written == []  # the window has not ended yet
    clock.now += 5
    collapser.flush()
    assert len(written) == 1
    assert written[0].repeated == 3149  # type: ignore[attr-defined]
    assert written[0].condition == "Unable connect to node with id %s: %s"  # type: ignore[attr-defined]
    assert written[0].getMessage().startswith("repeated 3149 more time(s) in 33 s: Unable connect")
    assert written[0].levelno == logging.ERROR


def test_other_conditions_and_other_loggers_are_not_collapsed() -> None:
    clock, written = Clock(), []
    collapser = Collapser(written.append, window=30, clock=clock)
    records = [
        _record("aiokafka.conn", logging.ERROR, "Unable connect to node %s", 1),
        _record("aiokafka.cluster", logging.ERROR, "Unable connect to node %s", 1),
        _record("aiokafka.conn", logging.WARNING, "Unable connect to node %s", 1),
        _record("aiokafka.conn", logging.ERROR, "Metadata for %s failed", "t"),
        _record("aiokafka.conn", logging.INFO, "connected"),
        _record("aiokafka.conn", logging.INFO, "connected"),
        _record("worker.runtime.pipeline", logging.ERROR, "retrying"),
        _record("worker.runtime.pipeline", logging.ERROR, "retrying"),
    ]
    assert all(collapser.filter(record) for record in records)
    collapser.flush(everything=True)
    assert written == []  # no condition repeated


def test_the_next_record_after_the_window_carries_the_count_first() -> None:
    clock, written = Clock(), []
    collapser = Collapser(written.append, window=30, clock=clock)
    assert collapser.filter(_record("aiokafka", logging.ERROR, "down %s", 1))
    assert not collapser.filter(_record("aiokafka", logging.ERROR, "down %s", 2))
    clock.now += 31
    assert collapser.filter(_record("aiokafka", logging.ERROR, "down %s", 3))
    assert [record.getMessage() for record in written] == ["repeated 1 more time(s) in 31 s: down 2"]


@pytest.mark.usefixtures("restore_root")
def test_configure_logging_installs_the_format_and_the_collapser(capsys: pytest.CaptureFixture[str]) -> None:
    collapser = configure_logging("INFO", "json")
    for _ in range(5):
        logging.getLogger("aiokafka.conn").error("Unable connect to node with id %s", 0)
    collapser.flush(everything=True)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == [
        "Unable connect to node with id 0",
        "repeated 4 more time(s) in 0 s: Unable connect to node with id 0",
    ]
    assert lines[1]["repeated"] == 4


def test_the_log_format_setting_is_json_or_text() -> None:
    assert load_settings(environ={})[0].log_format == "text"
    assert load_settings(environ={"TRACKBRIDGE_LOG_FORMAT": " JSON "})[0].log_format == "json"
    with pytest.raises(SettingsError, match="TRACKBRIDGE_LOG_FORMAT"):
        load_settings(environ={"TRACKBRIDGE_LOG_FORMAT": "xml"})


def test_the_image_logs_json_by_default() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "deploy/Dockerfile").read_text()
    assert "TRACKBRIDGE_LOG_FORMAT=json" in dockerfile
