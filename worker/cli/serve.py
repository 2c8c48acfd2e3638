"""`trackbridge worker`, `run` and `demo`: the commands that start the worker.

The runtime (worker/runtime) runs the worker; these commands only check what can be checked
before anything starts -- settings, the sources file, the catalog, the web port -- and provision
topics or an embedded broker when asked to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
import time
from collections.abc import Iterator
from typing import Any, Final

import msgspec

from topics.catalog import Role
from topics.provision import Status
from worker import topology, web
from worker.cli import console, jsonlines, options
from worker.cli.exits import FAILURE, OK, CommandError
from worker.config.settings import Settings, embedded, env_name, load_settings, to_environ
from worker.config.sources import SourcesConfig
from worker.metrics import ENVELOPES_CONSUMED

DEMO_TIMEOUT: Final = 120.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `worker`, `run` and `demo`."""
    parser = subparsers.add_parser(
        "worker",
        help="run the stream worker against Kafka (needs TRACKBRIDGE_BOOTSTRAP_SERVERS)",
        description="Consume raw Track API calls from the input topic, translate and route them, "
        "produce the records; commit an input's offset only once all its outputs are acknowledged. "
        "Stops cleanly on SIGTERM/SIGINT (status 0).",
    )
    parser.set_defaults(func=_worker)
    options.with_settings(parser, options.WORKER)

    parser = subparsers.add_parser(
        "run",
        help="provision the topics and run the worker; without bootstrap servers, on an embedded broker",
        description="Without TRACKBRIDGE_BOOTSTRAP_SERVERS: start an embedded Kafka-compatible broker "
        "(Tansu, in memory) on a free port, create the topics, run the worker, and stop both on "
        "Ctrl-C. With them: create any missing topics, then run the worker.",
    )
    parser.set_defaults(func=_run)
    options.with_settings(parser, options.EVERYTHING)

    parser = subparsers.add_parser(
        "demo",
        help="embedded broker + worker: send example envelopes and print what each topic received",
        description="Start an embedded broker and a worker, send the envelopes of --input, wait until "
        "all are processed, print the records of every destination, dead-letter and skip topic, "
        "and stop.",
    )
    parser.add_argument("--input", required=True, metavar="FILE", help="envelopes, one JSON object per line")
    parser.set_defaults(func=_demo)
    options.with_settings(parser, options.EMBEDDED)


def _worker(args: argparse.Namespace) -> int:
    from worker.runtime.runner import run_worker

    settings = options.settings(args)
    options.require_brokers(settings)
    sources = options.required_sources(settings)
    topology.catalog(settings, sources)  # the input topic must not be an output topic
    options.require_free_port(settings.web_host, settings.web_port)
    return run_worker(settings, sources)


def _provision(settings: Settings, sources: SourcesConfig) -> None:
    states = asyncio.run(topology.create_topics(settings, topology.catalog(settings, sources)))
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


@contextlib.contextmanager
def _embedded_broker() -> Iterator[Any]:
    """A running embedded broker; a failure to start it is one error line (status 1)."""
    from worker.local.embedded import EmbeddedBroker, EmbeddedBrokerError

    try:
        broker = EmbeddedBroker().__enter__()
    except EmbeddedBrokerError as error:
        raise CommandError(
            f"{error}; or set {env_name('bootstrap_servers')} to your Kafka brokers", FAILURE
        ) from None
    try:
        yield broker
    finally:
        broker.__exit__(None, None, None)


def _run(args: argparse.Namespace) -> int:
    from worker.runtime.runner import run_worker

    settings, explicit = load_settings(args)
    sources = options.required_sources(settings)
    topology.catalog(settings, sources)
    options.require_free_port(settings.web_host, settings.web_port)
    options.require_free_port(settings.edge_host, settings.edge_port, "edge_port")
    if settings.bootstrap_servers:
        _provision(settings, sources)
        with _edge_beside(settings):
            return run_worker(settings, sources)
    with _embedded_broker() as broker:
        settings = embedded(settings, explicit, broker.bootstrap)
        _provision(settings, sources)
        with _edge_beside(settings) as edge:
            pages = f"http://127.0.0.1:{settings.web_port}{web.READYZ} and {web.METRICS}"
            print(
                f"embedded Kafka broker (in memory) listening on {broker.bootstrap}\n"
                f"worker health/metrics on {pages}\n"
                f"Track API edge on {edge.url} (log: {edge.log_path}): point a Customer.io client here\n"
                f"send envelopes: {env_name('bootstrap_servers')}={broker.bootstrap} trackbridge send FILE\n"
                f"watch a topic:  {env_name('bootstrap_servers')}={broker.bootstrap} trackbridge tail "
                f"{settings.topic(sources.dead_letter_topic)}\n"
                "Ctrl-C stops the worker, the edge and the broker.",
                flush=True,
            )
            return run_worker(settings, sources)


@contextlib.contextmanager
def _edge_beside(settings: Settings) -> Iterator[Any]:
    """`trackbridge edge` as a child process for as long as the worker runs (its JSON log goes to
    a temporary file); stopped with SIGTERM, after the worker."""
    from worker.local.process import EdgeProcess, WorkerProcessError

    edge = EdgeProcess(to_environ(settings)).start()
    try:
        if not edge.serving_soon():
            raise CommandError(f"the edge did not start; log: {edge.log_path}", FAILURE)
        yield edge
    except WorkerProcessError as error:
        raise CommandError(str(error), FAILURE) from None
    finally:
        edge.stop(timeout=settings.shutdown_timeout + 5)


def _demo(args: argparse.Namespace) -> int:
    from worker.local.embedded import free_port
    from worker.local.process import WorkerProcess, WorkerProcessError

    settings, explicit = load_settings(args)
    sources = options.required_sources(settings)
    lines = list(jsonlines.read_values(args.input))
    with _embedded_broker() as broker:
        settings = embedded(settings, explicit, broker.bootstrap)
        if "web_port" not in explicit:
            settings = msgspec.structs.replace(settings, web_port=free_port())
        catalog = topology.catalog(settings, sources)
        _provision(settings, sources)
        worker = WorkerProcess(to_environ(settings)).start()
        try:
            worker.wait_ready()
            print(f"embedded broker on {broker.bootstrap}; worker ready (log: {worker.log_path})")
            sent = asyncio.run(console.send_lines(settings, lines, key_field="request_id"))
            print(f"sent {sent} envelope(s) to {settings.raw_topic}")
            processed = _wait_processed(worker, sent, DEMO_TIMEOUT)
            print(f"the worker processed {processed} of them\n")
            for spec in catalog.topics:
                if spec.role is not Role.INPUT:
                    _print_topic(settings, spec.name, spec.role.value)
        except WorkerProcessError as error:
            raise CommandError(str(error), FAILURE) from None
        finally:
            status = worker.stop()
        print(f"worker stopped (status {status}); broker stopped")
        return OK if status == 0 else FAILURE


_CONSUMED = re.compile(rf"^{ENVELOPES_CONSUMED.name}\{{[^}}]*\}} (\S+)$", re.MULTILINE)


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
    records: list[Any] = []
    asyncio.run(console.tail(settings, topic, from_beginning=True, timeout=1.0, emit=records.append))
    print(f"== {topic} ({role}): {len(records)} record(s)")
    for record in records:
        key = None if record.key is None else record.key.decode(errors="replace")
        headers = " ".join(f"{name}={value.decode(errors='replace')}" for name, value in record.headers or ())
        print(f"  [{record.partition}@{record.offset}] key={key} {headers}")
        print(f"    {record.value.decode(errors='replace')}")
    print()
