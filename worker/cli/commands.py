"""The Kafka-facing commands: `worker`, `run`, `demo`, `send`, `tail`, `topics create|list|render`.

Each reads the settings (TRACKBRIDGE_* variables, overridden by flags); a setting or file that
cannot be used stops it with one line on stderr and status 2, before anything connects.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from topics.catalog import CatalogError, Role, build_catalog
from topics.provision import ProvisionError, Status, create, format_table, inspect
from worker.config.settings import (
    EXIT_USAGE,
    Settings,
    SettingsError,
    add_arguments,
    embedded,
    env_name,
    load_settings,
    to_environ,
)
from worker.config.sources import SourcesConfig, SourcesError, load_sources

EXIT_FAILURE: Final = 1
EXIT_INTERRUPTED: Final = 130
DEMO_TIMEOUT: Final = 120.0

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A command cannot go on; `str(error)` is one line for the user."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the Kafka-facing subcommands."""

    def add(name: str, handler: Handler, help_text: str, description: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=description)
        parser.set_defaults(func=_guarded(name, handler))
        return parser

    parser = add(
        "worker",
        _worker,
        "run the stream worker against Kafka (needs TRACKBRIDGE_BOOTSTRAP_SERVERS)",
        "Consume raw Track API calls from the input topic, translate and route them, produce the "
        "records; commit an input's offset only once all its outputs are acknowledged. Stops "
        "cleanly on SIGTERM/SIGINT (status 0).",
    )
    add_arguments(parser)

    parser = add(
        "run",
        _run,
        "provision the topics and run the worker; without bootstrap servers, on an embedded broker",
        "Without TRACKBRIDGE_BOOTSTRAP_SERVERS: start an embedded Kafka-compatible broker (Tansu, in "
        "memory) on a free port, create the topics, run the worker, and stop both on Ctrl-C. With "
        "them: create any missing topics, then run the worker.",
    )
    add_arguments(parser)

    parser = add(
        "demo",
        _demo,
        "embedded broker + worker: send example envelopes and print what each topic received",
        "Start an embedded broker and a worker, send the envelopes of --input, wait until all are "
        "processed, print the records of every destination, dead-letter and skip topic, and stop.",
    )
    parser.add_argument("--input", required=True, metavar="FILE", help="envelopes, one JSON object per line")
    add_arguments(parser)

    parser = add(
        "send",
        _send,
        "send envelopes (JSON lines) to the raw input topic",
        "Produce each non-blank line of FILE (or stdin with -) as one record on the input topic, "
        "value verbatim. Keep one person's calls in one partition with --key-field.",
    )
    parser.add_argument("file", metavar="FILE", help="envelopes, one per line (- for stdin)")
    parser.add_argument(
        "--key-field",
        metavar="FIELD",
        help="use this top-level envelope field as the record key (default: no key)",
    )
    add_arguments(parser)

    parser = add(
        "tail",
        _tail,
        "print a topic's records (key, headers, value) as JSON lines",
        "Print the records of TOPIC (its name on the broker, prefix included), every partition, "
        "one JSON line each: topic, partition, offset, key, headers, value.",
    )
    parser.add_argument("topic", metavar="TOPIC")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N records")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop when no record came for S seconds")
    add_arguments(parser)

    topics = subparsers.add_parser(
        "topics",
        help="create the catalog's topics, compare them with the broker, or render them for Strimzi",
        description="The topic catalog: the input topic, every destination topic of the sources "
        "file, the dead-letter and the skip topic.",
    )
    actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    parser = actions.add_parser("create", help="create missing topics (existing ones are left alone)")
    parser.set_defaults(func=_guarded("topics create", _topics_create))
    add_arguments(parser)
    parser = actions.add_parser(
        "list", help="catalog vs broker: exists, missing, partitions differ (status 1 if any)"
    )
    parser.set_defaults(func=_guarded("topics list", _topics_list))
    add_arguments(parser)
    parser = actions.add_parser(
        "render",
        help="print the catalog as Strimzi KafkaTopic resources (YAML, no broker needed)",
        description="Print one Strimzi KafkaTopic resource per catalog topic as a multi-document "
        "YAML stream on stdout, for `kubectl apply -f -` or a kustomize overlay; the same text "
        "deploy/gen.py writes to an overlay's kafkatopics.yaml. Connects to nothing.",
    )
    parser.set_defaults(func=_guarded("topics render", _topics_render))
    output_format = parser.add_mutually_exclusive_group(required=True)
    output_format.add_argument(
        "--strimzi", action="store_true", help="Strimzi KafkaTopic custom resources (kafka.strimzi.io)"
    )
    parser.add_argument(
        "--cluster",
        required=True,
        metavar="NAME",
        help="the Strimzi Kafka cluster (strimzi.io/cluster label)",
    )
    parser.add_argument("--namespace", metavar="NS", help="set metadata.namespace (default: none)")
    add_arguments(parser)


