"""`trackbridge topics create|list` against the embedded broker: idempotent creation, honest listing."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from topics.provision import Status, create, inspect
from worker.cli import main as cli
from worker.config.settings import Settings, to_environ
from worker.config.sources import SourcesConfig
from worker.topology import broker
from worker.topology import catalog as build_catalog

pytestmark = pytest.mark.integration


def test_create_is_idempotent_and_list_tells_what_differs(
    kafka_settings: Settings, sources: SourcesConfig
) -> None:
    catalog = build_catalog(kafka_settings, sources)
    assert {state.status for state in asyncio.run(inspect(broker(kafka_settings), catalog))} == {
        Status.MISSING
    }

    # One topic already exists with other partitions: left alone, and reported.
    dead_letter = catalog.topics[-2]
    odd = msgspec.structs.replace(catalog, topics=(msgspec.structs.replace(dead_letter, partitions=2),))
    asyncio.run(create(broker(kafka_settings), odd))

    first = {state.spec.name: state for state in asyncio.run(create(broker(kafka_settings), catalog))}
    assert first[dead_letter.name].status is Status.PARTITIONS_DIFFER
    assert first[dead_letter.name].partitions == 2
    assert {state.status for name, state in first.items() if name != dead_letter.name} == {Status.CREATED}

    again = asyncio.run(create(broker(kafka_settings), catalog))
    assert {state.spec.name: state.status for state in again} == {
        name: (Status.PARTITIONS_DIFFER if name == dead_letter.name else Status.EXISTS) for name in first
    }
    listed = {
        state.spec.name: (state.status, state.partitions)
        for state in asyncio.run(inspect(broker(kafka_settings), catalog))
    }
    assert listed[catalog.input.name] == (Status.EXISTS, catalog.input.partitions)


def test_topics_commands(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in to_environ(kafka_settings).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["topics", "list"]) == 1
    assert "missing" in capsys.readouterr().out
    assert cli.main(["topics", "create"]) == 0
    out = capsys.readouterr().out
    assert "created" in out and kafka_settings.raw_topic in out
    assert cli.main(["topics", "list"]) == 0
    out = capsys.readouterr().out
    assert "missing" not in out and "exists" in out
