"""The topic catalog of one deployment (worker/topology.py): every topic once, prefixed, with its
partitions, retention and cleanup policy."""

from __future__ import annotations

import pytest

from topics.catalog import (
    DAY_MS,
    INPUT_MAX_MESSAGE_BYTES,
    OUTPUT_MAX_MESSAGE_BYTES,
    CatalogError,
    Role,
)
from worker.config.settings import load_settings
from worker.config.sources import parse_sources
from worker.topology import catalog as build_catalog

SOURCES = parse_sources(
    """
dead_letter_topic = "journeys.dlq"
[destinations.warehouse]
topic = "dp.out.warehouse"
[destinations.analytics]
topic = "dp.out.analytics"
[[sources]]
name = "web-prod"
site_id = "site_prod_1"
api_key_sha256 = "a0693410cc39535f7059c0d21931e776f3923473e2f2761ab585b94071b21625"
destinations = ["analytics", "warehouse"]
"""
)


def test_the_catalog_lists_input_destinations_dead_letter_and_skip() -> None:
    settings, _ = load_settings(
        environ={"TRACKBRIDGE_INPUT_PARTITIONS": "8", "TRACKBRIDGE_OUTPUT_PARTITIONS": "6"}
    )
    catalog = build_catalog(settings, SOURCES)
    assert [(t.name, t.role, t.destination) for t in catalog.topics] == [
        ("journeys.track.raw", Role.INPUT, None),
        ("dp.out.analytics", Role.DESTINATION, "analytics"),
        ("dp.out.warehouse", Role.DESTINATION, "warehouse"),
        ("journeys.dlq", Role.DEAD_LETTER, None),
        ("journeys.skipped", Role.SKIP, None),
    ]
    assert catalog.input.partitions == 8
    assert {t.partitions for t in catalog.topics if t.role is not Role.INPUT} == {6}
    assert {t.replication_factor for t in catalog.topics} == {3}
    assert catalog.by_role(Role.DEAD_LETTER)[0].retention_ms == 30 * DAY_MS
    assert catalog.input.config() == {
        "retention.ms": str(7 * DAY_MS),
        "cleanup.policy": "delete",
        "max.message.bytes": str(INPUT_MAX_MESSAGE_BYTES),
    }
    # Dead letters carry their whole envelope: output topics take records larger than any input.
    assert catalog.by_role(Role.DEAD_LETTER)[0].config()["max.message.bytes"] == str(OUTPUT_MAX_MESSAGE_BYTES)


def test_the_prefix_goes_on_every_topic_including_the_sources_file_ones() -> None:
    settings, _ = load_settings(environ={"TRACKBRIDGE_TOPIC_PREFIX": "staging."})
    catalog = build_catalog(settings, SOURCES)
    assert all(name.startswith("staging.") for name in catalog.names)
    prefixed = SOURCES.with_prefix("staging.")
    assert prefixed.dead_letter_topic == "staging.journeys.dlq"
    assert prefixed.skip_topic == "staging.journeys.skipped"
    assert prefixed.destinations["analytics"].topic == "staging.dp.out.analytics"
    assert SOURCES.with_prefix("") is SOURCES


def test_without_a_sources_file_only_the_input_is_known() -> None:
    settings, _ = load_settings(environ={})
    assert build_catalog(settings, None).names == ["journeys.track.raw"]


def test_the_input_topic_cannot_be_an_output_topic() -> None:
    settings, _ = load_settings(environ={"TRACKBRIDGE_INPUT_TOPIC": "journeys.dlq"})
    with pytest.raises(CatalogError, match="read its own output"):
        build_catalog(settings, SOURCES)
