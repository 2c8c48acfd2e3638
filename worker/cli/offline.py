"""Commands that need no Kafka: `trackbridge map` and `trackbridge hash-key`.

`map` runs envelopes through exactly the worker's code path (`mapping.Translator`, then
`Router.route`) and prints the records the worker would produce, one JSON line each. It is the
way to try a sources file, check a filter or explain a dead letter without a broker.

`hash-key` prints the `api_key_sha256` to write in the sources file for an API key.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import os
import sys

import msgspec

import mapping
from worker.cli import jsonlines, options
from worker.cli.exits import OK, CommandError
from worker.config.settings import Group
from worker.routing import Routed, Router
from worker.sealing import sealer_for


class RecordLine(msgspec.Struct):
    """One line of `trackbridge map` output: a record as the worker would produce it."""

    topic: str
    key: str | None
    value: msgspec.Raw
    headers: dict[str, str]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `map` and `hash-key` subcommands."""
    map_parser = subparsers.add_parser(
        "map",
        help="translate and route envelopes offline, printing the records the worker would produce",
        description=(
            "Read envelopes as JSON lines (one Kafka message value per line; blank lines are "
            "skipped) and print one JSON line per record the worker would produce: "
            '{"topic", "key", "value", "headers"}. A line that is not a valid envelope becomes '
            "a malformed_envelope dead-letter record, like on Kafka. A summary goes to stderr."
        ),
    )
    map_parser.add_argument(
        "input", nargs="?", default="-", metavar="INPUT", help="envelopes file, JSON lines (default: stdin)"
    )
    map_parser.add_argument("-q", "--quiet", action="store_true", help="do not print the summary")
    map_parser.set_defaults(func=run_map)
    options.with_settings(map_parser, (Group.SOURCES, Group.SEALING))

    hash_parser = subparsers.add_parser(
        "hash-key",
        help="print the api_key_sha256 of a Track API key, for the sources file",
        description=(
            "Print the lowercase hex SHA-256 of a Track API key. Without KEY the key is read from "
            "standard input (prompted for without echo on a terminal), so it stays out of the "
            "shell history; one trailing newline is removed."
        ),
    )
    hash_parser.add_argument("key", nargs="?", metavar="KEY", help="the API key (default: read stdin)")
    hash_parser.set_defaults(func=run_hash_key)


def run_map(args: argparse.Namespace) -> int:
    """`trackbridge map`: exit 0 once every envelope is routed, 2 on a bad sources or input file."""
    settings = options.settings(args)
    router = Router(options.required_sources(settings), sealer=sealer_for(settings.sealing_keys))
    stream = jsonlines.open_input(args.input)
    totals = _Totals()
    translate = mapping.Translator()
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer
    try:
        with stream:
            for value in jsonlines.values(stream):
                routed = router.route(value, translate(value))
                totals.add(routed)
                for record in routed.records:
                    line = RecordLine(
                        topic=record.topic,
                        key=None if record.key is None else record.key.decode(),
                        value=msgspec.Raw(record.value),
                        headers={name: data.decode() for name, data in record.headers},
                    )
                    out.write(encoder.encode(line))
                    out.write(b"\n")
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    if not args.quiet:
        print(f"trackbridge map: {totals}", file=sys.stderr)
    return OK


class _Totals:
    """The `map` summary: envelopes read, and the accounting identity over their items."""

    def __init__(self) -> None:
        self.envelopes = self.records = 0
        self.consumed = self.mapped = self.skipped = self.rejected = 0

    def add(self, routed: Routed) -> None:
        self.envelopes += 1
        self.records += len(routed.records)
        self.consumed += routed.items_consumed
        self.mapped += routed.items_mapped
        self.skipped += routed.items_skipped
        self.rejected += routed.items_rejected

    def __str__(self) -> str:
        return (
            f"{self.envelopes} envelopes, {self.consumed} items: {self.mapped} mapped, "
            f"{self.skipped} skipped, {self.rejected} dead-lettered; {self.records} records"
        )


def run_hash_key(args: argparse.Namespace) -> int:
    """`trackbridge hash-key`: print the digest; exit 2 when the key is empty."""
    key: bytes
    if args.key is not None:
        key = os.fsencode(args.key)
    elif sys.stdin.isatty():
        key = getpass.getpass("API key: ").encode()
    else:
        key = sys.stdin.buffer.read().removesuffix(b"\n").removesuffix(b"\r")
    if not key:
        raise CommandError("the API key is empty")
    if b"\n" in key:
        raise CommandError("expected one API key, got several lines")
    print(hashlib.sha256(key).hexdigest())
    return OK
