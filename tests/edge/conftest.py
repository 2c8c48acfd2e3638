"""Fixtures of the edge tests: `edge_factory` starts `trackbridge edge` subprocesses; `tls_files`
is a throwaway self-signed certificate for 127.0.0.1 (the Python client speaks HTTPS only)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kafka_helpers import start_edge
from worker.config.settings import Settings
from worker.local.process import EdgeProcess


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("edge-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def edge_factory(kafka_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., EdgeProcess]]:
    """`edge_factory(settings=None, wait=True, tls=None, **env)` starts an edge subprocess on a
    free port; all are stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[EdgeProcess] = []

    def start(settings: Settings | None = None, **kwargs: Any) -> EdgeProcess:
        edge = start_edge(settings or kafka_settings, tmp_path / f"edge-{len(started)}.log", **kwargs)
        started.append(edge)
        return edge

    yield start
    for edge in started:
        edge.stop(timeout=30)
