"""Rendered kustomizations, and the lookups the Kubernetes tests share."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from promql_refs import REPO

K8S = REPO / "deploy/k8s"
OVERLAYS = sorted(path for path in (K8S / "overlays").iterdir() if (path / "kustomization.yaml").is_file())
KUSTOMIZATIONS = [K8S / "base", *OVERLAYS, REPO / "deploy/grafana"]

Objects = tuple[dict[str, Any], ...]


def kid(path: Path) -> str:
    """A kustomization's test id: its path in the repository."""
    return str(path.relative_to(REPO))


@cache
def render(kubectl: str, directory: Path) -> Objects:
    """`kubectl kustomize DIRECTORY`, parsed; fails the test on an error or a warning."""
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {kid(directory)} failed:\n{result.stderr}"
    # kustomize reports deprecated fields on stderr but still succeeds: keep the files current.
    assert not result.stderr.strip(), f"kubectl kustomize {kid(directory)} warned:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


COMPONENT = "app.kubernetes.io/component"
WORKER, EDGE = "worker", "edge"


def component_of(obj: dict[str, Any]) -> str:
    """The object's component label; objects without one (rules, KEDA, ConfigMaps) are the worker's."""
    label: str = obj["metadata"].get("labels", {}).get(COMPONENT, WORKER)
    return label


def one(objects: Objects, kind: str, name_prefix: str = "", component: str = WORKER) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind
        and o["metadata"]["name"].startswith(name_prefix)
        and component_of(o) == component
    ]
    assert len(found) == 1, f"expected one {kind} named {name_prefix}* ({component}), found {len(found)}"
    return found[0]


def every(objects: Objects, kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def container(objects: Objects, component: str = WORKER) -> dict[str, Any]:
    """The worker's (or the edge's) container: its Deployment has exactly one."""
    containers = one(objects, "Deployment", component=component)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == [
        "trackbridge" if component == WORKER else f"trackbridge-{component}"
    ]
    found: dict[str, Any] = containers[0]
    return found


def environment(objects: Objects, component: str = WORKER) -> dict[str, str]:
    """The worker's (or the edge's) TRACKBRIDGE_* variables from its ConfigMap(s)."""
    env: dict[str, str] = {}
    for source in container(objects, component).get("envFrom", []):
        name = source["configMapRef"]["name"]
        env.update(next(o for o in every(objects, "ConfigMap") if o["metadata"]["name"] == name)["data"])
    return env


# Settings naming files that exist only inside the pod.
FILE_SETTINGS = {
    "TRACKBRIDGE_SOURCES",
    "TRACKBRIDGE_SSL_CAFILE",
    "TRACKBRIDGE_SSL_CERTFILE",
    "TRACKBRIDGE_SSL_KEYFILE",
}


def settings(objects: Objects) -> Any:
    """The worker's settings from the rendered ConfigMap, as the worker itself reads them."""
    from worker.config.settings import load_settings

    env = {k: v for k, v in environment(objects).items() if k not in FILE_SETTINGS}
    loaded, _ = load_settings(environ=env | {"TRACKBRIDGE_SASL_PASSWORD": "from-the-secret"})
    return loaded
