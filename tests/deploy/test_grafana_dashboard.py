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
    TEMPLATE_VALUES,
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
        ("trackbridge_processing_latency_seconds", {"0.5", "0.9", "0.99"}),
    ],
)
def test_latency_panels_show_p50_p90_p99(dashboard: dict[str, Any], metric: str, quantiles: set[str]) -> None:
    pattern = re.compile(rf"histogram_quantile\(\s*([0-9.]+)\s*,.*\b{metric}_bucket\b")
    shown = {m.group(1) for _, expr in _exprs(dashboard) if (m := pattern.search(expr))}
    assert quantiles <= shown


def test_worker_count_panel_counts_healthy_trackbridge_targets(dashboard: dict[str, Any]) -> None:
    exprs = [expr for _, expr in _exprs(dashboard)]
    assert any(
        expr.replace(" ", "").startswith('count(up{job=~"$job",namespace=~"$namespace"}==1)')
        for expr in exprs
    )


def test_namespace_job_and_source_are_variables_of_trackbridge_series(dashboard: dict[str, Any]) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert set(TEMPLATE_VALUES) | {"datasource"} == set(variables)
    for name in TEMPLATE_VALUES:
        variable = variables[name]
        assert variable["type"] == "query" and variable["datasource"] == DATASOURCE
        assert variable["includeAll"] and variable["multi"], name
        for selector in selectors(
            grafana_expr(variable["query"]["query"].split("(", 1)[1].rsplit(",", 1)[0])
        ):
            assert selector.name in series_labels(), f"variable {name}: {selector.name}"
    # "All" namespaces also matches a Prometheus without a namespace label; "All" jobs is the list of
    # jobs that expose trackbridge_build_info (no allValue), never every job of the Prometheus.
    assert variables["namespace"]["allValue"] == ".*"
    assert "allValue" not in variables["job"]


def test_every_query_is_filtered_by_the_variables(dashboard: dict[str, Any]) -> None:
    """Every selector takes namespace and job (the edge's own job variable for the edge's metrics);
    every one with a source label takes source too."""
    known = series_labels()
    rules = {rule["record"]: rule for rule in load_rules() if "record" in rule}
    for title, expr in _exprs(dashboard):
        for selector in selectors(grafana_expr(expr, templates=False)):
            where = f"panel {title!r}: {expr}"
            assert selector.matchers.get("namespace") == "$namespace", where
            edge = str(selector.name).startswith("trackbridge_edge_")
            assert selector.matchers.get("job") == ("$edge_job" if edge else "$job"), where
            has_source = "source" in known.get(str(selector.name), frozenset()) or (
                selector.name in rules and "source" in rules[str(selector.name)]["expr"]
            )
            if has_source:
                assert selector.matchers.get("source") == "$source", where


def test_annotations_mark_restarts_and_rebalances(dashboard: dict[str, Any]) -> None:
    annotations = {a["name"]: a for a in dashboard["annotations"]["list"] if a.get("expr")}
    assert {"Restarts", "Rebalances"} <= set(annotations)
    for name, annotation in annotations.items():
        assert annotation["datasource"] == DATASOURCE, name
        names = {selector.name for selector in selectors(grafana_expr(annotation["expr"]))}
        assert names <= set(series_labels()), name
    assert "process_start_time_seconds" in annotations["Restarts"]["expr"]
    assert "trackbridge_rebalances_total" in annotations["Rebalances"]["expr"]


def test_readiness_and_rebalances_have_panels(dashboard: dict[str, Any]) -> None:
    titles = {title for title, _ in _exprs(dashboard)}
    assert {"Ready workers", "Rebalances and commit failures"} <= titles
