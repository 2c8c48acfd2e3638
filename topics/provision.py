"""Make the broker match the topic catalog (`trackbridge topics create`) and compare them (`... list`).

Creation is idempotent: an existing topic is left alone (its partitions are reported if they
differ from the catalog; Kafka cannot shrink a topic, and growing one would move keys between
partitions, breaking per-person order, so that stays a human decision).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

from topics.catalog import Catalog, TopicSpec

_TOPIC_ALREADY_EXISTS: Final = 36
ADMIN_TIMEOUT_MS: Final = 30_000


class ProvisionError(Exception):
    """The broker refused to create a topic, or could not be reached."""


class Status(enum.StrEnum):
    CREATED = "created"
    EXISTS = "exists"
    MISSING = "missing"
    PARTITIONS_DIFFER = "partitions differ"


class TopicState(msgspec.Struct, frozen=True):
    """One catalog topic as found on the broker."""

    spec: TopicSpec
    status: Status
    partitions: int | None
    """Partitions on the broker; None when the topic does not exist."""


class Broker(msgspec.Struct, frozen=True):
    """Where the topics live: the bootstrap servers and the aiokafka client keyword arguments that
    secure the connection (security protocol, TLS context, SASL)."""

    servers: tuple[str, ...]
    options: Mapping[str, Any] = {}


def admin_client(broker: Broker) -> Any:
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(
        bootstrap_servers=list(broker.servers),
        client_id="trackbridge-admin",
        request_timeout_ms=ADMIN_TIMEOUT_MS,
        **broker.options,
    )


async def broker_partitions(admin: Any) -> dict[str, int]:
    """Partition count of every topic on the broker (one metadata request for all topics, which
    never auto-creates a topic, unlike a request naming it)."""
    described = await admin.describe_topics(None)
    return {topic["topic"]: len(topic["partitions"]) for topic in described if not topic["error_code"]}


def compare(catalog: Catalog, existing: dict[str, int]) -> list[TopicState]:
    states = []
    for spec in catalog.topics:
        partitions = existing.get(spec.name)
        if partitions is None:
            status = Status.MISSING
        elif partitions != spec.partitions:
            status = Status.PARTITIONS_DIFFER
        else:
            status = Status.EXISTS
        states.append(TopicState(spec, status, partitions))
    return states


async def inspect(broker: Broker, catalog: Catalog) -> list[TopicState]:
    """The catalog compared with the broker."""
    admin = admin_client(broker)
    try:
        await admin.start()
        return compare(catalog, await broker_partitions(admin))
    except ProvisionError:
        raise
    except Exception as error:
        raise _failure("list topics", broker, error) from error
    finally:
        await admin.close()


async def create(broker: Broker, catalog: Catalog) -> list[TopicState]:
    """Create every missing catalog topic; return each topic's state afterwards."""
    from aiokafka.admin import NewTopic

    admin = admin_client(broker)
    try:
        await admin.start()
        states = compare(catalog, await broker_partitions(admin))
        missing = [state.spec for state in states if state.status is Status.MISSING]
        created: set[str] = set()
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config())
                    for s in missing
                ],
                timeout_ms=ADMIN_TIMEOUT_MS,
            )
            problems = []
            for topic, code, message in _topic_errors(response):
                if code == 0:
                    created.add(topic)
                elif code != _TOPIC_ALREADY_EXISTS:
                    problems.append(f"{topic}: error {code} ({message or 'no message'})")
            if problems:
                raise ProvisionError("the broker refused to create " + "; ".join(problems))
            states = compare(catalog, await broker_partitions(admin))
        return [
            msgspec.structs.replace(state, status=Status.CREATED) if state.spec.name in created else state
            for state in states
        ]
    except ProvisionError:
        raise
    except Exception as error:
        raise _failure("create topics", broker, error) from error
    finally:
        await admin.close()


def _failure(action: str, broker: Broker, error: Exception) -> ProvisionError:
    from aiokafka.errors import KafkaConnectionError

    servers = ",".join(broker.servers)
    if isinstance(error, KafkaConnectionError):
        return ProvisionError(f"cannot reach the Kafka brokers at {servers}")
    return ProvisionError(f"cannot {action} on {servers}: {error!r}")


def _topic_errors(response: Any) -> Sequence[tuple[str, int, str | None]]:
    errors = []
    for entry in response.topic_errors:
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        errors.append((topic, code, message))
    return errors


def format_table(states: Sequence[TopicState]) -> str:
    """A fixed-width table: topic, role, partitions in the catalog and on the broker, status."""
    rows = [("TOPIC", "ROLE", "PARTITIONS", "ON BROKER", "RETENTION", "STATUS")]
    for state in states:
        spec = state.spec
        rows.append(
            (
                spec.name,
                spec.role.value if spec.destination is None else f"{spec.role.value}:{spec.destination}",
                str(spec.partitions),
                "-" if state.partitions is None else str(state.partitions),
                f"{spec.retention_ms // 86_400_000}d",
                state.status.value,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
