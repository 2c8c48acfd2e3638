"""`trackbridge redrive`: send dead letters back to the input topic once their cause is fixed.

The work is worker/redrive.py's; this is its command line: the selection flags, a progress line
on a terminal, a closing summary (or `--json` for scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

import msgspec
from aiokafka.errors import KafkaError

from worker import redrive
from worker.cli import options
from worker.cli.exits import FAILURE, OK, CommandError
from worker.config.settings import Group
from worker.sealing import sealer_for


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `redrive`."""
    parser = subparsers.add_parser(
        "redrive",
        help="send selected dead letters back to the input topic, with their original credentials",
        description="Read the dead-letter topic and send the original envelope of each selected "
        "record back to the input topic, so the worker processes it again exactly as the first "
        "time (same request_id, same messageIds). Credentials come back from their seal "
        "(TRACKBRIDGE_SEALING_KEYS); a record that cannot be restored is refused and counted. "
        "Resumable: the same selection continues where it stopped.",
    )
    parser.add_argument(
        "--reason", action="append", default=[], metavar="CODE", help="select this reason code (repeatable)"
    )
    parser.add_argument("--source", action="append", default=[], metavar="NAME", help="select this source")
    parser.add_argument(
        "--request-id", action="append", default=[], metavar="ID", help="select this request id"
    )
    parser.add_argument("--since", metavar="TIME", help="received_at at or after TIME (ISO-8601, UTC 'Z')")
    parser.add_argument("--until", metavar="TIME", help="received_at before TIME")
    parser.add_argument("--dry-run", action="store_true", help="count what would be sent; send nothing")
    parser.add_argument(
        "--max-redrives",
        type=int,
        default=redrive.DEFAULT_LIMIT,
        metavar="N",
        help=f"refuse a record already sent back N times (default {redrive.DEFAULT_LIMIT})",
    )
    parser.add_argument("--rate", type=float, metavar="N", help="send at most N records per second")
    parser.add_argument(
        "--group", metavar="ID", help="the consumer group keeping the position (default: one per selection)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(func=_redrive)
    options.with_settings(parser, (Group.CONNECTION, Group.TOPICS, Group.SOURCES, Group.SEALING))


def _redrive(args: argparse.Namespace) -> int:
    settings = options.settings(args)
    options.require_brokers(settings)
    sources = options.required_sources(settings).with_prefix(settings.topic_prefix)
    if args.max_redrives < 1:
        raise CommandError("--max-redrives must be at least 1")
    if args.rate is not None and args.rate <= 0:
        raise CommandError("--rate must be a positive number")
    selection = redrive.Selection(
        reasons=frozenset(args.reason),
        sources=frozenset(args.source),
        request_ids=frozenset(args.request_id),
        since=args.since,
        until=args.until,
    )
    terminal = sys.stderr.isatty() and not args.json
    run = redrive.Redrive(
        settings,
        sources.dead_letter_topic,
        selection,
        sealer=sealer_for(settings.sealing_keys),
        limit=args.max_redrives,
        rate=args.rate,
        dry_run=args.dry_run,
        group=args.group,
        progress=_progress_line if terminal else None,
    )
    try:
        summary = asyncio.run(run.run())
    except LookupError as error:
        raise CommandError(str(error), FAILURE) from None
    except KafkaError as error:
        raise options.unreachable(settings, error) from None
    if terminal:
        print(file=sys.stderr)
    if args.json:
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    else:
        _print_summary(summary, sys.stdout)
    return OK


BAR_WIDTH = 30


def _progress_line(summary: redrive.Summary) -> None:
    """A progress bar on stderr, redrawn in place: read of total, selected, sent, refused."""
    refused = sum(summary.refused.values())
    total = max(summary.total, summary.read, 1)
    done = int(BAR_WIDTH * summary.read / total)
    bar = "#" * done + "." * (BAR_WIDTH - done)
    sys.stderr.write(
        f"\r[{bar}] {100 * summary.read // total:3d}%  read {summary.read}/{total}  "
        f"selected {summary.selected}  sent {summary.sent}  refused {refused}"
    )
    sys.stderr.flush()


def _print_summary(summary: redrive.Summary, out: TextIO) -> None:
    verb = "would send" if summary.dry_run else "sent"
    print(
        f"{summary.dead_letter_topic} -> {summary.input_topic} (position kept by group {summary.group})",
        file=out,
    )
    print(f"read {summary.read}, selected {summary.selected}, {verb} {summary.sent}", file=out)
    for title, counts in (
        ("selected by reason", summary.by_reason),
        ("selected by source", summary.by_source),
        ("refused", summary.refused),
    ):
        if counts:
            print(f"{title}:", file=out)
            for name, count in sorted(counts.items()):
                print(f"  {name}: {count}", file=out)
