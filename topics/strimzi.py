"""The topic catalog as Strimzi `KafkaTopic` resources, for clusters whose topics the operator owns.

`render(catalog, cluster=...)` returns a multi-document YAML stream with one `KafkaTopic` per
catalog entry, ready for `kubectl apply -f -` or a kustomize overlay. The Strimzi Topic Operator
then creates each topic with the catalog's partitions, replication factor and configs, exactly
as `trackbridge topics create` would.

It is the one path to the YAML: `trackbridge topics render --strimzi` prints it and deploy/gen.py
writes it to each overlay's kafkatopics.yaml (both through `worker.topology.catalog`), so the two
cannot differ.

The YAML is written by hand (no YAML library at run time): every string value is emitted as a
JSON string, which is also a valid double-quoted YAML scalar, so no name or config can change
meaning on the way.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Final

from topics.catalog import Catalog, TopicSpec

# Strimzi 0.49 introduced `v1` for every custom resource and Strimzi 1.0 serves only `v1`;
# Strimzi 0.22 - 0.51 serve `kafka.strimzi.io/v1beta2`, whose KafkaTopic has the same fields.
API_VERSION: Final = "kafka.strimzi.io/v1"
CLUSTER_LABEL: Final = "strimzi.io/cluster"

# A Kubernetes resource name (RFC 1123 subdomain): what `metadata.name` may be.
_RESOURCE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_RESOURCE_NAME_MAX = 253
_PLAIN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def resource_name(topic: str) -> str:
    """The `metadata.name` for a topic: the topic name itself when Kubernetes accepts it.

    Otherwise (upper case, `_`, too long) a lower-cased, dash-separated form with a short hash
    of the real name, so two topics never share a resource; `spec.topicName` then carries the
    real name, as Strimzi recommends.
    """
    if len(topic) <= _RESOURCE_NAME_MAX and _RESOURCE_NAME.fullmatch(topic):
        return topic
    digest = hashlib.sha256(topic.encode()).hexdigest()[:10]
    base = re.sub(r"[^a-z0-9.-]+", "-", topic.lower()).strip("-.")[:200].strip("-.")
    return f"{base}---{digest}" if base else f"topic---{digest}"


def render(
    catalog: Catalog,
    *,
    cluster: str,
    namespace: str | None = None,
    api_version: str = API_VERSION,
) -> str:
    """One `KafkaTopic` document per catalog topic, labelled for the Strimzi cluster `cluster`."""
    if not cluster:
        raise ValueError("the Strimzi cluster name must not be empty")
    documents = ["\n".join(_kafka_topic(topic, cluster, namespace, api_version)) for topic in catalog.topics]
    return "".join(f"---\n{document}\n" for document in documents)


def _kafka_topic(topic: TopicSpec, cluster: str, namespace: str | None, api_version: str) -> Iterator[str]:
    name = resource_name(topic.name)
    yield f"apiVersion: {api_version}"
    yield "kind: KafkaTopic"
    yield "metadata:"
    yield f"  name: {_string(name)}"
    if namespace:
        yield f"  namespace: {_string(namespace)}"
    yield "  labels:"
    yield from _mapping({CLUSTER_LABEL: cluster, "app.kubernetes.io/part-of": "trackbridge"}, indent=4)
    yield "  annotations:"
    annotations = {"trackbridge/role": topic.role.value}
    if topic.destination is not None:
        annotations["trackbridge/destination"] = topic.destination
    yield from _mapping(annotations, indent=4)
    yield "spec:"
    if name != topic.name:
        yield f"  topicName: {_string(topic.name)}"
    yield f"  partitions: {topic.partitions:d}"
    yield f"  replicas: {topic.replication_factor:d}"
    yield "  config:"
    yield from _mapping(topic.config(), indent=4)


def _mapping(values: Mapping[str, str], *, indent: int) -> Iterator[str]:
    pad = " " * indent
    for key, value in sorted(values.items()):
        yield f"{pad}{_key(key)}: {_string(value)}"


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else _string(key)


def _string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)
