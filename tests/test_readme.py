"""The README documents every public name: reason codes, metrics, settings and commands.

Names are an interface; these tests fail when code and README drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mapping.reasons import Reason
from worker import metrics
from worker.cli.main import build_parser
from worker.config import settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _table_first_cells(heading: str) -> list[str]:
    """The backticked first cell of every row of the first table under `heading`."""
    section = README.split(f"\n{heading}\n", 1)[1]
    table = section.split("\n\n|", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", table, re.M)


def test_the_first_two_commands_are_make_run_and_make_test() -> None:
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "run"], ["make", "test"]]


def test_reason_table_lists_every_code_with_its_kind() -> None:
    section = README.split("\n## Reason codes\n", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `([a-z_]+)` \| (reject|skip) \|", section, re.M))
    assert documented == {reason.value: reason.kind.value for reason in Reason}


def test_metric_table_lists_every_metric() -> None:
    assert _table_first_cells("## Metrics") == [definition.name for definition in metrics.DEFINITIONS]


def test_settings_table_lists_every_setting_in_order() -> None:
    assert _table_first_cells("### Settings") == [settings.env_name(field) for field in settings.FIELDS]


@pytest.mark.parametrize("command", sorted(build_parser()._subparsers._group_actions[0].choices))  # type: ignore[union-attr]
def test_every_command_is_documented(command: str) -> None:
    assert f"trackbridge {command}" in README
