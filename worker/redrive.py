"""Bringing dead letters back: each selected dead-letter record's original envelope, sent again to the
input topic so the worker processes it exactly as the first time (same `request_id`, hence the
same messageIds: a destination that dedupes by messageId sees no duplicate).

`restore` rebuilds one envelope from a dead-letter record, or says why it cannot:
- the whole input sealed (`holds: input`): the input, byte for byte;
- a redacted envelope with its credentials sealed (`holds: credentials`): the envelope with them
  put back;
- a redacted envelope that had no credentials at all: the envelope as it is;
- anything else -- redacted without sealing, not kept in the clear and not sealed, a seal this
  process cannot open, a record sent back too often -- is refused with a `Refused` reason.

`Redrive` reads the dead-letter topic from where the same selection last stopped (a consumer
group of its own, named after the selection), sends what it selects with a
`cio-redrive-count` header one higher than the dead letter's, and commits its position only
once what it sent is acknowledged: a run killed half-way and started again skips nothing.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import time
from collections.abc import Callable
from typing import Any, Final

import msgspec

from worker import clients
from worker.config.settings import Settings
from worker.records import AUTHORIZATION, HEADER_REDRIVES, REDACTED, ProblemRecord, redrive_count
from worker.sealing import Refusal, Sealer

DEFAULT_LIMIT: Final = 3
"""How many times one input may be sent back before redrive refuses it (so nothing loops)."""
CHUNK: Final = 500
"""Records sent before waiting for their acknowledgements and committing the position."""

_RECORD: Final = msgspec.json.Decoder(ProblemRecord)
_OBJECT: Final = msgspec.json.Decoder(dict[str, Any])


class Refused(enum.StrEnum):
    """Why a selected dead letter is not sent back."""

    NOT_A_DEAD_LETTER = "not_a_dead_letter"
    """The record is not a trackbridge dead-letter record."""
    REDACTED = "redacted"
    """Its credentials were redacted and not sealed (no sealing key was configured)."""
    NOT_KEPT = "not_kept"
    """Its input was not kept (cut, or undecodable) and not sealed."""
    UNKNOWN_SEALING_KEY = "unknown_sealing_key"
    """Sealed with a key this run was not given."""
    TAMPERED = "tampered"
    """The seal does not open with its key: the record was altered."""
    REDRIVE_LIMIT = "redrive_limit"
    """Sent back `--max-redrives` times already."""


_FROM_SEAL: Final = {Refusal.UNKNOWN_KEY: Refused.UNKNOWN_SEALING_KEY, Refusal.TAMPERED: Refused.TAMPERED}


def restore(record: ProblemRecord, sealer: Sealer | None) -> bytes | Refused:
    """The original envelope of a dead letter (see the module's docstring), or why not."""
    sealed = record.sealed
    opened: bytes | None = None
    if sealed is not None:
        if sealer is None:
            return Refused.UNKNOWN_SEALING_KEY
        result = sealer.open(sealed)
        if isinstance(result, Refusal):
            return _FROM_SEAL[result]
        opened = result
        if sealed.holds == "input":
            return opened
    if bytes(record.envelope) == b"null":
        return Refused.NOT_KEPT
    envelope = _OBJECT.decode(record.envelope)
    redacted = [key for key in envelope if key.casefold() == AUTHORIZATION and envelope[key] == REDACTED]
    if opened is not None:
        envelope.update(_OBJECT.decode(opened))
    elif redacted:
        return Refused.REDACTED
    return msgspec.json.encode(envelope)


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """Which dead letters to send back; empty fields select everything."""

    reasons: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    request_ids: frozenset[str] = frozenset()
    since: str | None = None
    """`received_at` at or after this time (ISO-8601, as the records write it)."""
    until: str | None = None
    """`received_at` before this time."""

    def takes(self, record: ProblemRecord) -> bool:
        if self.reasons and record.reason.value not in self.reasons:
            return False
        if self.sources and (record.source or "") not in self.sources:
            return False
        if self.request_ids and (record.request_id or "") not in self.request_ids:
            return False
        if self.since is not None or self.until is not None:
            when = record.received_at
            if when is None:
                return False
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when >= self.until:
                return False
        return True

    def group(self, topic: str) -> str:
        """The consumer group that remembers how far this selection got on `topic`."""
        text = msgspec.json.encode(
            [
                topic,
                sorted(self.reasons),
                sorted(self.sources),
                sorted(self.request_ids),
                self.since,
                self.until,
            ]
        )
        return "trackbridge-redrive-" + hashlib.sha256(text).hexdigest()[:12]


class Summary(msgspec.Struct, kw_only=True):
    """What a run did, for the closing summary and `--json`."""

    dead_letter_topic: str
    input_topic: str
    group: str
    dry_run: bool
    total: int = 0
    """Records to read when the run began (end offsets minus the start position; an estimate)."""
    read: int = 0
    selected: int = 0
    sent: int = 0
    """Sent and acknowledged (on a dry run: that would be sent)."""
    by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    """Selected records, by dead-letter reason."""
    by_source: dict[str, int] = msgspec.field(default_factory=dict)
    """Selected records, by source (`unknown` when the record names none)."""
    refused: dict[str, int] = msgspec.field(default_factory=dict)
    """Selected records not sent, by `Refused` reason."""


class Redrive:
    """One run over the dead-letter topic (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        dead_letter_topic: str,
        selection: Selection,
        *,
        sealer: Sealer | None,
        limit: int = DEFAULT_LIMIT,
        rate: float | None = None,
        dry_run: bool = False,
        group: str | None = None,
        idle: float = 2.0,
        progress: Callable[[Summary], None] | None = None,
    ) -> None:
        self.settings = settings
        self.selection = selection
        self.sealer = sealer
        self.limit = limit
        self.rate = rate
        self.dry_run = dry_run
        self.idle = idle
        self.progress = progress or (lambda summary: None)
        self.summary = Summary(
            dead_letter_topic=dead_letter_topic,
            input_topic=settings.raw_topic,
            group=group or selection.group(dead_letter_topic),
            dry_run=dry_run,
        )

    async def run(self) -> Summary:
        summary = self.summary
        started_ms = int(time.time() * 1000)
        consumer = clients.consumer(self.settings, client_id="trackbridge-redrive", group_id=summary.group)
        producer = None if self.dry_run else clients.producer(self.settings, client_id="trackbridge-redrive")
        try:
            await consumer.start()
            if producer is not None:
                await producer.start()
            await self._start_where_left(consumer)
            pace = _Pace(self.rate)
            while True:
                batches = await consumer.getmany(timeout_ms=int(self.idle * 1000), max_records=CHUNK)
                if not any(batches.values()):
                    break
                await self._chunk(consumer, producer, batches, started_ms, pace)
                self.progress(summary)
        finally:
            await consumer.stop()
            if producer is not None:
                await producer.stop()
        return summary

    async def _start_where_left(self, consumer: Any) -> None:
        """Assign every partition of the dead-letter topic at this selection's committed position
        (from the start when it has none, or on a dry run)."""
        from aiokafka import TopicPartition

        topic = self.summary.dead_letter_topic
        if topic not in await consumer.topics():
            raise LookupError(f"topic {topic!r} does not exist")
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        for tp in partitions:
            committed = None if self.dry_run else await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            self.summary.total += max(0, ends[tp] - await consumer.position(tp))

    async def _chunk(self, consumer: Any, producer: Any, batches: Any, started_ms: int, pace: _Pace) -> None:
        """Send what one fetch selects; once acknowledged, commit the position past it. A record
        written after the run began stops its partition: it is the next run's."""
        from aiokafka.structs import OffsetAndMetadata

        pending: list[Any] = []
        positions: dict[Any, OffsetAndMetadata] = {}
        for tp, records in batches.items():
            for record in records:
                if record.timestamp > started_ms:
                    consumer.pause(tp)
                    break
                positions[tp] = OffsetAndMetadata(record.offset + 1, "")
                sent = self._one(record)
                if sent is not None and producer is not None:
                    await pace.wait()
                    value, headers, key = sent
                    topic = self.summary.input_topic
                    pending.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*pending)
        self.summary.sent += len(pending)
        if positions and not self.dry_run:
            await consumer.commit(positions)

    def _one(self, record: Any) -> tuple[bytes, list[tuple[str, bytes]], bytes | None] | None:
        """Count one dead-letter record; what to send for it, when it is selected and restorable."""
        summary = self.summary
        summary.read += 1
        try:
            problem = _RECORD.decode(record.value)
        except (msgspec.DecodeError, TypeError):
            if self.selection.reasons or self.selection.sources or self.selection.request_ids:
                return None
            summary.selected += 1
            _count(summary.refused, Refused.NOT_A_DEAD_LETTER.value)
            return None
        if not self.selection.takes(problem):
            return None
        summary.selected += 1
        _count(summary.by_reason, problem.reason.value)
        _count(summary.by_source, problem.source or "unknown")
        count = redrive_count(record.headers)
        if count >= self.limit:
            _count(summary.refused, Refused.REDRIVE_LIMIT.value)
            return None
        restored = restore(problem, self.sealer)
        if isinstance(restored, Refused):
            _count(summary.refused, restored.value)
            return None
        if self.dry_run:
            summary.sent += 1  # would be sent
            return None
        key = None if problem.request_id is None else problem.request_id.encode()
        return restored, [(HEADER_REDRIVES, str(count + 1).encode())], key


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


class _Pace:
    """At most `rate` sends a second (None: as fast as the broker takes them)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 0.0 if not rate else 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next > now:
            await asyncio.sleep(self.next - now)
        self.next = max(now, self.next) + self.interval
