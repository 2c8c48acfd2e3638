"""Worker end to end on the embedded broker, against two plain loops doing the same work.

One run, one embedded Tansu broker, a 4-partition input:

1. Throughput: `--messages` realistic envelopes (bench.mapping_core's mix) are produced first;
   the worker (`trackbridge worker`, its own process) then consumes, translates, routes,
   produces and commits them all; each reference loop (its own process too) does the same from
   a copy of the input. Calls/s from the first batch done to the last acknowledgement.
2. Latency at offered load: for each `--rates` value, envelopes are produced at that rate for
   `--duration` seconds with `received_at` = the send time, first through the worker, then
   through a fresh instance of each reference loop. Latency is `received_at` -> every output
   acknowledged, read from the worker's own `trackbridge_end_to_end_latency_seconds` histogram
   (p50/p99 interpolated in its buckets); the loops record the same histogram, and their exact
   quantiles too.

The references, with the worker's batch size, fetch wait, producer settings and commit interval:
- the bare aiokafka loop: consumer `getmany` -> `mapping.translate` -> `Router.route` ->
  `producer.send` for every record without awaiting -> gather -> commit every
  `commit_interval`. One future per record, aiokafka's partitioner: the simple way.
- the librdkafka loop: the same on confluent-kafka, whose C library consumes, batches,
  partitions (murmur2, as the worker) and produces in its own threads; `flush` per batch. The
  fastest plain loop a Python user could write for this job (the `bench` extra).
Targets: worker throughput >= 1.5 x the bare aiokafka loop; worker p99 <= 1.5 x the bare loop's
at each offered load. The ratio to the librdkafka loop is printed, without a target. Every
figure has the machine's load average beside it: on a shared machine, compare ratios of one run.

Run: `python -m bench.worker_e2e` (or `make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "examples" / "sources.toml"
WORKER_PREFIX = "w."
BARE_PREFIX = "b."
RDKAFKA_PREFIX = "r."
BARE = "--bare-loop"
RDKAFKA = "--confluent-loop"
PARTITIONS = 4
POLL_MIN, POLL_MAX = 0.02, 0.5  # seconds between two scrapes of the worker's /metrics


# -- shared ----------------------------------------------------------------------------------


def _settings(bootstrap: str, prefix: str, *, batch_size: int) -> Any:
    from worker.config.settings import embedded, load_settings

    settings, explicit = load_settings(
        environ={
            "TRACKBRIDGE_SOURCES": str(SOURCES),
            "TRACKBRIDGE_TOPIC_PREFIX": prefix,
            "TRACKBRIDGE_GROUP_ID": f"{prefix}bench",
            "TRACKBRIDGE_INPUT_PARTITIONS": str(PARTITIONS),
            "TRACKBRIDGE_OUTPUT_PARTITIONS": str(PARTITIONS),
            "TRACKBRIDGE_BATCH_SIZE": str(batch_size),
            "TRACKBRIDGE_LOG_LEVEL": "WARNING",
        }
    )
    return embedded(settings, explicit, bootstrap)


def quantiles_from_buckets(
    bounds: Sequence[float], counts: Sequence[float], qs: Sequence[float]
) -> list[float]:
    """Quantiles from per-bucket (not cumulative) counts, interpolated linearly inside a bucket,
    as Prometheus' histogram_quantile does. `counts` has one more entry (+Inf) than `bounds`."""
    total = sum(counts)
    results = []
    for q in qs:
        rank, seen, lower = q * total, 0.0, 0.0
        value = float("nan")
        for index, count in enumerate(counts):
            upper = bounds[index] if index < len(bounds) else bounds[-1]
            if count and seen + count >= rank:
                value = lower + (upper - lower) * (rank - seen) / count
                break
            seen += count
            lower = upper
        results.append(value)
    return results


def _epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the bare loop (run in its own process) ----------------------------------------------------


