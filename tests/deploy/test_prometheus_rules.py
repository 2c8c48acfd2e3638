"""deploy/prometheus/rules.yaml: valid for Prometheus, unit-tested, and built on the worker's metrics."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from metric_names import JOB, series_labels
from promql_refs import DASHBOARD, REPO, RULES, RULES_TEST, dashboard_targets, load_rules, selectors

DOCS = REPO / "docs/deploy.md"
# Where rules.yaml says docs/deploy.md is published; an overlay replaces it (test_k8s_wiring.py).
RUNBOOK_BASE = "https://runbooks.example.com/trackbridge/deploy.md"
ALERTS = [rule for rule in load_rules() if "alert" in rule]
RECORDS = [rule for rule in load_rules() if "record" in rule]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)


def test_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_file_has_the_expected_alerts() -> None:
    assert {rule["alert"] for rule in ALERTS} == {
        "TrackbridgeDeadLetterRatioHigh",
        "TrackbridgeConsumerLagGrowing",
        "TrackbridgeConsumptionStalled",
        "TrackbridgeProcessingLatencyHigh",
        "TrackbridgeDown",
        "TrackbridgeCommitStalled",
        "TrackbridgeBrokerUnreachable",
        "TrackbridgeRebalancing",
        "TrackbridgeDeadLettersBlocked",
        "TrackbridgeEdgeErrorRatioHigh",
        "TrackbridgeEdgeProduceLatencyHigh",
    }


def _alert_cases() -> list[dict[str, Any]]:
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    return [case for group in tests for case in group.get("alert_rule_test", [])]


@pytest.mark.parametrize("alert", [rule["alert"] for rule in ALERTS])
def test_every_alert_is_unit_tested_firing_and_not_firing(alert: str) -> None:
    cases = [case for case in _alert_cases() if case["alertname"] == alert]
    assert any(case.get("exp_alerts") for case in cases), f"{alert}: no test where it fires"
    assert any(not case.get("exp_alerts") for case in cases), f"{alert}: no test where it stays quiet"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda rule: rule["alert"])
def test_every_alert_has_severity_summary_description_and_runbook(alert: dict[str, Any]) -> None:
    assert alert.get("labels", {}).get("severity") in {"warning", "critical"}
    annotations = alert.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert annotations.get(key, "").strip(), f"{alert['alert']}: no {key} annotation"
    # The convention (Prometheus operator's runbooks, Alertmanager templates): an absolute URL.
    url = urlsplit(annotations["runbook_url"])
    assert url.scheme == "https" and url.netloc, annotations["runbook_url"]
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{alert['alert'].lower()}"


def _github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        text = re.sub(r"[`*_]", "", heading).lower()
        anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text)))
    return anchors


def test_every_runbook_link_points_at_a_heading_of_the_deploy_guide() -> None:
    anchors = _github_anchors(DOCS.read_text())
    missing = [
        rule["alert"]
        for rule in ALERTS
        if urlsplit(rule["annotations"]["runbook_url"]).fragment not in anchors
    ]
    assert not missing, f"docs/deploy.md has no runbook section for {missing}"


@pytest.mark.parametrize("rule", load_rules(), ids=lambda rule: rule.get("alert") or rule["record"])
def test_every_rule_keeps_the_deployment_labels(rule: dict[str, Any]) -> None:
    """Aggregations keep `namespace` and `job`, so one deployment's health never hides another's."""
    for grouping in re.findall(r"\b(?:sum|max|min|count|avg) by \(([^)]*)\)", rule["expr"]):
        labels = {label.strip() for label in grouping.split(",")}
        assert {"namespace", "job"} <= labels, f"`by ({grouping})` drops the deployment: {rule['expr']}"
    assert "on ()" not in rule["expr"], rule["expr"]


@pytest.mark.parametrize("rule", load_rules(), ids=lambda rule: rule.get("alert") or rule["record"])
def test_rules_read_only_metrics_the_worker_exposes(rule: dict[str, Any]) -> None:
    known = series_labels()
    recorded = {record["record"] for record in RECORDS}
    for selector in selectors(rule["expr"]):
        assert selector.name is not None, f"selector without a metric name in {rule['expr']!r}"
        if selector.name in recorded:
            continue
        assert selector.name in known, f"{selector.name} is not a metric of the worker (metric_names.py)"
        unknown = set(selector.matchers) - known[selector.name]
        assert not unknown, f"{selector.name} has no label(s) {sorted(unknown)}"
        if selector.name == "up":
            assert selector.matchers.get("job") == JOB, "`up` must be selected by job=trackbridge"


def test_recording_rules_are_named_level_metric_operation_and_all_used() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    uses = [rule["expr"] for rule in load_rules()] + [t["expr"] for _, t in dashboard_targets(dashboard)]
    for rule in RECORDS:
        name = rule["record"]
        assert re.fullmatch(r"trackbridge:[a-z0-9_]+:[a-z0-9_]+", name), f"{name}: not level:metric:operation"
        assert any(re.search(rf"{re.escape(name)}\b", expr) for expr in uses if expr != rule["expr"]), (
            f"recording rule {name} is used by no rule and no dashboard panel"
        )
