"""Running the `trackbridge` command as a user does: a child process, its exit status and output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from worker.config.settings import ENV_PREFIX

ROOT = Path(__file__).resolve().parents[3]

Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def trackbridge() -> Run:
    """Run `trackbridge ARGS` with `stdin`, in an environment without TRACKBRIDGE_* variables
    except `env`, and with Python's warnings on (an unclosed Kafka client would say so)."""

    def run(
        *args: str | Path, stdin: bytes = b"", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        environ = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
        environ.update(env or {}, PYTHONWARNINGS="default")
        return subprocess.run(
            [sys.executable, "-m", "worker.cli.main", *map(str, args)],
            input=stdin,
            capture_output=True,
            cwd=ROOT,
            env=environ,
            timeout=120,
            check=False,
        )

    return run
