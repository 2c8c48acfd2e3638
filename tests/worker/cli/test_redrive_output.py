"""What `trackbridge redrive` shows a person: a progress bar on a terminal, then a summary."""

from __future__ import annotations

import io

import pytest

from worker.cli.redrive import _print_summary, _progress_line
from worker.redrive import Summary


def summary(**counts: object) -> Summary:
    base = Summary(
        dead_letter_topic="journeys.dlq", input_topic="journeys.track.raw", group="g", dry_run=False
    )
    for name, value in counts.items():
        setattr(base, name, value)
    return base


def test_the_progress_bar_redraws_in_place(capsys: pytest.CaptureFixture[str]) -> None:
    _progress_line(summary(total=200, read=50, selected=40, sent=30, refused={"redacted": 2}))
    line = capsys.readouterr().err
    assert line.startswith("\r[") and "\n" not in line
    assert " 25%  read 50/200  selected 40  sent 30  refused 2" in line
    assert line.count("#") == 7


def test_the_summary_counts_by_reason_source_and_refusal() -> None:
    out = io.StringIO()
    _print_summary(
        summary(
            read=9,
            selected=5,
            sent=3,
            by_reason={"unauthorized": 5},
            by_source={"mobile": 5},
            refused={"tampered": 1, "redacted": 1},
        ),
        out,
    )
    text = out.getvalue()
    assert "read 9, selected 5, sent 3" in text
    assert "selected by reason:\n  unauthorized: 5" in text
    assert "refused:\n  redacted: 1\n  tampered: 1" in text


def test_a_dry_run_says_what_it_would_send() -> None:
    out = io.StringIO()
    dry = summary(sent=4)
    dry.dry_run = True
    _print_summary(dry, out)
    assert "would send 4" in out.getvalue()
