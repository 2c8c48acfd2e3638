"""The docs name every public name: reason codes, metrics, settings, exit codes, commands, layout.

Names are an interface; these tests fail when code and docs drift apart. The README is the front
door; the reference tables live in docs/reference.md.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from mapping.reasons import Reason
from worker import metrics
from worker.cli import exits
from worker.cli.main import build_parser
from worker.config import settings
from worker.edge import answers
from worker.edge import metrics as edge_metrics

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
REFERENCE = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def _table_first_cells(text: str, heading: str) -> list[str]:
    """The backticked first cell of every row of the first table under `heading`."""
    table = _section(text, heading).split("\n\n|", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", table, re.M)


def _commands() -> list[str]:
    """Every subcommand, `topics` actions spelled out (`topics create`)."""
    parser = build_parser()
    found = []
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        assert isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items():
            nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            found.extend(f"{name} {inner}" for a in nested for inner in a.choices)
            if not nested:
                found.append(name)
    return sorted(found)


def test_the_first_two_commands_are_make_run_and_make_test() -> None:
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "run"], ["make", "test"]]


def test_the_readme_stays_a_front_door() -> None:
    assert len(README.splitlines()) <= 170


def test_reason_table_lists_every_code_with_its_kind() -> None:
    section = _section(REFERENCE, "## Reason codes")
    documented = dict(re.findall(r"^\| `([a-z_]+)` \| (reject|skip) \|", section, re.M))
    assert documented == {reason.value: reason.kind.value for reason in Reason}


def test_metric_table_lists_every_metric() -> None:
    assert _table_first_cells(REFERENCE, "## Metrics") == [d.name for d in metrics.DEFINITIONS]


def test_edge_metric_table_lists_every_edge_metric() -> None:
    assert _table_first_cells(REFERENCE, "### Edge metrics") == [d.name for d in edge_metrics.DEFINITIONS]


def test_edge_status_table_lists_every_refusal_with_its_status() -> None:
    section = _section(REFERENCE, "### Edge answers")
    rows = re.findall(r"^\| `(\d{3})` \| `([a-z_]+)` \|", section, re.M)
    assert {reason: int(status) for status, reason in rows} == {
        refusal.value: refusal.status for refusal in answers.Refusal
    }


def test_settings_table_lists_every_setting_in_order() -> None:
    assert _table_first_cells(REFERENCE, "## Settings") == [settings.env_name(f) for f in settings.FIELDS]


def test_exit_code_table_lists_every_status() -> None:
    assert _table_first_cells(REFERENCE, "## Exit codes") == [str(status) for status in exits.STATUSES]


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_in_the_reference(command: str) -> None:
    assert f"trackbridge {command}" in REFERENCE


@pytest.mark.parametrize("command", sorted({c.split()[0] for c in _commands()}))
def test_every_command_is_named_in_the_readme(command: str) -> None:
    assert f"trackbridge {command}" in README


def _layout_paths() -> list[str]:
    table = _section(README, "## Where things live")
    return [
        path for row in re.findall(r"^\| (.+?) \|", table, re.M) for path in re.findall(r"`([^`]+)`", row)
    ]


def test_where_things_live_names_only_what_exists() -> None:
    paths = _layout_paths()
    assert paths
    base = ROOT
    for path in paths:
        if "/" in path:
            base = ROOT / path.rstrip("/")
            target = base
        else:  # a module named beside the previous path's folder: `routing.py` after `worker/records.py`
            target = base.parent / path
        assert target.exists(), f"README 'Where things live' names {path}, which does not exist"


def test_where_things_live_covers_every_package_and_module() -> None:
    named = " ".join(_layout_paths())
    for package in ("mapping", "topics", "deploy", "bench"):
        assert f"{package}/" in named
    worker = ROOT / "worker"
    for entry in sorted(worker.iterdir()):
        if entry.is_dir() and (entry / "__init__.py").exists():
            assert f"worker/{entry.name}/" in named, f"worker/{entry.name}/ is missing from the README"
        elif entry.suffix == ".py" and entry.name != "__init__.py":
            assert re.search(rf"(^|[ /]){re.escape(entry.name)}\b", named), f"worker/{entry.name} is missing"