async def bare_loop(settings: Any, *, expect: int, ready_file: Path | None) -> dict[str, Any]:
    """Consume `expect` envelopes and produce their records, the simplest at-least-once way."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    import mapping
    from topics.catalog import OUTPUT_MAX_MESSAGE_BYTES
    from worker.config.sources import load_sources
    from worker.metrics import LATENCY_BUCKETS
    from worker.routing import Router
    from worker.runtime.app import PRODUCER_MAX_BATCH_BYTES

    assert settings.sources is not None
    router = Router(load_sources(settings.sources).with_prefix(settings.topic_prefix))
    consumer = AIOKafkaConsumer(
        settings.raw_topic,
        bootstrap_servers=list(settings.bootstrap_servers),
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_records=settings.batch_size,
        session_timeout_ms=int(settings.session_timeout * 1000),
        rebalance_timeout_ms=int(settings.rebalance_timeout * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
    )
    # The worker's producer settings.
    producer = AIOKafkaProducer(
        bootstrap_servers=list(settings.bootstrap_servers),
        acks="all",
        linger_ms=0,
        max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        max_request_size=OUTPUT_MAX_MESSAGE_BYTES,
    )
    await producer.start()
    await consumer.start()
    while not consumer.assignment():
        await asyncio.sleep(0.05)
    if ready_file is not None:
        ready_file.write_text("ready")
    translate, route, send = mapping.translate, router.route, producer.send
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    exact: list[float] = []
    done, first_at, last_commit = 0, 0.0, time.monotonic()
    pending_commit: dict[Any, int] = {}
    try:
        while done < expect:
            batches = await consumer.getmany(timeout_ms=int(settings.batch_timeout * 1000))
            if not batches:
                continue
            if not first_at:
                first_at = time.perf_counter()
            futures = []
            received = []
            for tp, records in batches.items():
                for record in records:
                    translation = translate(record.value)
                    for out in route(record.value, translation).records:
                        futures.append(await send(out.topic, out.value, key=out.key, headers=out.headers))
                    if translation.received_at is not None:
                        received.append(translation.received_at)
                pending_commit[TopicPartition(tp.topic, tp.partition)] = records[-1].offset + 1
                done += len(records)
            await asyncio.gather(*futures)
            acked = time.time()
            for text in received:
                latency = acked - _epoch(text)
                exact.append(latency)
                counts[bisect_left(LATENCY_BUCKETS, latency)] += 1
            if time.monotonic() - last_commit >= settings.commit_interval:
                await consumer.commit(pending_commit)
                pending_commit, last_commit = {}, time.monotonic()
        elapsed = time.perf_counter() - first_at
        if pending_commit:
            await consumer.commit(pending_commit)
    finally:
        await consumer.stop()
        await producer.stop()
    return _result(done, elapsed, counts, exact)


# -- the librdkafka loop (run in its own process) ------------------------------------------------


def confluent_loop(settings: Any, *, expect: int, ready_file: Path | None) -> dict[str, Any]:
    """The bare loop on confluent-kafka (librdkafka): the fastest plain Python loop for this job.

    librdkafka consumes, batches, partitions (`murmur2_random`: the Java client's partition for
    a key, as the worker's) and produces in its own C threads; Python only translates, routes and
    hands each record over with `produce`. Delivery reports come for errors only; `flush` waits
    for every acknowledgement before the batch counts as done. Offsets are committed every
    `commit_interval`, after their batch's flush, as the other loops do.
    """
    from confluent_kafka import Consumer, Producer, TopicPartition

    import mapping
    from topics.catalog import OUTPUT_MAX_MESSAGE_BYTES
    from worker.config.sources import load_sources
    from worker.metrics import LATENCY_BUCKETS
    from worker.routing import Router
    from worker.runtime.app import PRODUCER_MAX_BATCH_BYTES

    assert settings.sources is not None
    router = Router(load_sources(settings.sources).with_prefix(settings.topic_prefix))
    servers = ",".join(settings.bootstrap_servers)
    consumer = Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": settings.fetch_max_wait_ms,
            "session.timeout.ms": int(settings.session_timeout * 1000),
            "heartbeat.interval.ms": int(settings.heartbeat_interval * 1000),
        }
    )
    errors: list[Any] = []
    producer = Producer(
        {
            "bootstrap.servers": servers,
            "acks": "all",
            "enable.idempotence": False,
            "partitioner": "murmur2_random",
            "batch.size": PRODUCER_MAX_BATCH_BYTES,
            "message.max.bytes": OUTPUT_MAX_MESSAGE_BYTES,
            "linger.ms": 5,
            "delivery.report.only.error": True,
            "on_delivery": lambda error, message: errors.append(error),
        }
    )
    consumer.subscribe([settings.raw_topic])
    translate, route, produce = mapping.translate, router.route, producer.produce
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    exact: list[float] = []
    done, first_at, last_commit, announced = 0, 0.0, time.monotonic(), False
    pending_commit: dict[tuple[str, int], int] = {}
    wait = settings.batch_timeout
    try:
        while done < expect:
            # What librdkafka has prefetched, up to a batch; else wait for the first record.
            messages = consumer.consume(settings.batch_size, 0) or consumer.consume(1, wait)
            if not announced and consumer.assignment():
                announced = True
                if ready_file is not None:
                    ready_file.write_text("ready")
            if not messages:
                continue
            if not first_at:
                first_at = time.perf_counter()
            received = []
            for message in messages:
                if message.error() is not None:
                    continue
                value = message.value() or b""
                translation = translate(value)
                for out in route(value, translation).records:
                    produce(out.topic, out.value, out.key, headers=out.headers)
                if translation.received_at is not None:
                    received.append(translation.received_at)
                pending_commit[(message.topic(), message.partition())] = message.offset() + 1
                done += 1
            if producer.flush(60) or errors:
                raise RuntimeError(f"the librdkafka loop lost records: {errors[:3]}")
            acked = time.time()
            for text in received:
                latency = acked - _epoch(text)
                exact.append(latency)
                counts[bisect_left(LATENCY_BUCKETS, latency)] += 1
            if time.monotonic() - last_commit >= settings.commit_interval:
                consumer.commit(offsets=_offsets(TopicPartition, pending_commit), asynchronous=False)
                pending_commit, last_commit = {}, time.monotonic()
        elapsed = time.perf_counter() - first_at
        if pending_commit:
            consumer.commit(offsets=_offsets(TopicPartition, pending_commit), asynchronous=False)
    finally:
        consumer.close()
    return _result(done, elapsed, counts, exact)


def _offsets(make: Any, pending: dict[tuple[str, int], int]) -> list[Any]:
    return [make(topic, partition, offset) for (topic, partition), offset in pending.items()]


def _result(done: int, elapsed: float, counts: list[int], exact: list[float]) -> dict[str, Any]:
    exact.sort()
    return {
        "count": done,
        "seconds": elapsed,
        "rate": done / elapsed if elapsed else 0.0,
        "bucket_counts": counts,
        "exact_p50": exact[len(exact) // 2] if exact else None,
        "exact_p99": exact[min(len(exact) - 1, int(len(exact) * 0.99))] if exact else None,
    }


LOOPS = (BARE, RDKAFKA)


def _bare_process(  # noqa: PLR0917 - a command line's worth of arguments
    bootstrap: str,
    prefix: str,
    group: str,
    expect: int,
    batch_size: int,
    ready_file: Path,
    loop: str = BARE,
) -> subprocess.Popen[str]:
    """A reference loop (`loop`: one of LOOPS) in its own process, like the worker; it prints its
    result as one JSON line."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.worker_e2e",
            loop,
            bootstrap,
            prefix,
            group,
            str(expect),
            str(batch_size),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "BENCH_READY_FILE": str(ready_file)},
    )


