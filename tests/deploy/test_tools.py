"""tests/deploy/tools.py: a tool that cannot be had fails the run under CI and skips elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import tools


@pytest.fixture
def missing_tool(monkeypatch: pytest.MonkeyPatch) -> str:
    name = "trackbridge-no-such-tool"
    monkeypatch.setitem(tools.TOOLS, name, tools.Tool(name, ()))
    monkeypatch.setattr(tools, "_problems", {})
    return name


def test_a_missing_tool_fails_the_test_under_ci(monkeypatch: pytest.MonkeyPatch, missing_tool: str) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"{missing_tool} is unavailable"):
        tools.require(missing_tool)


def test_a_missing_tool_skips_the_test_elsewhere(monkeypatch: pytest.MonkeyPatch, missing_tool: str) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Debian package"):
        tools.require(missing_tool)


def test_a_tool_on_path_is_found_without_installing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tools.TOOLS, "sh", tools.Tool("sh", ("no-such-package",)))
    assert tools.require("sh").endswith("/sh")


def test_a_kubectl_with_an_old_kustomize_is_unusable(tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text('#!/bin/sh\necho "Client Version: v1.20.2"\n')
    fake.chmod(0o755)
    check = tools.TOOLS["kubectl"].check
    assert check is not None
    assert "older than v4" in (check(str(fake)) or "")
