"""deploy/k8s (and the Grafana ConfigMap): every kustomization renders and every object is valid.

Built-in kinds are checked against Kubernetes' own OpenAPI schemas (kubernetes-validate, strict:
an unknown field fails). Custom resources are checked against the JSON schemas in
deploy/schemas/, written from the operators' documented specs; a kind with neither fails, so
nothing goes unchecked. How the objects fit together and with the worker: test_k8s_wiring.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_objects import Objects, kid, one
from promql_refs import REPO

SCHEMAS = REPO / "deploy/schemas"
# The oldest Kubernetes release the manifests support (PodDisruptionBudget's
# unhealthyPodEvictionPolicy is beta, on by default, from 1.27), and the newest schemas available.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())


# --- schemas -------------------------------------------------------------------------------------


@cache
def _custom_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> JSON schema, from deploy/schemas/*.schema.json."""
    schemas = {}
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        kind = schema["properties"]["kind"]["const"]
        for api_version in schema["properties"]["apiVersion"]["enum"]:
            schemas[(api_version, kind)] = schema
    return schemas


def test_every_custom_resource_kind_has_a_schema() -> None:
    kinds = {kind for _, kind in _custom_schemas()}
    assert kinds == {
        "ServiceMonitor",
        "PrometheusRule",
        "ScaledObject",
        "TriggerAuthentication",
        "KafkaTopic",
        "KafkaUser",
    }


def test_every_object_validates_against_its_schema(rendered: Objects) -> None:
    assert rendered, "rendered nothing"
    for obj in rendered:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        schema = _custom_schemas().get((obj["apiVersion"], obj["kind"]))
        if schema is not None:
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(obj), key=str)
            assert not errors, f"{what}: " + "; ".join(
                f"{list(e.absolute_path)}: {e.message}" for e in errors
            )
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                pytest.fail(
                    f"{what}: {obj['apiVersion']} {obj['kind']} is neither built in nor in deploy/schemas"
                )
            except kubernetes_validate.ValidationError as error:
                pytest.fail(
                    f"{what} is invalid for Kubernetes {version}: {error.message} at {list(error.path)}"
                )


_KAFKA = {"bootstrapServers": "k:9092", "consumerGroup": "g"}
_CLUSTER = {"strimzi.io/cluster": "c"}
_TYPICAL_MISTAKES = [
    (
        "ScaledObject",
        {"spec": {"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "kafka", "metadata": {}}]}},
    ),
    (
        "ScaledObject",
        {
            "spec": {
                "scaleTargetRef": {"name": "x"},
                "triggers": [{"type": "kafka", "metadata": {**_KAFKA, "lagTreshold": "5"}}],
            }
        },
    ),
    (
        "ServiceMonitor",
        {"spec": {"selector": {"matchLabels": {"a": "b"}}, "endpoints": [{"interval": "30 s"}]}},
    ),
    (
        "PrometheusRule",
        {"spec": {"groups": [{"name": "g", "rules": [{"record": "a:b", "alert": "A", "expr": "1"}]}]}},
    ),
    ("KafkaTopic", {"metadata": {"name": "t"}, "spec": {"partitions": 3, "replicas": 3}}),
    ("KafkaTopic", {"metadata": {"name": "t", "labels": _CLUSTER}, "spec": {"partitions": 0, "replicas": 3}}),
    (
        "KafkaUser",
        {
            "metadata": {"name": "u", "labels": _CLUSTER},
            "spec": {
                "authorization": {
                    "type": "simple",
                    "acls": [{"resource": {"type": "topic", "name": "t"}, "operation": "Read"}],
                }
            },
        },
    ),
    ("TriggerAuthentication", {"spec": {"secretTargetRef": [{"parameter": "password", "name": "s"}]}}),
]


@pytest.mark.parametrize(("kind", "broken"), _TYPICAL_MISTAKES)
def test_the_custom_schemas_reject_typical_mistakes(kind: str, broken: dict[str, Any]) -> None:
    schema = next(s for (_, k), s in _custom_schemas().items() if k == kind)
    obj = {
        "apiVersion": schema["properties"]["apiVersion"]["enum"][0],
        "kind": kind,
        "metadata": {"name": "x"},
        **broken,
    }
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(obj))


# --- generated files -----------------------------------------------------------------------------


@cache
def _gen() -> Any:
    spec = importlib.util.spec_from_file_location("deploy_gen", REPO / "deploy/gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date() -> None:
    stale = [kid(path) for path in _gen().stale()]
    assert not stale, f"out of date, run `python deploy/gen.py`: {stale}"


def test_the_prometheus_rule_carries_rules_yaml_unchanged() -> None:
    generated = yaml.safe_load(_gen().PROMETHEUS_RULE.read_text())
    assert generated["spec"] == yaml.safe_load((REPO / "deploy/prometheus/rules.yaml").read_text())


def test_rendered_prometheus_rule_passes_promtool(
    worker_render: Objects, promtool: str, tmp_path: Path
) -> None:
    rule = one(worker_render, "PrometheusRule")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_object_goes_to_the_overlays_namespace(overlay_render: Objects) -> None:
    namespaces = {o["metadata"].get("namespace") for o in overlay_render}
    assert len(namespaces) == 1 and None not in namespaces
