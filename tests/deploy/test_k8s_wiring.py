"""The rendered Kubernetes objects fit together and fit the worker.

Names, ports, selectors, settings, credentials, partitions and ACLs must agree across objects
and with the worker's own settings code; each object's validity on its own is test_k8s.py's job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from k8s_objects import Objects, container, environment, every, one, settings
from metric_names import JOB

from worker import web

# Seconds the kubelet must allow beyond the worker's own shutdown timeout for the process to exit.
EXIT_MARGIN_S = (5, 30)


def test_the_worker_runs_as_non_root_with_a_read_only_root(worker_render: Objects) -> None:
    pod = one(worker_render, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    security = container(worker_render)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]


def test_probes_use_healthz_and_readyz_on_the_metrics_port(worker_render: Objects) -> None:
    worker = container(worker_render)
    ports = {port["name"]: port["containerPort"] for port in worker["ports"]}
    assert ports == {"metrics": int(environment(worker_render)["TRACKBRIDGE_WEB_PORT"])}
    assert worker["livenessProbe"]["httpGet"] == {"path": web.HEALTHZ, "port": "metrics"}
    assert worker["startupProbe"]["httpGet"] == {"path": web.HEALTHZ, "port": "metrics"}
    assert worker["readinessProbe"]["httpGet"] == {"path": web.READYZ, "port": "metrics"}


def test_termination_grace_covers_the_worker_shutdown(worker_render: Objects) -> None:
    # After SIGTERM the worker finishes and commits its batch within its shutdown timeout; the
    # kubelet's SIGKILL must come later than that, but not so late that a hung pod lingers.
    shutdown = settings(worker_render).shutdown_timeout
    grace = one(worker_render, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert shutdown + EXIT_MARGIN_S[0] <= grace <= shutdown + EXIT_MARGIN_S[1]


def test_resources_are_requested_and_memory_limited(worker_render: Objects) -> None:
    resources = container(worker_render)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_rollouts_stop_a_worker_before_starting_its_replacement(
    worker_render: Objects,
) -> None:
    # A surge pod may get no partition, never turn ready and stall the rollout.
    strategy = one(worker_render, "Deployment")["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


def test_every_configmap_key_is_a_valid_worker_setting(worker_render: Objects) -> None:
    from worker.config.settings import FIELDS, env_name

    env = environment(worker_render)
    assert set(env) <= {env_name(field) for field in FIELDS}, "unknown TRACKBRIDGE_* variables"
    password = next(e for e in container(worker_render)["env"] if e["name"] == "TRACKBRIDGE_SASL_PASSWORD")
    assert "secretKeyRef" in password["valueFrom"], "the SASL password must come from a Secret"
    settings(worker_render)  # raises SettingsError naming the variable


def test_the_sources_file_is_mounted_where_the_setting_points(
    worker_render: Objects,
) -> None:
    path = Path(environment(worker_render)["TRACKBRIDGE_SOURCES"])
    mount = next(m for m in container(worker_render)["volumeMounts"] if m["name"] == "sources")
    assert Path(mount["mountPath"]) == path.parent
    volume = next(
        v
        for v in one(worker_render, "Deployment")["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "sources"
    )
    assert volume["configMap"]["name"].startswith("trackbridge-sources")


def test_overlays_supply_every_configmap_and_secret_the_pod_needs(
    overlay_render: Objects,
) -> None:
    configmaps = {o["metadata"]["name"]: o for o in every(overlay_render, "ConfigMap")}
    pod = one(overlay_render, "Deployment")["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if "configMap" in volume:
            configmap = configmaps.get(volume["configMap"]["name"])
            assert configmap is not None, (
                f"volume {volume['name']}: no ConfigMap {volume['configMap']['name']}"
            )
            if volume["name"] == "sources":
                assert "sources.toml" in configmap["data"]
    # Secrets are made by the Strimzi operators, never by these manifests: a KafkaUser's Secret
    # carries its name, the cluster CA's is `<cluster>-cluster-ca-cert`.
    users = {o["metadata"]["name"] for o in every(overlay_render, "KafkaUser")}
    clusters = {o["metadata"]["labels"]["strimzi.io/cluster"] for o in every(overlay_render, "KafkaUser")}
    produced = users | {f"{cluster}-cluster-ca-cert" for cluster in clusters}
    referenced = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    # An optional one (the dead-letter sealing key) is the deployment owner's to create.
    referenced |= {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container(overlay_render)["env"]
        if "secretKeyRef" in e.get("valueFrom", {}) and not e["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert referenced <= produced, f"Secrets nobody creates: {sorted(referenced - produced)}"


def test_the_sealing_keys_come_from_a_secret(worker_render: Objects) -> None:
    (sealing,) = [e for e in container(worker_render)["env"] if e["name"] == "TRACKBRIDGE_SEALING_KEYS"]
    assert sealing["valueFrom"]["secretKeyRef"] == {
        "name": "trackbridge-sealing",
        "key": "keys",
        "optional": True,
    }


def test_the_overlay_sources_file_is_valid(overlay_render: Objects) -> None:
    from worker.config.sources import parse_sources

    sources = next(o for o in every(overlay_render, "ConfigMap") if "sources.toml" in o.get("data", {}))
    parse_sources(sources["data"]["sources.toml"])


# --- scraping ------------------------------------------------------------------------------------


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_service_servicemonitor_and_pdb_select_the_worker(worker_render: Objects) -> None:
    deployment = one(worker_render, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(worker_render, "Service")
    monitor = one(worker_render, "ServiceMonitor")
    pdb = one(worker_render, "PodDisruptionBudget")
    assert _selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert _selects(service["spec"]["selector"], pod_labels)
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert _selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert monitor["spec"]["endpoints"][0]["path"] == web.METRICS
    # The rules and the dashboard select up{job="trackbridge"}.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == JOB
    # The worker's own `endpoint` label must not become `exported_endpoint`.
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


# --- autoscaling -----------------------------------------------------------------------------------


def _kafka_trigger(objects: Objects) -> dict[str, Any]:
    triggers = one(objects, "ScaledObject")["spec"]["triggers"]
    assert [t["type"] for t in triggers] == ["kafka"]
    trigger: dict[str, Any] = triggers[0]
    return trigger


def test_keda_watches_the_workers_group_and_input_topic(worker_render: Objects) -> None:
    env = environment(worker_render)
    scaled = one(worker_render, "ScaledObject")
    trigger = _kafka_trigger(worker_render)["metadata"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == one(worker_render, "Deployment")["metadata"]["name"]
    assert trigger["bootstrapServers"] == env["TRACKBRIDGE_BOOTSTRAP_SERVERS"]
    assert trigger["consumerGroup"] == env.get("TRACKBRIDGE_GROUP_ID", "trackbridge")
    assert trigger["topic"] == env.get("TRACKBRIDGE_TOPIC_PREFIX", "") + env["TRACKBRIDGE_INPUT_TOPIC"]
    assert scaled["spec"]["minReplicaCount"] >= 1, "scaling to zero would fire TrackbridgeDown"
    assert scaled["spec"]["maxReplicaCount"] == int(env["TRACKBRIDGE_INPUT_PARTITIONS"])


def test_keda_connects_like_the_worker(worker_render: Objects) -> None:
    env = environment(worker_render)
    trigger = _kafka_trigger(worker_render)
    protocol = env.get("TRACKBRIDGE_SECURITY_PROTOCOL", "PLAINTEXT")
    assert (trigger["metadata"].get("tls", "disable") == "enable") == protocol.endswith("SSL")
    expected_sasl = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
    if protocol.startswith("SASL_"):
        assert trigger["metadata"]["sasl"] == expected_sasl[env["TRACKBRIDGE_SASL_MECHANISM"]]
        auth = next(
            o
            for o in every(worker_render, "TriggerAuthentication")
            if o["metadata"]["name"] == trigger["authenticationRef"]["name"]
        )
        parameters = {ref["parameter"] for ref in auth["spec"].get("secretTargetRef", [])}
        parameters |= {ref["parameter"] for ref in auth["spec"].get("env", [])}
        assert {"username", "password"} <= parameters
        for ref in auth["spec"].get("env", []):
            assert ref["name"] in env, f"TriggerAuthentication reads {ref['name']}, which the container lacks"
    else:
        assert "sasl" not in trigger["metadata"]


# --- Strimzi -------------------------------------------------------------------------------------------


def _topics(objects: Objects) -> dict[str, dict[str, Any]]:
    return {o["spec"].get("topicName", o["metadata"]["name"]): o for o in every(objects, "KafkaTopic")}


def test_max_replicas_equal_the_input_topics_partitions(overlay_render: Objects) -> None:
    env = environment(overlay_render)
    input_topic = env.get("TRACKBRIDGE_TOPIC_PREFIX", "") + env["TRACKBRIDGE_INPUT_TOPIC"]
    topic = _topics(overlay_render)[input_topic]
    assert one(overlay_render, "ScaledObject")["spec"]["maxReplicaCount"] == topic["spec"]["partitions"]


def test_the_kafka_user_may_do_exactly_what_the_worker_needs(
    overlay_render: Objects,
) -> None:
    env = environment(overlay_render)
    user = one(overlay_render, "KafkaUser")
    assert user["metadata"]["name"] == env["TRACKBRIDGE_SASL_USERNAME"]
    assert (
        user["spec"]["authentication"]["type"] == "scram-sha-512" == env["TRACKBRIDGE_SASL_MECHANISM"].lower()
    )

    def allowed(kind: str, name: str) -> set[str]:
        operations: set[str] = set()
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            literal = resource.get("patternType", "literal") == "literal"
            if resource["type"] == kind and (
                resource["name"] == name if literal else name.startswith(resource["name"])
            ):
                operations |= set(acl["operations"])
        return operations

    for name, topic in _topics(overlay_render).items():
        role = topic["metadata"]["annotations"]["trackbridge/role"]
        needed = {"Read", "Describe"} if role == "input" else {"Write", "Describe"}
        assert needed <= allowed("topic", name), f"{user['metadata']['name']} cannot {needed} topic {name}"
    assert "Read" in allowed("group", env.get("TRACKBRIDGE_GROUP_ID", "trackbridge"))
    clusters = {
        o["metadata"]["labels"]["strimzi.io/cluster"] for o in [user, *every(overlay_render, "KafkaTopic")]
    }
    assert len(clusters) == 1, f"resources name several Strimzi clusters: {clusters}"
