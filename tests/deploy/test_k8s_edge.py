"""The edge's Kubernetes objects fit together, fit the edge, and match the worker's hardening."""

from __future__ import annotations

from k8s_objects import EDGE, Objects, container, environment, every, one
from metric_names import EDGE_JOB

from mapping.routes import _TABLE, ENDPOINTS
from worker import web
from worker.config.settings import load_settings


def test_the_edge_runs_the_edge_command_as_hardened_as_the_worker(worker_render: Objects) -> None:
    edge_pod = one(worker_render, "Deployment", component=EDGE)["spec"]["template"]["spec"]
    worker_pod = one(worker_render, "Deployment")["spec"]["template"]["spec"]
    assert edge_pod["securityContext"] == worker_pod["securityContext"]
    assert container(worker_render, EDGE)["securityContext"] == container(worker_render)["securityContext"]
    assert container(worker_render, EDGE)["command"] == ["trackbridge", "edge"]


def test_edge_probes_use_healthz_and_readyz_on_the_edge_port(worker_render: Objects) -> None:
    edge = container(worker_render, EDGE)
    ports = {port["name"]: port["containerPort"] for port in edge["ports"]}
    assert ports == {"http": int(environment(worker_render, EDGE)["TRACKBRIDGE_EDGE_PORT"])}
    assert edge["livenessProbe"]["httpGet"] == {"path": web.HEALTHZ, "port": "http"}
    assert edge["startupProbe"]["httpGet"] == {"path": web.HEALTHZ, "port": "http"}
    assert edge["readinessProbe"]["httpGet"] == {"path": web.READYZ, "port": "http"}


def test_termination_grace_covers_the_edge_shutdown(worker_render: Objects) -> None:
    env = {k: v for k, v in environment(worker_render, EDGE).items() if k != "TRACKBRIDGE_SOURCES"}
    env.pop("TRACKBRIDGE_SSL_CAFILE", None)
    settings, _ = load_settings(environ=env | {"TRACKBRIDGE_SASL_PASSWORD": "from-the-secret"})
    pod = one(worker_render, "Deployment", component=EDGE)["spec"]["template"]["spec"]
    assert (
        settings.shutdown_timeout + 5
        <= pod["terminationGracePeriodSeconds"]
        <= settings.shutdown_timeout + 30
    )
    assert settings.edge_produce_timeout < settings.shutdown_timeout


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_service_pdb_hpa_and_servicemonitor_select_the_edge_only(worker_render: Objects) -> None:
    deployment = one(worker_render, "Deployment", component=EDGE)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    worker_labels = one(worker_render, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one(worker_render, "Service", component=EDGE)
    monitor = one(worker_render, "ServiceMonitor", component=EDGE)
    pdb = one(worker_render, "PodDisruptionBudget", component=EDGE)
    hpa = one(worker_render, "HorizontalPodAutoscaler", component=EDGE)
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        assert _selects(selector, pod_labels) and not _selects(selector, worker_labels)
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == EDGE_JOB
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"]
    assert monitor["spec"]["endpoints"][0]["path"] == web.METRICS
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2 and pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_the_ingress_routes_every_track_api_path_and_nothing_else_to_the_edge(
    overlay_render: Objects,
) -> None:
    ingress = one(overlay_render, "Ingress", component=EDGE)
    service = one(overlay_render, "Service", component=EDGE)
    prefixes = []
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["pathType"] == "Prefix"
            assert path["backend"]["service"]["name"] == service["metadata"]["name"]
            assert path["backend"]["service"]["port"]["name"] == "http"
            prefixes.append(path["path"])
    assert ENDPOINTS
    for _, template, endpoint in _TABLE:
        assert any(template.startswith(prefix) for prefix in prefixes), f"{endpoint} is not routed"
    for page in (web.HEALTHZ, web.READYZ, web.METRICS):
        assert not any(page.startswith(prefix) for prefix in prefixes), f"{page} is exposed"
    assert ingress["spec"]["tls"]


def test_the_edge_kafka_user_may_write_the_input_topic_and_nothing_else(overlay_render: Objects) -> None:
    env = environment(overlay_render, EDGE)
    user = one(overlay_render, "KafkaUser", component=EDGE)
    edge_env = {e["name"]: e for e in container(overlay_render, EDGE)["env"]}
    assert edge_env["TRACKBRIDGE_SASL_USERNAME"]["value"] == user["metadata"]["name"]
    assert (
        edge_env["TRACKBRIDGE_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == user["metadata"]["name"]
    )
    topic = env.get("TRACKBRIDGE_TOPIC_PREFIX", "") + env["TRACKBRIDGE_INPUT_TOPIC"]
    topics = {acl["resource"]["name"]: set(acl["operations"]) for acl in user["spec"]["authorization"]["acls"]
              if acl["resource"]["type"] == "topic"}  # fmt: skip
    assert topics == {topic: {"Write", "Describe"}}
    mounted = {
        v["secret"]["secretName"]
        for v in one(overlay_render, "Deployment", component=EDGE)["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert mounted <= {
        o["metadata"]["labels"]["strimzi.io/cluster"] + "-cluster-ca-cert"
        for o in every(overlay_render, "KafkaUser")
    }
