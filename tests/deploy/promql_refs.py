"""What a PromQL expression reads: its series selectors, found by a real PromQL parser.

Shared by the rules, dashboard and live-Prometheus tests so all three agree on what "uses a
metric" means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import promql_parser
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy/prometheus/rules.yaml"
RULES_TEST = REPO / "deploy/prometheus/rules_test.yaml"
DASHBOARD = REPO / "deploy/grafana/trackbridge.json"

# Grafana's built-in interval variables, replaced by fixed durations before parsing or querying.
_GRAFANA_VARIABLES = re.compile(r"\$\{?(__rate_interval|__interval|__range)\}?")
# The dashboard's own variables, each replaced by what it selects when left at "All" (namespace,
# source) or at the one job a single deployment has (job: the values of trackbridge_build_info's
# job label), before parsing or querying.
TEMPLATE_VALUES = {"namespace": ".*", "job": "trackbridge", "edge_job": "trackbridge-edge", "source": ".*"}
_TEMPLATE_VARIABLES = re.compile(
    r"\$\{?(" + "|".join(sorted(TEMPLATE_VALUES, key=len, reverse=True)) + r")\}?"
)


@dataclass(frozen=True)
class Selector:
    name: str | None
    matchers: Mapping[str, str] = field(default_factory=dict)
    """Label name -> matched value (or pattern, for =~ and !~)."""


def selectors(expr: str) -> list[Selector]:
    """Every series selector in `expr`, in order; raises ValueError when it does not parse."""
    found: list[Selector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {m.name: m.value for m in node.matchers.matchers if m.name != "__name__"}
            name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            found.append(Selector(name, matchers))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def grafana_expr(
    expr: str,
    *,
    rate_interval: str = "5m",
    interval: str = "1m",
    range_: str = "1h",
    templates: bool = True,
) -> str:
    """A dashboard query with Grafana's interval variables filled in, ready to parse or run; with
    `templates`, the dashboard's own variables too (else `$namespace` stays, in a label matcher)."""
    values = {"__rate_interval": rate_interval, "__interval": interval, "__range": range_}
    if templates:
        expr = _TEMPLATE_VARIABLES.sub(lambda match: TEMPLATE_VALUES[match.group(1)], expr)
    return _GRAFANA_VARIABLES.sub(lambda match: values[match.group(1)], expr)


def load_rules() -> list[dict[str, Any]]:
    """Every rule of deploy/prometheus/rules.yaml, each with its group's name under `group`."""
    data = yaml.safe_load(RULES.read_text())
    return [{**rule, "group": group["name"]} for group in data["groups"] for rule in group["rules"]]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in load_rules() if "record" in rule}


def dashboard_targets(dashboard: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(panel, target) for every query of every panel, rows' nested panels included."""
    pairs = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            pairs.append((panel, target))
    return pairs


def panels(dashboard: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every non-row panel, rows' nested (collapsed) panels included."""
    found: list[Mapping[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found
