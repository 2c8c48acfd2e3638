"""Fixtures of the deploy checks: the external tools (found or installed once per session) and the
rendered kustomizations."""

from __future__ import annotations

import pytest
import tools
from k8s_objects import K8S, KUSTOMIZATIONS, OVERLAYS, Objects, kid, render


@pytest.fixture(scope="session")
def promtool() -> str:
    return tools.require("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return tools.require("prometheus")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return tools.require("kubectl")


@pytest.fixture(params=KUSTOMIZATIONS, ids=kid)
def rendered(request: pytest.FixtureRequest, kubectl: str) -> Objects:
    """Every kustomization: the base, each overlay, the Grafana ConfigMap."""
    return render(kubectl, request.param)


@pytest.fixture(params=[K8S / "base", *OVERLAYS], ids=kid)
def worker_render(request: pytest.FixtureRequest, kubectl: str) -> Objects:
    """The kustomizations that deploy the worker: the base and each overlay."""
    return render(kubectl, request.param)


@pytest.fixture(params=OVERLAYS, ids=kid)
def overlay_render(request: pytest.FixtureRequest, kubectl: str) -> Objects:
    """Each overlay: a complete deployment."""
    return render(kubectl, request.param)
