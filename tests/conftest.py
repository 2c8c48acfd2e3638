"""Shared fixtures: a real Kafka-compatible broker and factories, quixstreams style.

* `broker` -- one embedded Tansu broker for the session (memory only, free loopback port);
* `topic_prefix` -- a prefix unique to the test, so tests share the broker without sharing topics;
* `kafka_settings` -- worker Settings pointing at the broker with the test's prefix and group;
* `topic_factory` -- creates the topic catalog (or single topics) on the broker;
* `worker_factory` -- starts `trackbridge worker` subprocesses; every one is stopped at teardown;
* `produce` / `consume` -- write records to a topic, read a topic back.

Tests that use the broker are marked `integration`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.kafka_helpers import (
    TEST_CONFIG,
    Consume,
    Produce,
    consume_records,
    produce_records,
    settings_for,
    sources_toml,
    start_worker,
)
from topics.catalog import Catalog
from worker import topology
from worker.config.settings import Settings
from worker.config.sources import SourcesConfig, load_sources
from worker.local.embedded import EmbeddedBroker
from worker.local.process import WorkerProcess

_COUNTER = itertools.count()


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The session's embedded broker."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    return f"t{next(_COUNTER)}-{os.getpid()}-{name}."


@pytest.fixture(scope="session")
def sources_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The spec's test sources (tests/mapping/vectors/test_config.json) as a TOML sources file."""
    config = json.loads(TEST_CONFIG.read_text())
    path = tmp_path_factory.mktemp("sources") / "sources.toml"
    path.write_text(sources_toml(config))
    return path


@pytest.fixture
def kafka_settings(broker: EmbeddedBroker, topic_prefix: str, sources_file: Path) -> Settings:
    """Worker settings for the session broker, this test's topic prefix and consumer group."""
    return settings_for(broker.bootstrap, topic_prefix, sources_file)


@pytest.fixture
def sources(kafka_settings: Settings) -> SourcesConfig:
    assert kafka_settings.sources is not None
    return load_sources(kafka_settings.sources)


@pytest.fixture
def topic_factory(kafka_settings: Settings, sources: SourcesConfig) -> Callable[..., Catalog]:
    """`topic_factory(settings=None, sources=None)` creates the catalog's topics and returns it."""

    def make(settings: Settings | None = None, config: SourcesConfig | None = None) -> Catalog:
        settings = settings or kafka_settings
        catalog = topology.catalog(settings, config or sources)
        asyncio.run(topology.create_topics(settings, catalog))
        return catalog

    return make


@pytest.fixture
def worker_factory(kafka_settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """`worker_factory(settings=None, wait=True, **env)` starts a worker subprocess.

    Each gets a free web port and a log file under the test's tmp_path; all are stopped (SIGTERM,
    then SIGKILL) at teardown.
    """
    started: list[WorkerProcess] = []

    def start(settings: Settings | None = None, *, wait: bool = True, **environ: str) -> WorkerProcess:
        worker = start_worker(
            settings or kafka_settings, tmp_path / f"worker-{len(started)}.log", wait=wait, **environ
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)


@pytest.fixture
def produce(kafka_settings: Settings) -> Produce:
    """`produce(topic, values, keys=None, headers=None, **producer_options)`: write records, wait
    for their acknowledgements, and return each one's (partition, offset)."""

    def run(
        topic: str, values: Sequence[bytes], keys: Sequence[bytes | None] | None = None, **options: Any
    ) -> list[tuple[int, int]]:
        return produce_records(kafka_settings, topic, values, keys, **options)

    return run


@pytest.fixture
def consume(kafka_settings: Settings) -> Consume:
    """`consume(topic, until=None, timeout=10)`: every record of `topic` from the beginning.

    Reads until `until(records)` holds at a moment when no more records are arriving, or until
    `timeout` seconds; without `until`, until the topic is idle.
    """

    def run(topic: str, until: Callable[[list[Any]], bool] | None = None, timeout: float = 10.0) -> list[Any]:
        return consume_records(kafka_settings, topic, until, timeout)

    return run
