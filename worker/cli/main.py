"""The `trackbridge` command: one subcommand per module, each registering itself."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from worker.cli import commands, offline

# Each command module exposes `register(subparsers)`, which adds its subcommand(s) and sets
# `func` (taking the parsed namespace, returning the exit status) as the parser default.
COMMAND_MODULES = (offline, commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackbridge",
        description="Customer.io Journeys Track API calls -> Data Pipelines calls, over Kafka.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