def _wait_file(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the bare loop did not start")
        time.sleep(0.05)


def _bare_main(loop: str, argv: Sequence[str]) -> None:
    bootstrap, prefix, group, expect, batch_size = argv
    settings = _settings(bootstrap, prefix, batch_size=int(batch_size))
    settings = msgspec.structs.replace(settings, group_id=group)
    ready = Path(os.environ["BENCH_READY_FILE"]) if "BENCH_READY_FILE" in os.environ else None
    if loop == "--confluent-loop":
        result = confluent_loop(settings, expect=int(expect), ready_file=ready)
    else:
        result = asyncio.run(bare_loop(settings, expect=int(expect), ready_file=ready))
    print(json.dumps(result))


# -- producing ---------------------------------------------------------------------------------


async def _produce_all(settings: Any, topics: Sequence[str], values: Sequence[bytes]) -> None:
    from worker.clients import producer

    client = producer(settings, client_id="trackbridge-bench")
    await client.start()
    try:
        for topic in topics:
            pending = []
            for value in values:
                pending.append(await client.send(topic, value))
                if len(pending) >= 5000:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
    finally:
        await client.stop()


async def _produce_paced(
    settings: Any, topic: str, templates: Sequence[dict[str, Any]], rate: int, seconds: float
) -> int:
    """Produce at `rate` envelopes/s for `seconds`, each stamped with received_at = its send time."""
    from worker.clients import producer

    client = producer(settings, client_id="trackbridge-bench", linger_ms=0)
    await client.start()
    encode = msgspec.json.encode
    total = int(rate * seconds)
    sent = 0
    pending = []
    try:
        start = time.perf_counter()
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                envelope = dict(templates[sent % len(templates)])
                envelope["received_at"] = _now_iso()
                envelope["request_id"] = f"paced-{rate}-{sent}"
                pending.append(await client.send(topic, encode(envelope)))
                sent += 1
            if len(pending) > 2000:
                await asyncio.gather(*pending)
                pending = []
            await asyncio.sleep(0.001)
        await asyncio.gather(*pending)
    finally:
        await client.stop()
    return sent


# -- the worker's histogram --------------------------------------------------------------------


def _worker_histogram(worker: Any) -> tuple[list[float], float]:
    """Per-bucket latency counts from the worker's /metrics, and envelopes consumed."""
    from prometheus_client.parser import text_string_to_metric_families

    from worker.metrics import END_TO_END_LATENCY, ENVELOPES_CONSUMED, LATENCY_BUCKETS

    cumulative: dict[float, float] = {}
    consumed = 0.0
    for family in text_string_to_metric_families(worker.metrics_text()):
        for sample in family.samples:
            if sample.name == END_TO_END_LATENCY.name + "_bucket":
                cumulative[float(sample.labels["le"])] = sample.value
            elif sample.name == ENVELOPES_CONSUMED.name:
                consumed += sample.value
    bounds = [*LATENCY_BUCKETS, float("inf")]
    running = [cumulative.get(float(bound), 0.0) for bound in bounds]
    return [running[0]] + [running[i] - running[i - 1] for i in range(1, len(running))], consumed


def _wait_consumed(worker: Any, target: float, timeout: float) -> tuple[float, float, float]:
    """Poll the worker until it consumed `target` envelopes: (when progress was first seen, how
    many it had consumed then, when it was done).

    Each poll is a /metrics scrape, which costs the worker CPU time: after the first progress
    it polls again after a quarter of the time left at the rate so far (20 ms to 0.5 s), so a
    run is scraped a few dozen times, not every 50 ms.
    """
    start_count = _worker_histogram(worker)[1]
    first, first_count = None, start_count
    deadline = time.monotonic() + timeout
    pause = POLL_MIN
    while time.monotonic() < deadline:
        consumed = _worker_histogram(worker)[1]
        now = time.perf_counter()
        if first is None and consumed > start_count:
            first, first_count = now, consumed
        if consumed >= target:
            return first or now, first_count, now
        if first is not None and now > first and consumed > first_count:
            rate = (consumed - first_count) / (now - first)
            pause = min(POLL_MAX, max(POLL_MIN, (target - consumed) / rate / 4))
        time.sleep(pause)
    raise TimeoutError(f"the worker consumed {consumed:.0f} of {target:.0f} envelopes")


# -- main --------------------------------------------------------------------------------------


def _worker_latency(
    worker: Any, settings: Any, templates: Sequence[dict[str, Any]], rate: int, seconds: float
) -> tuple[float, float]:
    """Offered load through the running worker: (p50, p99) of its latency histogram over the run."""
    from worker.metrics import LATENCY_BUCKETS

    before, consumed = _worker_histogram(worker)
    sent = asyncio.run(_produce_paced(settings, settings.raw_topic, templates, rate, seconds))
    _wait_consumed(worker, consumed + sent, timeout=120)
    after, _ = _worker_histogram(worker)
    delta = [b - a for a, b in zip(before, after, strict=True)]
    p50, p99 = quantiles_from_buckets(LATENCY_BUCKETS, delta, (0.5, 0.99))
    return p50, p99


def _bare_latency(
    bootstrap: str,
    settings: Any,
    templates: Sequence[dict[str, Any]],
    *,
    rate: int,
    seconds: float,
    scratch: Path,
    loop: str = BARE,
) -> dict[str, Any]:
    """Offered load through a fresh reference loop reading `settings`' own input topic."""
    from worker.metrics import LATENCY_BUCKETS

    ready = scratch / f"{loop.strip('-')}-{rate}.ready"
    total = int(rate * seconds)
    bare = _bare_process(
        bootstrap, settings.topic_prefix, f"{loop.strip('-')}-{rate}", total, settings.batch_size, ready, loop
    )
    _wait_file(ready, bare)
    asyncio.run(_produce_paced(settings, settings.raw_topic, templates, rate, seconds))
    out, _ = bare.communicate(timeout=120)
    result: dict[str, Any] = json.loads(out)
    result["p50"], result["p99"] = quantiles_from_buckets(
        LATENCY_BUCKETS, result["bucket_counts"], (0.5, 0.99)
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Print worker vs bare-loop throughput, and latency at offered load, on the embedded broker."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] and args_list[0] in LOOPS:
        _bare_main(args_list[0], args_list[1:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000, help="envelopes for the throughput run")
    parser.add_argument("--rates", default="1000,5000", help="offered loads, calls/s, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of offered load per rate")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(args_list)

    from bench.mapping_core import build_inputs
    from worker import topology
    from worker.config.settings import to_environ
    from worker.config.sources import load_sources
    from worker.local.embedded import EmbeddedBroker, free_port
    from worker.local.process import WorkerProcess

    rates = [int(rate) for rate in args.rates.split(",") if rate]
    inputs = build_inputs(args.messages)
    templates = [msgspec.json.decode(raw) for raw in inputs[:1000]]
    sources = load_sources(SOURCES)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        worker_settings = _settings(broker.bootstrap, WORKER_PREFIX, batch_size=args.batch_size)
        worker_settings = msgspec.structs.replace(worker_settings, web_port=free_port())
        bare_settings = _settings(broker.bootstrap, BARE_PREFIX, batch_size=args.batch_size)
        rdkafka_settings = _settings(broker.bootstrap, RDKAFKA_PREFIX, batch_size=args.batch_size)
        # Each reference latency run reads a topic of its own: Tansu answers "latest" offsets
        # wrongly, so a fresh loop cannot start at the end of a topic that already has records.
        paced = {
            (loop, rate): _settings(broker.bootstrap, f"{prefix[0]}{rate}.", batch_size=args.batch_size)
            for loop, prefix in ((BARE, BARE_PREFIX), (RDKAFKA, RDKAFKA_PREFIX))
            for rate in rates
        }
        for settings in (worker_settings, bare_settings, rdkafka_settings, *paced.values()):
            asyncio.run(topology.create_topics(settings, topology.catalog(settings, sources)))
        mean = sum(map(len, inputs)) / len(inputs)
        print(
            f"worker end to end on embedded Tansu: {PARTITIONS} input partitions, batch {args.batch_size}, "
            f"fetch wait {worker_settings.fetch_max_wait_ms} ms, envelopes of mean {mean:.0f} B "
            "(bench.mapping_core mix); references: the bare aiokafka loop (one send per record) and "
            "the librdkafka loop (confluent-kafka)",
            flush=True,
        )
        environ = to_environ(worker_settings)

        # 1. Latency at offered load, on a fresh broker (Tansu slows down as it fills up).
        worker = WorkerProcess(environ, log_path=scratch / "worker-1.log").start()
        try:
            worker.wait_ready(120)
            for rate in rates:
                w50, w99 = _worker_latency(worker, worker_settings, templates, rate, args.duration)
                refs = {
                    loop: _bare_latency(
                        broker.bootstrap,
                        paced[(loop, rate)],
                        templates,
                        rate=rate,
                        seconds=args.duration,
                        scratch=scratch,
                        loop=loop,
                    )
                    for loop in (BARE, RDKAFKA)
                }
                bare, rdkafka = refs[BARE], refs[RDKAFKA]
                print(
                    f"  offered {rate:>5}/s for {args.duration:g} s   "
                    f"worker p50 {w50 * 1e3:5.1f} ms p99 {w99 * 1e3:6.1f} ms   "
                    f"bare loop p50 {bare['p50'] * 1e3:5.1f} ms p99 {bare['p99'] * 1e3:6.1f} ms "
                    f"(exact {bare['exact_p50'] * 1e3:.1f} / {bare['exact_p99'] * 1e3:.1f})   "
                    f"p99 ratio {w99 / bare['p99']:.3f} (target <= 1.50)   {_load()}\n"
                    f"  {'':>30}librdkafka loop p50 {rdkafka['p50'] * 1e3:5.1f} ms "
                    f"p99 {rdkafka['p99'] * 1e3:6.1f} ms "
                    f"(exact {rdkafka['exact_p50'] * 1e3:.1f} / {rdkafka['exact_p99'] * 1e3:.1f})   "
                    f"worker p99 / its p99 {w99 / rdkafka['p99']:.2f}",
                    flush=True,
                )
        finally:
            _stop(worker)

        # 2. Throughput: the same backlog for each, drained from the first record to the last ack.
        asyncio.run(
            _produce_all(
                worker_settings,
                [worker_settings.raw_topic, bare_settings.raw_topic, rdkafka_settings.raw_topic],
                inputs,
            )
        )
        worker = WorkerProcess(environ, log_path=scratch / "worker-2.log").start()
        try:
            worker.wait_ready(120)
            first, first_count, last = _wait_consumed(worker, len(inputs), timeout=600)
        finally:
            _stop(worker)
        # From the first batch seen done: the envelopes done since, over the time since.
        worker_rate = (len(inputs) - first_count) / (last - first)
        worker_load = _load()
        rates_of = {}
        for loop, prefix in ((BARE, BARE_PREFIX), (RDKAFKA, RDKAFKA_PREFIX)):
            name = loop.strip("-")
            process = _bare_process(
                broker.bootstrap, prefix, name, len(inputs), args.batch_size, scratch / f"{name}.ready", loop
            )
            out, _ = process.communicate(timeout=600)
            rates_of[loop] = (json.loads(out)["rate"], _load())
        (bare_rate, bare_load), (rdkafka_rate, rdkafka_load) = rates_of[BARE], rates_of[RDKAFKA]
        print(
            f"  throughput, {len(inputs):,} envelopes   worker {worker_rate:,.0f} calls/s ({worker_load})\n"
            f"    bare aiokafka loop {bare_rate:,.0f} calls/s ({bare_load})   "
            f"worker / bare loop {worker_rate / bare_rate:.3f} (target >= 1.50)\n"
            f"    librdkafka loop    {rdkafka_rate:,.0f} calls/s ({rdkafka_load})   "
            f"worker / librdkafka loop {worker_rate / rdkafka_rate:.2f}",
            flush=True,
        )


def _load() -> str:
    """The machine's load average (1, 5, 15 min), to read beside a figure."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def _stop(worker: Any) -> None:
    status = worker.stop()
    if status != 0:
        print(f"  (the worker exited with status {status}; log {worker.log_path})")


if __name__ == "__main__":
    main()
