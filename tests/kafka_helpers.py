"""Helpers for the integration tests (importable as `kafka_helpers`; tests/ is on sys.path)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from worker.config.settings import Settings
from worker.local.process import EdgeProcess, WorkerProcess

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "mapping" / "vectors"
TEST_CONFIG = VECTORS / "test_config.json"

Produce = Callable[..., list[tuple[int, int]]]
Consume = Callable[..., list[Any]]


def credential_forms(site: str, key: str) -> list[bytes]:
    """Every form Track credentials could be stored in: the key, `site:key`, and `site:key` in
    either base64 alphabet, padded or not (the `Authorization` header's token)."""
    pair = f"{site}:{key}".encode()
    standard, urlsafe = base64.b64encode(pair), base64.urlsafe_b64encode(pair)
    return [key.encode(), pair, standard, urlsafe, standard.rstrip(b"="), urlsafe.rstrip(b"=")]


def known_credentials() -> list[bytes]:
    """The forms of every credential of the spec's test sources (tests/mapping/vectors)."""
    sources = json.loads(TEST_CONFIG.read_text())["sources"]
    return [
        form
        for source in sources
        for form in credential_forms(source["site_id"], source["_test_only_plaintext_api_key"])
    ]


def credentials_in(stored: bytes | str, forms: list[bytes] | None = None) -> list[bytes]:
    """Which of `forms` (default: every test credential) appear in `stored`: none, for a record,
    log or metrics page that keeps no credential."""
    data = stored.encode() if isinstance(stored, str) else stored
    return [form for form in (known_credentials() if forms is None else forms) if form in data]


def stored_bytes(record: Any) -> bytes:
    """Every byte of a consumed record: value, key and headers."""
    parts = [record.value or b"", record.key or b""]
    parts += [name.encode() + b"=" + value for name, value in record.headers or ()]
    return b"\n".join(parts)


def headers_of(record: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers or ()}


def committed_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The consumer group's committed offsets for `topic`, by partition (absent: none committed).

    Asked with a consumer of the group that never joins it (OffsetFetch only): aiokafka's admin
    client cannot decode Tansu's OffsetFetch response.
    """

    async def fetch() -> dict[int, int]:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(
            bootstrap_servers=list(settings.bootstrap_servers),
            group_id=settings.group_id,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                await consumer.topics()
                partitions = consumer.partitions_for_topic(topic) or set()
            offsets = {}
            for partition in sorted(partitions):
                offset = await consumer.committed(TopicPartition(topic, partition))
                if offset is not None and offset >= 0:
                    offsets[partition] = offset
            return offsets
        finally:
            await consumer.stop()

    return asyncio.run(fetch())


class ScrapedMetrics:
    """A worker's /metrics text, read like a registry: `get_sample_value(name, labels)`."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get_sample_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        return self.samples.get((name, frozenset((labels or {}).items())))

    def total(self, name: str, **labels: str) -> float:
        """Sum of every sample named `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in self.samples.items()
            if sample == name and wanted <= sample_labels
        )


class KafkaProxy:
    """A TCP proxy in front of a broker that can stop forwarding Produce requests.

    The broker must advertise the proxy's port, so every client connection goes through it.
    With `drop_produce` set, Produce requests (Kafka api key 0) are swallowed: no acknowledgement
    ever comes, while fetches, metadata and offset commits go on. That is a broker that takes
    the worker's input but cannot acknowledge its outputs.
    """

    def __init__(self, upstream_port: int, port: int) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.drop_produce = False
        self.dropped = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> KafkaProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._requests(reader, upstream_writer),
            self._copy(upstream_reader, writer),
            return_exceptions=True,
        )
        writer.close()
        upstream_writer.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">i", header)[0])
                if self.drop_produce and struct.unpack(">h", body[:2])[0] == 0:
                    self.dropped += 1
                    continue
                writer.write(header + body)
                await writer.drain()
        finally:
            writer.close()

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            writer.close()


def vector_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(VECTORS.glob("*.json")):
        if path.name != TEST_CONFIG.name:
            cases.extend(json.loads(path.read_text()))
    return cases


def vector_value(envelope: Mapping[str, Any]) -> bytes:
    """The Kafka value for a vector's envelope (spec §15: a lone "raw" key holds the bytes verbatim)."""
    if set(envelope) == {"raw"}:
        return str(envelope["raw"]).encode()
    return json.dumps(envelope).encode()


def envelope_stream(count: int, tag: str, *, poison_every: int = 997) -> list[bytes]:
    """`count` input values cycling through the spec vectors, each with its own request_id
    (`{tag}-{i}`), plus a poison message (non-UTF-8 garbage, unique per position) every
    `poison_every` values. Vectors without a usable request_id are left out."""
    templates = [
        case["envelope"]
        for case in vector_cases()
        if isinstance(case["envelope"].get("request_id"), str)
        and case["envelope"]["request_id"]
        and isinstance(case["envelope"].get("received_at"), str)
    ]
    values = []
    for index in range(count):
        if poison_every and index % poison_every == poison_every - 1:
            values.append(b"\xff\xfe poison " + str(index).encode())
            continue
        envelope = dict(templates[index % len(templates)])
        envelope["request_id"] = f"{tag}-{index}"
        values.append(json.dumps(envelope).encode())
    return values


RecordId = tuple[str, str, str | None, str | None, str | None]


def record_id(topic: str, headers: Mapping[str, str], value: bytes) -> RecordId:
    """What identifies one record the worker produces, however often it is produced:
    (topic, request id -- or the input's SHA-256 for calls without one --, item index, output
    index, reason)."""
    request = headers.get("cio-request-id")
    if request is None:
        request = json.loads(value)["input"]["sha256"]
    return (
        topic,
        request,
        headers.get("cio-item-index"),
        headers.get("cio-output-index"),
        headers.get("cio-reason"),
    )


def expected_by_input(settings: Settings, values: list[bytes]) -> list[dict[RecordId, bytes]]:
    """Per input value, the records the worker must produce: the same translate and route, offline."""
    import mapping
    from worker.config.sources import load_sources
    from worker.routing import Router

    assert settings.sources is not None
    router = Router(load_sources(settings.sources).with_prefix(settings.topic_prefix))
    expected = []
    for value in values:
        records: dict[RecordId, bytes] = {}
        for record in router.route(value, mapping.translate(value)).records:
            headers = {name: data.decode() for name, data in record.headers}
            records[record_id(record.topic, headers, record.value)] = record.value
        expected.append(records)
    return expected


def expected_records(settings: Settings, values: list[bytes]) -> dict[RecordId, bytes]:
    """Every record the worker must produce for `values`."""
    return {rid: value for records in expected_by_input(settings, values) for rid, value in records.items()}


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(settings, **changes)


def sources_toml(config: Mapping[str, Any]) -> str:
    """A sources file's TOML text for the JSON shape of test_config.json (strings, lists, tables)."""

    def value(item: Any) -> str:
        return json.dumps(item)  # JSON strings and lists of strings are valid TOML values

    lines = [f"dead_letter_topic = {value(config['dead_letter_topic'])}"]
    if "skip_topic" in config:
        lines.append(f"skip_topic = {value(config['skip_topic'])}")
    for name, destination in config["destinations"].items():
        lines.append(f"[destinations.{json.dumps(name)}]")
        lines.extend(f"{key} = {value(item)}" for key, item in destination.items())
    for source in config["sources"]:
        lines.append("[[sources]]")
        lines.extend(f"{key} = {value(item)}" for key, item in source.items())
    return "\n".join(lines) + "\n"


def settings_for(bootstrap: str, topic_prefix: str, sources: Path) -> Settings:
    """Worker settings for the broker at `bootstrap`: this prefix, its own consumer group, `sources`."""
    from worker.config.settings import embedded, load_settings

    settings, explicit = load_settings(
        environ={
            "TRACKBRIDGE_TOPIC_PREFIX": topic_prefix,
            "TRACKBRIDGE_GROUP_ID": f"{topic_prefix}group",
            "TRACKBRIDGE_SOURCES": str(sources),
            "TRACKBRIDGE_INPUT_PARTITIONS": "4",
            "TRACKBRIDGE_OUTPUT_PARTITIONS": "4",
            "TRACKBRIDGE_COMMIT_INTERVAL": "0.5",
        }
    )
    return embedded(settings, explicit, bootstrap)


def start_edge(
    settings: Settings, log: Path, *, wait: bool = True, tls: tuple[Path, Path] | None = None, **environ: str
) -> EdgeProcess:
    """A `trackbridge edge` subprocess for `settings` on a free loopback port (HTTPS with `tls`, a
    (certificate, key) pair), logging to `log`; with `wait`, returned once /readyz answers. The
    caller stops it."""
    from worker.config.settings import to_environ
    from worker.local.embedded import free_port

    changes: dict[str, Any] = {"edge_port": free_port(), "edge_host": "127.0.0.1", "log_format": "json"}
    if tls is not None:
        changes.update(edge_tls_certfile=str(tls[0]), edge_tls_keyfile=str(tls[1]))
    edge = EdgeProcess({**to_environ(with_settings(settings, **changes)), **environ}, log_path=log)
    edge.start()
    if wait:
        try:
            edge.wait_ready(60)
        except BaseException:
            edge.stop(timeout=30)
            raise
    return edge


def start_worker(settings: Settings, log: Path, *, wait: bool = True, **environ: str) -> WorkerProcess:
    """A `trackbridge worker` subprocess for `settings` on a free web port, logging to `log`;
    with `wait`, returned once /readyz answers. The caller stops it."""
    from worker.config.settings import to_environ
    from worker.local.embedded import free_port

    settings = with_settings(settings, web_port=free_port())
    worker = WorkerProcess({**to_environ(settings), **environ}, log_path=log)
    worker.start()
    if wait:
        try:
            worker.wait_ready(90)
        except BaseException:
            worker.stop(timeout=30)
            raise
    return worker


async def _produce(
    settings: Settings,
    topic: str,
    values: Sequence[bytes],
    keys: Sequence[bytes | None] | None,
    *,
    headers: Sequence[list[tuple[str, bytes]]] | None,
    options: Mapping[str, Any],
) -> list[tuple[int, int]]:
    from worker.clients import producer

    client = producer(settings, client_id="trackbridge-tests", **options)
    await client.start()
    placed: list[tuple[int, int]] = []
    try:
        pending = []
        for index, value in enumerate(values):
            key = None if keys is None else keys[index]
            extra = None if headers is None else headers[index]
            pending.append(await client.send(topic, value, key=key, headers=extra))
            if len(pending) >= 5000:
                placed.extend((meta.partition, meta.offset) for meta in await asyncio.gather(*pending))
                pending = []
        placed.extend((meta.partition, meta.offset) for meta in await asyncio.gather(*pending))
    finally:
        await client.stop()
    return placed


def produce_records(
    settings: Settings,
    topic: str,
    values: Sequence[bytes],
    keys: Sequence[bytes | None] | None = None,
    *,
    headers: Sequence[list[tuple[str, bytes]]] | None = None,
    **options: Any,
) -> list[tuple[int, int]]:
    """Write records to `topic` (with `headers`, and producer `options` such as a larger
    `max_request_size`), wait for their acknowledgements, return each one's (partition, offset)."""
    return asyncio.run(_produce(settings, topic, values, keys, headers=headers, options=options))


async def _consume(
    settings: Settings, topic: str, until: Callable[[list[Any]], bool], timeout: float
) -> list[Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=list(settings.bootstrap_servers), enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    records: list[Any] = []
    try:
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if not batches and until(records):
                break
    finally:
        await consumer.stop()
    return records


def consume_records(
    settings: Settings, topic: str, until: Callable[[list[Any]], bool] | None = None, timeout: float = 10.0
) -> list[Any]:
    """Every record of `topic` from the beginning, read until `until(records)` holds while idle."""
    return asyncio.run(_consume(settings, topic, until or (lambda _: True), timeout))
