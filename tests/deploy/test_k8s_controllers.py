"""The rendered manifests leave to each controller what it owns, so `kubectl apply -k` never undoes it.

* KEDA (through the HPA it makes) owns a scaled Deployment's `replicas`: a value in the manifest
  resets a scaled-out group to it at every apply.
* KEDA makes that HPA itself: a second HPA on the same Deployment would fight it.
* Strimzi's User Operator owns the Secret named after a KafkaUser (it writes the password there):
  a Secret of that name in the manifests would be overwritten by one or the other.
* The alerts' runbook links are absolute, and an overlay's links point at its own runbook base.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml
from k8s_objects import Objects, every, one
from promql_refs import REPO

RUNBOOK_BASE = "https://runbooks.example.com/trackbridge/deploy.md"


def _scaled_targets(objects: Objects) -> set[tuple[str, str]]:
    targets = set()
    for scaled in every(objects, "ScaledObject"):
        ref = scaled["spec"]["scaleTargetRef"]
        targets.add((ref.get("kind", "Deployment"), ref["name"]))
    for hpa in every(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        targets.add((ref["kind"], ref["name"]))
    return targets


def test_no_replicas_where_an_autoscaler_owns_them(worker_render: Objects) -> None:
    targets = _scaled_targets(worker_render)
    assert ("Deployment", "trackbridge") in targets, "the worker is not autoscaled any more?"
    for obj in worker_render:
        if (obj["kind"], obj["metadata"]["name"]) in targets:
            assert "replicas" not in obj["spec"], (
                f"{obj['kind']}/{obj['metadata']['name']} sets replicas while an autoscaler owns them: "
                "every `kubectl apply -k` would reset the scaled group"
            )


def test_keda_makes_the_only_hpa_of_the_worker(worker_render: Objects) -> None:
    scaled = {o["spec"]["scaleTargetRef"]["name"] for o in every(worker_render, "ScaledObject")}
    for hpa in every(worker_render, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] not in scaled, "two autoscalers on one Deployment"


def test_no_secret_that_the_strimzi_user_operator_writes(worker_render: Objects) -> None:
    users = {o["metadata"]["name"] for o in every(worker_render, "KafkaUser")}
    secrets = {o["metadata"]["name"] for o in every(worker_render, "Secret")}
    assert not users & secrets


def test_the_base_links_alerts_to_the_default_runbook_base(worker_render: Objects) -> None:
    rule = one(worker_render, "PrometheusRule")
    urls = [
        r["annotations"]["runbook_url"]
        for group in rule["spec"]["groups"]
        for r in group["rules"]
        if "alert" in r
    ]
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.netloc and parts.fragment, url


def test_an_overlay_links_alerts_to_its_own_runbook_base(overlay_render: Objects) -> None:
    rule = one(overlay_render, "PrometheusRule")
    overlay_files = sorted((REPO / "deploy/k8s/overlays").glob("*/runbooks.yaml"))
    bases = {yaml.safe_load(path.read_text())["data"]["base_url"] for path in overlay_files}
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            if "alert" in r:
                base, _, anchor = r["annotations"]["runbook_url"].partition("#")
                assert base in bases and base != RUNBOOK_BASE, r["annotations"]["runbook_url"]
                assert anchor == r["alert"].lower()
    # kustomize reads the base URL's ConfigMap (local-config) but does not deploy it
    assert not [
        o for o in every(overlay_render, "ConfigMap") if o["metadata"]["name"] == "trackbridge-runbooks"
    ]
