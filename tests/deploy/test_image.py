"""deploy/Dockerfile built for real with podman, and the container run against the embedded broker.

No registry is reachable here, so the base is the offline one deploy/image.py makes from Debian's
packages (mmdebstrap + `podman import`), passed as the Dockerfile's PYTHON_IMAGE build argument;
the Dockerfile itself is unchanged. The container then runs as production runs it: its own entry
point, settings from the environment, the sources file mounted read-only, a read-only root file
system with a tmpfs on /tmp. It must process envelopes, run as uid 10001, log JSON lines, and on
SIGTERM finish, commit and exit 0.

The tools are Debian packages (podman, mmdebstrap, runc), installed like promtool (tools.py). If
podman is there but this machine cannot run a container at all, the run tests skip with podman's
own error (and fail under CI); the build test still runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import tools
from promql_refs import REPO

from tests.kafka_helpers import (
    RecordId,
    committed_offsets,
    credentials_in,
    envelope_stream,
    expected_records,
    headers_of,
    produce_records,
    record_id,
    stored_bytes,
)
from topics.catalog import Catalog, Role
from worker.config.settings import Settings, to_environ
from worker.local.embedded import free_port

pytestmark = pytest.mark.integration

SOURCES_IN_CONTAINER = "/etc/trackbridge/sources/sources.toml"
# What the image may weigh at most (it is about 236 MB on the offline Debian base).
MAX_IMAGE_BYTES = 400 * 1000 * 1000


def _load_image_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trackbridge_deploy_image", REPO / "deploy/image.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


image_py = _load_image_module()


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The image, built from deploy/Dockerfile on the offline base; removed afterwards."""
    for tool in image_py.TOOLS:
        tools.require(tool)
    tag = f"localhost/trackbridge:test-{os.getpid()}"
    try:
        image_py.build(tag)
    except image_py.ImageError as error:
        pytest.fail(str(error), pytrace=False)
    yield tag
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)


@pytest.fixture(scope="module")
def can_run(image: str) -> None:
    """Skip (fail under CI) the run tests when this machine cannot run any container."""
    result = subprocess.run(
        [
            "podman",
            "run",
            "--rm",
            *image_py.runtime_options(),
            "--network",
            "host",
            "--entrypoint",
            "true",
            image,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        message = f"this machine cannot run a container: `podman run` said: {result.stderr.strip()}"
        if tools.in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def test_the_image_builds_from_the_dockerfile_and_stays_small(image: str) -> None:
    config: Any = image_py.inspect(image)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["trackbridge", "worker"]
    assert "TRACKBRIDGE_LOG_FORMAT=json" in config["Env"]
    assert image_py.inspect(image).get("Healthcheck"), "the Docker format keeps the HEALTHCHECK"
    size = image_py.size(image)
    print(f"\n{image}: {size / 1e6:.0f} MB")
    assert size < MAX_IMAGE_BYTES


def test_the_dockerfile_default_base_is_the_public_python_image() -> None:
    text = (REPO / "deploy/Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.11.12-slim-bookworm" in text
    assert image_py.base_image().startswith("localhost/trackbridge-base:")


def _read_outputs(consume: Callable[..., list[Any]], catalog: Catalog, want: set[RecordId]) -> set[RecordId]:
    """The ids of the records on the output topics, once every one of `want` is there (or 60 s)."""
    found: set[RecordId] = set()
    deadline = time.monotonic() + 60
    for spec in catalog.topics:
        if spec.role is Role.INPUT:
            continue
        topic = spec.name
        wanted = {rid for rid in want if rid[0] == topic}

        def complete(records: list[Any], topic: str = topic, wanted: set[RecordId] = wanted) -> bool:
            return wanted <= {record_id(topic, headers_of(r), r.value) for r in records}

        for record in consume(topic, until=complete, timeout=max(1.0, deadline - time.monotonic())):
            found.add(record_id(topic, headers_of(record), record.value))
    return found


class Container:
    def __init__(self, container_id: str, web_port: int) -> None:
        self.id = container_id
        self.web_port = web_port

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError:
            return 0, b""

    def podman(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)

    def state(self) -> dict[str, Any]:
        result = self.podman("inspect", self.id)
        data: dict[str, Any] = json.loads(result.stdout)[0]
        return data

    def logs(self) -> str:
        result = self.podman("logs", self.id)
        return result.stdout + result.stderr


@pytest.fixture
def container(
    image: str, can_run: None, kafka_settings: Settings, sources_file: Path
) -> Iterator[Callable[[], Container]]:
    started: list[Container] = []

    def start() -> Container:
        web_port = free_port()
        environ = to_environ(kafka_settings) | {
            "TRACKBRIDGE_WEB_PORT": str(web_port),
            "TRACKBRIDGE_SOURCES": SOURCES_IN_CONTAINER,
        }
        del environ["TRACKBRIDGE_LOG_FORMAT"]  # the image's own default: json
        command = [
            "podman", "run", "--detach", *image_py.runtime_options(),
            "--network", "host",
            "--read-only", "--tmpfs", "/tmp:rw,size=64m",
            "--volume", f"{sources_file}:{SOURCES_IN_CONTAINER}:ro",
        ]  # fmt: skip
        for name, value in environ.items():
            command += ["--env", f"{name}={value}"]
        result = subprocess.run([*command, image], capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        started.append(Container(result.stdout.strip(), web_port))
        return started[-1]

    yield start
    for running in started:
        running.podman("rm", "--force", "--time", "0", running.id)


def test_the_container_processes_envelopes_as_non_root_on_a_read_only_root_and_drains_on_sigterm(
    container: Callable[[], Container],
    kafka_settings: Settings,
    topic_factory: Callable[..., Catalog],
    consume: Callable[..., list[Any]],
) -> None:
    catalog = topic_factory()
    values = envelope_stream(300, "image", poison_every=97)
    expected = expected_records(kafka_settings, values)
    worker = container()
    deadline = time.monotonic() + 90
    while worker.get("/readyz")[0] != 200:
        assert time.monotonic() < deadline, f"the container never got ready:\n{worker.logs()[-3000:]}"
        assert worker.state()["State"]["Running"], f"the container exited:\n{worker.logs()[-3000:]}"
        time.sleep(0.5)

    produce_records(kafka_settings, kafka_settings.raw_topic, values)
    assert set(expected) <= _read_outputs(consume, catalog, set(expected)), (
        "the container did not produce every expected record"
    )

    state = worker.state()
    assert state["HostConfig"]["ReadonlyRootfs"] is True
    assert worker.podman("exec", worker.id, "id", "-u").stdout.strip() == "10001"
    write = worker.podman("exec", worker.id, "touch", "/opt/trackbridge/x")
    assert write.returncode != 0 and "Read-only file system" in write.stderr
    assert worker.podman("exec", worker.id, "touch", "/tmp/x").returncode == 0

    events = []
    for line in worker.logs().splitlines():  # JSON lines: every one parses
        try:
            events.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    assert any(event["message"].startswith("assigned") for event in events)
    outputs = [r for spec in catalog.topics if spec.role is not Role.INPUT for r in consume(spec.name)]
    assert not credentials_in(worker.logs().encode() + b"".join(stored_bytes(r) for r in outputs))

    stopped = worker.podman("stop", "--time", "40", worker.id, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    final = worker.state()["State"]
    assert final["ExitCode"] == 0, worker.logs()[-3000:]
    assert sum(committed_offsets(kafka_settings, kafka_settings.raw_topic).values()) == len(values)
