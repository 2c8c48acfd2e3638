"""`trackbridge send` and `trackbridge tail`: put envelopes on the raw topic, print a topic's records.

Both talk to Kafka with plain aiokafka clients configured by the same settings as the worker, and
close them whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import IO, Any, Final

import msgspec
from aiokafka.errors import KafkaError

from worker import clients
from worker.cli import jsonlines, options
from worker.cli.exits import FAILURE, OK, CommandError
from worker.config.settings import Settings

SEND_WINDOW: Final = 5_000
"""Records sent before waiting for their acknowledgements."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `send` and `tail`."""
    parser = subparsers.add_parser(
        "send",
        help="send envelopes (JSON lines) to the raw input topic",
        description="Produce each non-blank line of FILE (or stdin with -) as one record on the input "
        "topic, value verbatim. Keep one person's calls in one partition with --key-field.",
    )
    parser.add_argument("file", metavar="FILE", help="envelopes, one per line (- for stdin)")
    parser.add_argument(
        "--key-field",
        metavar="FIELD",
        help="use this top-level envelope field as the record key (default: no key)",
    )
    parser.set_defaults(func=_send)
    options.with_settings(parser, options.TOPICS)

    parser = subparsers.add_parser(
        "tail",
        help="print a topic's records (key, headers, value) as JSON lines",
        description="Print the records of TOPIC (its name on the broker, prefix included), every "
        "partition, one JSON line each: topic, partition, offset, key, headers, value.",
    )
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N records")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop when no record came for S seconds")
    parser.set_defaults(func=_tail)
    options.with_settings(parser, options.CONNECTION)


def _send(args: argparse.Namespace) -> int:
    settings = options.settings(args)
    options.require_brokers(settings)
    values = list(jsonlines.read_values(args.file))
    try:
        count = asyncio.run(send_lines(settings, values, key_field=args.key_field))
    except KafkaError as error:
        raise options.unreachable(settings, error) from None
    print(f"sent {count} envelope(s) to {settings.raw_topic}", file=sys.stderr)
    return OK


def _tail(args: argparse.Namespace) -> int:
    settings = options.settings(args)
    options.require_brokers(settings)
    try:
        asyncio.run(
            tail(
                settings,
                args.topic,
                from_beginning=args.from_beginning,
                max_records=args.max,
                timeout=args.timeout,
            )
        )
    except KafkaError as error:
        raise options.unreachable(settings, error) from None
    return OK


def record_key(line: bytes, key_field: str | None) -> bytes | None:
    """The record key: the envelope's top-level `key_field` as UTF-8 text, else None."""
    if key_field is None:
        return None
    try:
        envelope = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    if not isinstance(envelope, dict):
        return None
    value = envelope.get(key_field)
    if value is None:
        return None
    return (value if isinstance(value, str) else json.dumps(value)).encode()


async def send_lines(
    settings: Settings, lines: Iterable[bytes], *, key_field: str | None = None, topic: str | None = None
) -> int:
    """Produce each line as one record on the raw topic (or `topic`); return how many were acknowledged."""
    target = topic or settings.raw_topic
    client = clients.producer(settings, client_id="trackbridge-send")
    sent = 0
    try:
        await client.start()
        pending: list[Awaitable[Any]] = []
        for line in lines:
            pending.append(await client.send(target, line, key=record_key(line, key_field)))
            if len(pending) >= SEND_WINDOW:
                await asyncio.gather(*pending)
                sent += len(pending)
                pending = []
        await asyncio.gather(*pending)
        sent += len(pending)
    finally:
        await client.stop()
    return sent


def _text(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data.decode(errors="replace")


def format_record(record: Any) -> str:
    """One record as a JSON line: topic, partition, offset, key, headers, value (parsed when JSON)."""
    return json.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": None if record.key is None else record.key.decode(errors="replace"),
            "headers": {name: value.decode(errors="replace") for name, value in record.headers or ()},
            "value": _text(record.value),
        },
        ensure_ascii=False,
    )


async def tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    max_records: int | None = None,
    timeout: float | None = None,
    emit: Callable[[Any], None] | None = None,
    out: IO[str] | None = None,
) -> int:
    """Print (or `emit`) the records of `topic`, every partition, without joining a group.

    Stops after `max_records`, or once no record arrived for `timeout` seconds; otherwise runs
    until cancelled. Returns how many records were seen.
    """
    from aiokafka import TopicPartition

    stream = out or sys.stdout
    consumer = clients.consumer(settings, client_id="trackbridge-tail")
    seen = 0
    try:
        await consumer.start()
        if topic not in await consumer.topics():  # all-topics metadata: never auto-creates
            raise CommandError(f"topic {topic!r} does not exist", FAILURE)
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        assigned = [TopicPartition(topic, partition) for partition in partitions]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        last = time.monotonic()
        while max_records is None or seen < max_records:
            batches = await consumer.getmany(timeout_ms=200)
            records = [record for batch in batches.values() for record in batch]
            if not records:
                if timeout is not None and time.monotonic() - last >= timeout:
                    break
                continue
            last = time.monotonic()
            for record in records:
                if max_records is not None and seen >= max_records:
                    break
                seen += 1
                if emit is not None:
                    emit(record)
                else:
                    print(format_record(record), file=stream, flush=True)
    finally:
        await consumer.stop()
    return seen
