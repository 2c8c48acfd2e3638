"""The topic catalog: every topic trackbridge reads or writes, declared once.

The raw input topic, one topic per destination of the sources file, the dead-letter topic and
the skip topic, each with its partitions, replication factor, retention and cleanup policy.
`build_catalog` takes plain values: the names as they are on the broker (prefix included) and
the sizes. The worker turns its settings and sources file into them (`worker/topology.py`).
"""

from __future__ import annotations

import enum
from typing import Final

import msgspec

DAY_MS: Final = 24 * 60 * 60 * 1000

# Retention per role. Input and outputs: a week, enough to replay a bad deploy. Dead letters: a
# month, because they are redriven by hand after a fix. Skips: a week; they are for audits only.
RETENTION_MS: Final = {
    "input": 7 * DAY_MS,
    "destination": 7 * DAY_MS,
    "dead_letter": 30 * DAY_MS,
    "skip": 7 * DAY_MS,
}


# The largest record the worker produces. A dead letter carries its whole input envelope (plus
# base64 when the input was not UTF-8), so it can be larger than any input the input topic took:
# the topics the worker writes accept records up to this size, and its producer sends them.
MAX_RECORD_BYTES: Final = 4 * 1024 * 1024
OUTPUT_MAX_MESSAGE_BYTES: Final = MAX_RECORD_BYTES + 64 * 1024  # record batch overhead

# The largest envelope the input topic takes: far above any Track API request (a v2 batch body is
# at most 500 KB), and small enough that its dead letter can carry it sealed whole.
INPUT_MAX_RECORD_BYTES: Final = 1024 * 1024
INPUT_MAX_MESSAGE_BYTES: Final = INPUT_MAX_RECORD_BYTES + 64 * 1024


class CatalogError(Exception):
    """The settings and the sources file name one topic for two jobs."""


class Role(enum.StrEnum):
    INPUT = "input"
    DESTINATION = "destination"
    DEAD_LETTER = "dead_letter"
    SKIP = "skip"


class TopicSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One topic as it should exist on the broker."""

    name: str
    role: Role
    partitions: int
    replication_factor: int
    retention_ms: int
    cleanup_policy: str = "delete"
    max_message_bytes: int | None = None
    """`max.message.bytes`, when the broker's default is not enough."""
    destination: str | None = None
    """The destination name, for a destination topic."""

    def config(self) -> dict[str, str]:
        """The topic-level configs to create it with."""
        config = {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}
        if self.max_message_bytes is not None:
            config["max.message.bytes"] = str(self.max_message_bytes)
        return config


class Catalog(msgspec.Struct, frozen=True):
    topics: tuple[TopicSpec, ...]

    @property
    def names(self) -> list[str]:
        return [topic.name for topic in self.topics]

    def by_role(self, role: Role) -> list[TopicSpec]:
        return [topic for topic in self.topics if topic.role is role]

    @property
    def input(self) -> TopicSpec:
        return self.by_role(Role.INPUT)[0]


class Outputs(msgspec.Struct, frozen=True, kw_only=True):
    """The topics the worker writes, named as on the broker: one per destination (by destination
    name), the dead-letter topic and the skip topic."""

    destinations: dict[str, str]
    dead_letter: str
    skip: str


class Sizing(msgspec.Struct, frozen=True, kw_only=True):
    """How big the topics are made."""

    input_partitions: int
    output_partitions: int
    replication_factor: int


def build_catalog(input_topic: str, outputs: Outputs | None, sizing: Sizing) -> Catalog:
    """Every topic: the input, then (with `outputs`) each destination, the dead letters and skips.

    Raises `CatalogError` when one topic is named for two jobs.
    """
    replication = sizing.replication_factor
    topics = [
        TopicSpec(
            name=input_topic,
            role=Role.INPUT,
            partitions=sizing.input_partitions,
            replication_factor=replication,
            retention_ms=RETENTION_MS["input"],
            max_message_bytes=INPUT_MAX_MESSAGE_BYTES,
        )
    ]
    if outputs is not None:

        def output(name: str, role: Role, destination: str | None = None) -> TopicSpec:
            return TopicSpec(
                name=name,
                role=role,
                partitions=sizing.output_partitions,
                replication_factor=replication,
                retention_ms=RETENTION_MS[role.value],
                max_message_bytes=OUTPUT_MAX_MESSAGE_BYTES,
                destination=destination,
            )

        topics.extend(
            output(topic, Role.DESTINATION, name) for name, topic in sorted(outputs.destinations.items())
        )
        topics.append(output(outputs.dead_letter, Role.DEAD_LETTER))
        topics.append(output(outputs.skip, Role.SKIP))
    seen: dict[str, Role] = {}
    for topic in topics:
        if topic.name in seen:
            raise CatalogError(
                f"topic {topic.name!r} is both the {seen[topic.name].value} and a {topic.role.value} topic; "
                "the worker would read its own output"
            )
        seen[topic.name] = topic.role
    return Catalog(tuple(topics))
