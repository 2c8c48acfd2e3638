"""One batch of raw calls -> records produced and acknowledged: the worker's hot path.

`Pipeline.map` translates and routes every record of a fetched batch (pure CPU, no awaits);
`Pipeline.deliver` sends all resulting records in whole per-partition batches
(worker/produce/sender.py) and waits for every acknowledgement; `Pipeline.settle` counts the
batch in the metrics once it is acknowledged. The agent (worker/runtime/app.py) strings them
together and only then lets the batch's offsets be committed.

Produce errors come in two kinds. A retriable one (broker unavailable, a timeout) is retried,
offsets uncommitted, sending again only what was not acknowledged -- and, to keep one person's
order, what followed it under the same key. A permanent one tied to a record (too large, invalid)
ends that record's call as an `output_refused` dead letter, once, and the rest of the batch goes
on. A dead letter that cannot be written either is cut to its facts; if even that is refused the
worker says so (one error log, `trackbridge_dead_letters_blocked`, /readyz 503) and keeps trying.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
import traceback
from bisect import bisect_right
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec

from mapping.reasons import Reason
from mapping.results import Problem, Translation
from worker.metrics import Metrics, Tally
from worker.produce.sender import REFUSALS, Send
from worker.records import HEADER_REASON, Record, cut, input_copy, problem_record, redrive_count
from worker.routing import Routed, Router
from worker.runtime.driver import FetchedBatch

logger = logging.getLogger(__name__)

RETRY_FIRST_DELAY: Final = 0.5
RETRY_MAX_DELAY: Final = 10.0
MAP_STEP: Final = 64
"""Calls `Pipeline.map_in_steps` translates between two turns of the event loop (~1 ms)."""

Translate = Callable[[bytes], Translation]


class Call(msgspec.Struct, frozen=True, gc=False):
    """What `deliver` needs to dead-letter a call whose output the broker refused (a Struct: one
    is made per call, and a Struct is made in C)."""

    raw: bytes
    translation: Translation | None
    routed: Routed | None
    redrives: int

    @property
    def endpoint(self) -> str | None:
        return None if self.translation is None else self.translation.endpoint


class MappedBatch:
    """A fetched batch after translation and routing: the records to produce and what to count.

    `ends[i]` is the end of call i's records in `records`; records appended by `deliver` (dead
    letters of refused calls) name their call in `extra`.
    """

    __slots__ = ("batch", "calls", "durations", "ends", "extra", "received", "records", "tally")

    def __init__(self, batch: FetchedBatch) -> None:
        self.batch = batch
        self.records: list[Record] = []
        self.calls: list[Call] = []
        self.ends: list[int] = []
        self.extra: dict[int, int] = {}
        self.received: list[str] = []
        self.durations: list[float] = []
        self.tally = Tally()

    def owner(self, index: int) -> int:
        """The call a record belongs to."""
        extra = self.extra.get(index)
        return extra if extra is not None else bisect_right(self.ends, index)


class _Progress:
    """One batch's delivery so far: acknowledged and dropped records, and the level of each dead
    letter `deliver` added (1: the call's full copy, 2: its facts only)."""

    __slots__ = ("acked", "dropped", "levels")

    def __init__(self) -> None:
        self.acked: set[int] = set()
        self.dropped: set[int] = set()
        self.levels: dict[int, int] = {}


class Pipeline:
    """Translate, route and produce batches for one sources file."""

    def __init__(self, router: Router, translate: Translate, metrics: Metrics) -> None:
        self.router = router
        self.translate = translate
        self.metrics = metrics
        self.dead_letter_topic = router.config.dead_letter_topic
        self.blocked = False
        """True while a dead letter cannot be written at all (readiness reads it)."""

    def map(self, batch: FetchedBatch) -> MappedBatch:
        """Translate and route every record of `batch`. Never raises for any input bytes."""
        mapped = MappedBatch(batch)
        self._map_into(mapped, batch.records())
        return mapped

    async def map_in_steps(self, batch: FetchedBatch, step: int = MAP_STEP) -> MappedBatch:
        """`map`, letting the event loop run after every `step` calls: the batch before this one
        is being delivered meanwhile, and its requests go out and its acknowledgements come in
        while this one is translated, instead of after."""
        mapped = MappedBatch(batch)
        for _, records in batch.chunks:
            for start in range(0, len(records), step):
                self._map_into(mapped, records[start : start + step])
                await asyncio.sleep(0)
        return mapped

    def _map_into(self, mapped: MappedBatch, consumed: Iterable[Any]) -> None:
        """Translate and route the consumed records `consumed` into `mapped`."""
        records = mapped.records
        extend = records.extend
        ends = mapped.ends.append
        calls = mapped.calls.append
        received = mapped.received.append
        duration = mapped.durations.append
        add = mapped.tally.add
        translate = self.translate
        route = self.router.route
        clock = time.perf_counter
        for record in consumed:
            raw = record.value if record.value is not None else b""
            redrives = redrive_count(record.headers) if record.headers else 0
            start = clock()
            try:
                translation = translate(raw)
                routed = route(raw, translation, redrives)
            except Exception as error:
                # translate and route promise never to raise: this is a bug. Keep the input.
                where = f"{record.topic}[{record.partition}]@{record.offset}"
                # The exception's message may quote the input: log where and what, not the message.
                logger.error(
                    "translating %s raised %s; writing it to the dead-letter topic\n%s",
                    where,
                    type(error).__name__,
                    "".join(traceback.format_tb(error.__traceback__)),
                )
                extend([self._internal_error(raw, error, where, redrives)])
                ends(len(records))
                calls(Call(raw, None, None, redrives))
                mapped.tally.add_internal_error()
                continue
            duration(clock() - start)
            extend(routed.records)
            ends(len(records))
            calls(Call(raw, translation, routed, redrives))
            add(routed, translation.endpoint)
            if redrives:
                mapped.tally.add_redriven(routed.source)
            if translation.received_at is not None:
                received(translation.received_at)

    async def deliver(self, mapped: MappedBatch, send: Send, still_current: Callable[[], bool]) -> bool:
        """Produce the batch until every record is acknowledged or settled; False if abandoned.

        A retriable failure is retried after a growing pause, for as long as `still_current()`
        holds -- it stops holding when the worker stops or a rebalance takes the partitions.
        """
        records = mapped.records
        state = _Progress()
        acked, dropped, levels = state.acked, state.dropped, state.levels
        todo = list(range(len(records)))
        delay = RETRY_FIRST_DELAY
        attempt = 1
        while True:
            failed: list[int] = []
            first: BaseException | None = None
            failures = await send(records, todo)
            if failures:
                failing = {index for index, _ in failures}
                acked.update(index for index in todo if index not in failing)
            else:
                acked.update(todo)
            for index, error in sorted(failures, key=_first):
                if index in dropped:  # its call was dead-lettered for a sibling record just now
                    continue
                if isinstance(error, REFUSALS) and levels.get(index, 0) < 2:
                    failed.append(self._refused(mapped, index, error, state))
                else:
                    failed.append(index)
                    first = first or error
                    if levels.get(index) == 2 and isinstance(error, REFUSALS):
                        self._block(error)
            failed = [index for index in failed if index not in dropped and index not in acked]
            if not failed:
                if self.blocked:
                    self.blocked = False
                    self.metrics.dead_letters_blocked.set(0)
                    logger.warning("dead letters are written again")
                if attempt > 1:
                    logger.info("batch of %d records settled on attempt %d", len(records), attempt)
                return True
            if first is not None:
                if not (self.blocked and all(levels.get(index) == 2 for index in failed)):
                    # (a blocked dead letter was logged once, when it blocked)
                    logger.error(
                        "%d of %d records of a batch were not acknowledged (first error: %r); offsets "
                        "from %s stay uncommitted; retrying in %.1f s",
                        len(failed),
                        len(records),
                        first,
                        _offsets(mapped.batch),
                        delay,
                    )
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline:
                    if not still_current():
                        logger.warning("giving up on the batch: the worker is stopping or rebalancing")
                        return False
                    await asyncio.sleep(min(0.1, delay))
                if not still_current():
                    return False
                delay = min(delay * 2, RETRY_MAX_DELAY)
                attempt += 1
                self.metrics.produce_retries.inc()
            todo = _again(records, failed, acked, dropped)
            resent = sum(1 for index in todo if index in acked)
            if resent:
                self.metrics.records_resent.inc(resent)

    def _refused(self, mapped: MappedBatch, index: int, error: BaseException, state: _Progress) -> int:
        """The broker refused record `index` for good. An output: its call becomes one
        `output_refused` dead letter instead of what is left of it. A dead-letter or skip record:
        it is written again cut to its facts. Returns the new record's index, to send now."""
        record = mapped.records[index]
        call_index = mapped.owner(index)
        detail = f"the broker refused a record for {record.topic}: {type(error).__name__}"
        state.dropped.add(index)
        if state.levels.get(index, 0) or _is_problem(record):
            replacement = cut(record)
            level = 2
        else:
            call = mapped.calls[call_index]
            # Nothing more of this call is sent; what was acknowledged stays (same messageIds).
            start = mapped.ends[call_index - 1] if call_index else 0
            mine = [*range(start, mapped.ends[call_index])]
            mine += [position for position, owner in mapped.extra.items() if owner == call_index]
            state.dropped.update(position for position in mine if position not in state.acked)
            if call.routed is not None:  # the call counts as one dead letter, not its outputs
                mapped.tally.add(call.routed, call.endpoint, -1)
                mapped.tally.add_refused(call.routed.source, call.endpoint)
            translation = call.translation
            replacement = problem_record(
                self.dead_letter_topic,
                Problem(Reason.OUTPUT_REFUSED, detail),
                input_copy(call.raw, self.router.sealer),
                request_id=None if translation is None else translation.request_id,
                received_at=None if translation is None else translation.received_at,
                source=None if call.routed is None else call.routed.source,
                redrives=call.redrives,
            )
            level = 1
        mapped.records.append(replacement)
        position = len(mapped.records) - 1
        mapped.extra[position] = call_index
        state.levels[position] = level
        logger.warning("%s; call %d of the batch goes to %s", detail, call_index, replacement.topic)
        return position

    def _block(self, error: BaseException) -> None:
        if not self.blocked:
            self.blocked = True
            self.metrics.dead_letters_blocked.set(1)
            logger.error(
                "a dead letter cannot be written to %s even cut to its facts (%s); the worker "
                "retries it and commits nothing past it until it is written",
                self.dead_letter_topic,
                type(error).__name__,
            )

    def settle(self, mapped: MappedBatch) -> None:
        """Count an acknowledged batch: counters and histograms."""
        now = time.time()
        metrics = self.metrics
        metrics.count(mapped.tally)
        metrics.mapping_seconds.observe_many(mapped.durations)
        metrics.batch_size.observe(mapped.batch.size)
        metrics.latency.observe_many(_latencies(now, mapped.received))
        metrics.observe_record_times(now, [record.timestamp for record in mapped.batch.records()])

    def _internal_error(self, raw: bytes, error: Exception, where: str, redrives: int) -> Record:
        detail = f"the worker failed on input {where}: {type(error).__name__}"
        return problem_record(
            self.dead_letter_topic,
            Problem(Reason.INTERNAL_ERROR, detail),
            input_copy(raw, self.router.sealer),
            redrives=redrives,
        )


def _first(failure: tuple[int, BaseException]) -> int:
    return failure[0]


def _offsets(batch: FetchedBatch) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in batch.first_offsets().items())


def _is_problem(record: Record) -> bool:
    """Whether a record is a dead-letter or skip record (it has a `cio-reason` header)."""
    return any(name == HEADER_REASON for name, _ in record.headers)


def _again(records: list[Record], failed: list[int], acked: set[int], dropped: set[int]) -> list[int]:
    """What a retry sends: every failed record, and -- so one key's records keep their order on
    their partition -- every later record of the same topic and key, acknowledged or not."""
    first_failure: dict[tuple[str, bytes | None], int] = {}
    for index in failed:
        record = records[index]
        group = (record.topic, record.key)
        if group not in first_failure or index < first_failure[group]:
            first_failure[group] = index
    again = []
    for index, record in enumerate(records):
        if index in dropped:
            continue
        start = first_failure.get((record.topic, record.key))
        if start is not None and index >= start:
            again.append(index)
    return again


def _latencies(now: float, received: list[str]) -> list[float]:
    parse = datetime.datetime.fromisoformat
    latencies: list[float] = []
    append = latencies.append
    for text in received:
        try:
            append(now - parse(text).timestamp())
        except ValueError:  # spec §1 allows a lower-case t/z that fromisoformat does not
            try:
                append(now - parse(text.upper()).timestamp())
            except ValueError:
                continue
    return latencies
