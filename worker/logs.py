"""The worker's log output: JSON lines or text on stderr, and Kafka clients' error floods collapsed.

`TRACKBRIDGE_LOG_FORMAT=json` (the image's default) writes one JSON object per event, the
traceback as its `exc_info` field, so a log pipeline never splits an event across lines; `text`
(the default, what `make run` shows) writes one readable line per event.

While a broker is unreachable aiokafka logs the same error for every connection attempt of every
client, thousands of lines a minute (measured: ~3,150 ERROR lines per 30 s with every broker
connection cut). `Collapser` keeps the first line of each condition -- same logger, level and
message template, whatever its arguments -- and swallows its repeats for `window` seconds, then
writes one line saying how many there were.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pythonjsonlogger.json import JsonFormatter

from worker.config.settings import LogFormat

TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# The JSON fields taken from each LogRecord, renamed to what log pipelines expect.
JSON_FIELDS: Final = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_RENAMES: Final = {"asctime": "time", "levelname": "level", "name": "logger"}
COLLAPSE_WINDOW: Final = 30.0
"""Seconds during which repeats of one condition are counted instead of written."""
COLLAPSED_LOGGERS: Final = ("aiokafka",)
"""Loggers (and their children) whose WARNING-or-worse repeats are collapsed."""


def formatter(log_format: LogFormat) -> logging.Formatter:
    """The formatter for `log_format`: JSON objects (UTC ISO-8601 `time`) or text lines."""
    if log_format == "json":
        return JsonFormatter(
            JSON_FIELDS, rename_fields=JSON_RENAMES, timestamp=False, json_ensure_ascii=False
        )
    return logging.Formatter(TEXT_FORMAT)


@dataclass
class _Condition:
    started: float
    last: logging.LogRecord
    repeats: int = 0


class Collapser(logging.Filter):
    """A handler filter: the first record of a condition passes, its repeats within `window`
    seconds are counted, and one summary record with the count is written when the window ends.

    A condition is (logger name, level, message template). Summaries are written by `flush`
    (called periodically by the worker and at exit) or by the condition's next record after the
    window, whichever comes first. Thread-safe: Faust's consumer thread logs too.
    """

    def __init__(
        self,
        emit: Callable[[logging.LogRecord], object],
        *,
        window: float = COLLAPSE_WINDOW,
        loggers: tuple[str, ...] = COLLAPSED_LOGGERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._emit = emit
        self.window = window
        self._prefixes = tuple(loggers)
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[tuple[str, int, str], _Condition] = {}

    def _collapsed(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "repeated", None) is not None:
            return False
        name = record.name
        return any(name == prefix or name.startswith(prefix + ".") for prefix in self._prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._collapsed(record):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        summary: logging.LogRecord | None = None
        with self._lock:
            condition = self._open.get(key)
            if condition is not None and now - condition.started < self.window:
                condition.repeats += 1
                condition.last = record
                return False
            if condition is not None:
                summary = self._summary(condition, now)
            self._open[key] = _Condition(now, record)
        if summary is not None:
            self._emit(summary)
        return True

    def flush(self, *, everything: bool = False) -> None:
        """Write the summary of every condition whose window has ended (all of them with
        `everything`); a condition without repeats ends silently."""
        now = self._clock()
        summaries = []
        with self._lock:
            for key, condition in list(self._open.items()):
                if everything or now - condition.started >= self.window:
                    del self._open[key]
                    summary = self._summary(condition, now)
                    if summary is not None:
                        summaries.append(summary)
        for summary in summaries:
            self._emit(summary)

    @staticmethod
    def _summary(condition: _Condition, now: float) -> logging.LogRecord | None:
        if not condition.repeats:
            return None
        last = condition.last
        message = (
            f"repeated {condition.repeats} more time(s) in {now - condition.started:.0f} s: "
            f"{last.getMessage()}"
        )
        summary = logging.LogRecord(last.name, last.levelno, last.pathname, last.lineno, message, None, None)
        summary.repeated = condition.repeats
        summary.condition = str(last.msg)
        return summary


_collapser: list[Collapser] = []


def configure_logging(level: str, log_format: LogFormat = "text") -> Collapser:
    """Log to stderr at `level` in `log_format`, root logger included; returns the collapser
    of the Kafka clients' repeated errors (flush it now and then).

    mode (under Faust) would set the root logger to DEBUG and filter in its handler, which makes
    every `logger.debug` on the hot path build a record; here the level is set where it is checked.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    collapser = Collapser(handler.handle)
    handler.addFilter(collapser)
    root.addHandler(handler)
    root.setLevel(level)
    _collapser[:] = [collapser]
    return collapser


def flush_collapsed(*, everything: bool = False) -> None:
    """Write the pending summaries of the collapser `configure_logging` installed, if any."""
    for collapser in _collapser:
        collapser.flush(everything=everything)
