"""deploy/grafana/trackbridge.json: loads, keeps its uid, and queries only what exists."""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

import pytest
from metric_names import JOB, METRICS, series_labels
from promql_refs import (
    DASHBOARD,
    dashboard_targets,
    grafana_expr,
    load_rules,
    panels,
    recorded_names,
    selectors,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def test_dashboard_has_the_stable_uid_and_a_title(dashboard: dict[str, Any]) -> None:
    # Links, provisioning and alert annotations find the dashboard by uid: never change it.
    assert dashboard["uid"] == "trackbridge"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)


def test_datasource_is_a_prometheus_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_panel_queries_through_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    all_panels = panels(dashboard)
    assert len(all_panels) >= 15
    for panel in all_panels:
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        assert panel.get("datasource") == DATASOURCE, f"panel {panel['title']!r}: datasource"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE, f"panel {panel['title']!r}: target datasource"
            assert target.get("expr", "").strip(), f"panel {panel['title']!r}: target without expr"


def test_panel_ids_are_unique_and_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    every = dashboard["panels"]
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids))
    boxes = [(panel["title"], panel["gridPos"]) for panel in every]
    for title, box in boxes:
        assert box["x"] >= 0 and box["x"] + box["w"] <= 24, f"{title!r} is outside the 24-column grid"
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"panels {a!r} and {b!r} overlap"


def _exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel, target in dashboard_targets(dashboard)]


def test_every_query_uses_only_worker_metrics_or_recording_rules(dashboard: dict[str, Any]) -> None:
    known = series_labels()
    recorded = recorded_names()
    for title, expr in _exprs(dashboard):
        for selector in selectors(grafana_expr(expr)):
            where = f"panel {title!r}: {expr}"
            assert selector.name is not None, where
            if selector.name in recorded:
                continue
            assert selector.name in known, (
                f"{where}: {selector.name} is not a worker metric or recording rule"
            )
            unknown = set(selector.matchers) - known[selector.name]
            assert not unknown, f"{where}: {selector.name} has no label(s) {sorted(unknown)}"
            if selector.name == "up":
                assert selector.matchers.get("job") == JOB, where


def test_every_worker_metric_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    # A panel reading a recording rule shows the metrics that rule reads.
    rules = {rule["record"]: rule["expr"] for rule in load_rules() if "record" in rule}
    pending = [s.name for _, expr in _exprs(dashboard) for s in selectors(grafana_expr(expr))]
    shown: set[str] = set()
    while pending:
        name = pending.pop()
        if name is not None and name not in shown:
            shown.add(name)
            pending.extend(s.name for s in selectors(rules.get(name, "vector(0)")))
    for metric in METRICS:
        names = {metric.name, *(f"{metric.name}_{part}" for part in ("bucket", "sum", "count"))}
        assert names & shown, f"{metric.name} is on no panel"


@pytest.mark.parametrize(
    ("metric", "quantiles"),
    [
        ("trackbridge_end_to_end_latency_seconds", {"0.5", "0.9", "0.99"}),
        ("trackbridge_mapping_seconds", {"0.5", "0.9", "0.99"}),
    ],
)
def test_latency_panels_show_p50_p90_p99(dashboard: dict[str, Any], metric: str, quantiles: set[str]) -> None:
    pattern = re.compile(rf"histogram_quantile\(\s*([0-9.]+)\s*,.*\b{metric}_bucket\b")
    shown = {m.group(1) for _, expr in _exprs(dashboard) if (m := pattern.search(expr))}
    assert quantiles <= shown


def test_worker_count_panel_counts_healthy_trackbridge_targets(dashboard: dict[str, Any]) -> None:
    exprs = [expr for _, expr in _exprs(dashboard)]
    assert any(expr.replace(" ", "").startswith('count(up{job="trackbridge"}==1)') for expr in exprs)
