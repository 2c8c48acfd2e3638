"""`trackbridge topics create|list|render`: the topic catalog on the broker, or as Strimzi resources."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from topics.catalog import Catalog
from topics.provision import Status, TopicState, format_table
from topics.strimzi import render
from worker import topology
from worker.cli import options
from worker.cli.exits import FAILURE, OK, CommandError
from worker.config.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `topics` and its actions."""
    topics = subparsers.add_parser(
        "topics",
        help="create the catalog's topics, compare them with the broker, or render them for Strimzi",
        description="The topic catalog: the input topic, every destination topic of the sources "
        "file, the dead-letter and the skip topic.",
    )
    actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    parser = actions.add_parser("create", help="create missing topics (existing ones are left alone)")
    parser.set_defaults(func=_create)
    options.with_settings(parser, options.PROVISION)
    parser = actions.add_parser(
        "list", help="catalog vs broker: exists, missing, partitions differ (status 1 if any)"
    )
    parser.set_defaults(func=_list)
    options.with_settings(parser, options.PROVISION)
    parser = actions.add_parser(
        "render",
        help="print the catalog as Strimzi KafkaTopic resources (YAML, no broker needed)",
        description="Print one Strimzi KafkaTopic resource per catalog topic as a multi-document "
        "YAML stream on stdout, for `kubectl apply -f -` or a kustomize overlay; the same text "
        "deploy/gen.py writes to an overlay's kafkatopics.yaml. Connects to nothing.",
    )
    parser.set_defaults(func=_render)
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
    options.with_settings(parser, options.CATALOG)


def _create(args: argparse.Namespace) -> int:
    states = _on_broker(args, topology.create_topics)
    print(format_table(states))
    return OK


def _list(args: argparse.Namespace) -> int:
    states = _on_broker(args, topology.inspect_topics)
    print(format_table(states))
    return OK if all(state.status is Status.EXISTS for state in states) else FAILURE


def _on_broker(
    args: argparse.Namespace, action: Callable[[Settings, Catalog], Coroutine[Any, Any, list[TopicState]]]
) -> list[TopicState]:
    """The catalog's topics as `action` leaves them on the settings' brokers."""
    settings = options.settings(args)
    options.require_brokers(settings)
    catalog = topology.catalog(settings, options.sources(settings, required=False))
    return asyncio.run(action(settings, catalog))


def _render(args: argparse.Namespace) -> int:
    if not args.cluster.strip():
        raise CommandError("--cluster must name the Strimzi Kafka cluster")
    settings = options.settings(args)
    catalog = topology.catalog(settings, options.sources(settings, required=False))
    sys.stdout.write(render(catalog, cluster=args.cluster, namespace=args.namespace))
    return OK
