"""topics/strimzi.py: the catalog as Strimzi KafkaTopic resources."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from topics.catalog import Catalog, Role, TopicSpec
from topics.strimzi import API_VERSION, render, resource_name


def spec(name: str, role: Role = Role.DESTINATION, destination: str | None = "analytics") -> TopicSpec:
    return TopicSpec(
        name=name,
        role=role,
        partitions=6,
        replication_factor=3,
        retention_ms=604800000,
        destination=destination,
    )


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_one_kafka_topic_per_catalog_entry_with_its_partitions_replicas_and_configs() -> None:
    catalog = Catalog((spec("journeys.track.raw", Role.INPUT, None), spec("dp.out.analytics")))
    docs = documents(render(catalog, cluster="journeys"))
    assert [d["metadata"]["name"] for d in docs] == ["journeys.track.raw", "dp.out.analytics"]
    for doc, topic in zip(docs, catalog.topics, strict=True):
        assert doc["apiVersion"] == API_VERSION
        assert doc["kind"] == "KafkaTopic"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "journeys"
        assert doc["spec"] == {  # the topic name is the resource name: no topicName
            "partitions": topic.partitions,
            "replicas": topic.replication_factor,
            "config": topic.config(),
        }
    assert docs[0]["metadata"]["annotations"] == {"trackbridge/role": "input"}
    assert docs[1]["metadata"]["annotations"] == {
        "trackbridge/role": "destination",
        "trackbridge/destination": "analytics",
    }


@pytest.mark.parametrize("name", ["Dp_Out_Analytics", "X" * 249, "_leading", "a..b_"])
def test_a_topic_name_kubernetes_refuses_gets_a_safe_resource_name_and_topic_name(name: str) -> None:
    (doc,) = documents(render(Catalog((spec(name),)), cluster="c"))
    resource = doc["metadata"]["name"]
    assert resource == resource_name(name) != name
    assert len(resource) <= 253
    assert resource == resource.lower() and "_" not in resource
    assert doc["spec"]["topicName"] == name


def test_names_that_differ_only_in_case_get_different_resources() -> None:
    assert resource_name("Events") != resource_name("events") == "events"


def test_values_that_look_like_other_yaml_types_stay_strings() -> None:
    catalog = Catalog((spec("yes", destination="null"),))
    (doc,) = documents(render(catalog, cluster="true", namespace="on"))
    assert doc["metadata"]["name"] == "yes"
    assert doc["metadata"]["namespace"] == "on"
    assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "true"
    assert doc["metadata"]["annotations"]["trackbridge/destination"] == "null"
    assert all(isinstance(v, str) for v in doc["spec"]["config"].values())


def test_a_cluster_name_is_required() -> None:
    with pytest.raises(ValueError, match="cluster"):
        render(Catalog(()), cluster="")