def _guarded(name: str, handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except (SettingsError, SourcesError, CatalogError) as error:
            return _fail(name, str(error), EXIT_USAGE)
        except CommandError as error:
            return _fail(name, str(error), error.status)
        except ProvisionError as error:
            return _fail(name, str(error), EXIT_FAILURE)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED

    return run


def _fail(name: str, message: str, status: int) -> int:
    print(f"trackbridge {name}: {message}", file=sys.stderr)
    return status


def _sources(settings: Settings, *, required: bool) -> SourcesConfig | None:
    """The sources file; the topic commands do without one, saying their catalog is then the
    input topic alone."""
    if settings.sources is None:
        if required:
            raise CommandError(f"no sources file: set {env_name('sources')} or pass --sources FILE")
        print("no sources file: only the input topic is in the catalog", file=sys.stderr)
        return None
    return load_sources(settings.sources)


def _require_brokers(settings: Settings) -> None:
    if not settings.bootstrap_servers:
        raise CommandError(
            f"{env_name('bootstrap_servers')} is empty: set it (or --bootstrap-servers) to the Kafka "
            "brokers; `trackbridge run` starts an embedded broker instead"
        )


def _worker(args: argparse.Namespace) -> int:
    from worker.runtime.runner import run_worker

    settings, _ = load_settings(args)
    _require_brokers(settings)
    sources = _sources(settings, required=True)
    assert sources is not None
    build_catalog(settings, sources)  # the input topic must not be an output topic
    return run_worker(settings, sources)


def _provision(settings: Settings, sources: SourcesConfig) -> None:
    states = asyncio.run(create(settings, build_catalog(settings, sources)))
    created = [state.spec.name for state in states if state.status is Status.CREATED]
    if created:
        print(f"created topics: {', '.join(created)}", flush=True)
    for state in states:
        if state.status is Status.PARTITIONS_DIFFER:
            print(
                f"warning: {state.spec.name} has {state.partitions} partitions, the catalog says "
                f"{state.spec.partitions}",
                file=sys.stderr,
            )


def _run(args: argparse.Namespace) -> int:
    from worker.local.embedded import EmbeddedBroker
    from worker.runtime.runner import run_worker

    settings, explicit = load_settings(args)
    sources = _sources(settings, required=True)
    assert sources is not None
    build_catalog(settings, sources)
    if settings.bootstrap_servers:
        _provision(settings, sources)
        return run_worker(settings, sources)
    with EmbeddedBroker() as broker:
        settings = embedded(settings, explicit, broker.bootstrap)
        _provision(settings, sources)
        print(
            f"embedded Kafka broker (in memory) listening on {broker.bootstrap}\n"
            f"worker health/metrics on http://127.0.0.1:{settings.web_port}/readyz and /metrics\n"
            f"send envelopes: {env_name('bootstrap_servers')}={broker.bootstrap} trackbridge send FILE\n"
            f"watch a topic:  {env_name('bootstrap_servers')}={broker.bootstrap} trackbridge tail "
            f"{settings.topic(sources.dead_letter_topic)}\n"
            "Ctrl-C stops the worker and the broker.",
            flush=True,
        )
        return run_worker(settings, sources)


def _send(args: argparse.Namespace) -> int:
    from worker.cli.console import ConsoleError, envelope_lines, send_lines

    settings, _ = load_settings(args)
    _require_brokers(settings)
    try:
        count = asyncio.run(send_lines(settings, envelope_lines(Path(args.file)), key_field=args.key_field))
    except ConsoleError as error:
        raise CommandError(str(error)) from None
    except Exception as error:
        raise CommandError(f"sending to {settings.raw_topic} failed: {error!r}", EXIT_FAILURE) from None
    print(f"sent {count} envelope(s) to {settings.raw_topic}", file=sys.stderr)
    return 0


def _tail(args: argparse.Namespace) -> int:
    from worker.cli.console import ConsoleError, tail

    settings, _ = load_settings(args)
    _require_brokers(settings)
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
    except ConsoleError as error:
        raise CommandError(str(error), EXIT_FAILURE) from None
    return 0


def _topics_create(args: argparse.Namespace) -> int:
    settings, _ = load_settings(args)
    _require_brokers(settings)
    sources = _sources(settings, required=False)
    states = asyncio.run(create(settings, build_catalog(settings, sources)))
    print(format_table(states))
    return 0


def _topics_list(args: argparse.Namespace) -> int:
    settings, _ = load_settings(args)
    _require_brokers(settings)
    sources = _sources(settings, required=False)
    states = asyncio.run(inspect(settings, build_catalog(settings, sources)))
    print(format_table(states))
    return 0 if all(state.status is Status.EXISTS for state in states) else EXIT_FAILURE


def _topics_render(args: argparse.Namespace) -> int:
    from topics.strimzi import render_catalog

    if not args.cluster.strip():
        raise CommandError("--cluster must name the Strimzi Kafka cluster")
    settings, _ = load_settings(args)
    sources = _sources(settings, required=False)
    sys.stdout.write(render_catalog(settings, sources, cluster=args.cluster, namespace=args.namespace))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from worker.cli.console import ConsoleError, envelope_lines, send_lines
    from worker.local.embedded import EmbeddedBroker, free_port
    from worker.local.process import WorkerProcess, WorkerProcessError

    settings, explicit = load_settings(args)
    sources = _sources(settings, required=True)
    assert sources is not None and settings.sources is not None
    try:
        lines = list(envelope_lines(Path(args.input)))
    except ConsoleError as error:
        raise CommandError(str(error)) from None
    with EmbeddedBroker() as broker:
        settings = embedded(settings, explicit, broker.bootstrap)
        if "web_port" not in explicit:
            settings = _with(settings, web_port=free_port())
        catalog = build_catalog(settings, sources)
        _provision(settings, sources)
        worker = WorkerProcess(to_environ(settings)).start()
        try:
            worker.wait_ready()
            print(f"embedded broker on {broker.bootstrap}; worker ready (log: {worker.log_path})")
            sent = asyncio.run(send_lines(settings, lines, key_field="request_id"))
            print(f"sent {sent} envelope(s) to {settings.raw_topic}")
            processed = _wait_processed(worker, sent, DEMO_TIMEOUT)
            print(f"the worker processed {processed} of them\n")
            for spec in catalog.topics:
                if spec.role is not Role.INPUT:
                    _print_topic(settings, spec.name, spec.role.value)
        except WorkerProcessError as error:
            raise CommandError(str(error), EXIT_FAILURE) from None
        finally:
            status = worker.stop()
        print(f"worker stopped (status {status}); broker stopped")
        return 0 if status == 0 else EXIT_FAILURE


def _with(settings: Settings, **changes: Any) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, **changes)


_CONSUMED = re.compile(r"^trackbridge_envelopes_consumed_total\{[^}]*\} (\S+)$", re.MULTILINE)


def _wait_processed(worker: Any, expected: int, timeout: float) -> int:
    """Poll the worker's metrics until it counted `expected` envelopes (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = int(sum(float(value) for value in _CONSUMED.findall(worker.metrics_text())))
        if seen >= expected:
            break
        time.sleep(0.2)
    return seen


def _print_topic(settings: Settings, topic: str, role: str) -> None:
    from worker.cli.console import tail

    records: list[Any] = []
    asyncio.run(tail(settings, topic, from_beginning=True, timeout=1.0, emit=records.append))
    print(f"== {topic} ({role}): {len(records)} record(s)")
    for record in records:
        key = None if record.key is None else record.key.decode(errors="replace")
        headers = " ".join(f"{name}={value.decode(errors='replace')}" for name, value in record.headers or ())
        print(f"  [{record.partition}@{record.offset}] key={key} {headers}")
        print(f"    {record.value.decode(errors='replace')}")
    print()
