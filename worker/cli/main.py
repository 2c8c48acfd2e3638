"""The `trackbridge` command: the parser, and how every subcommand ends (worker/cli/exits.py).

Each command module exposes `register(subparsers)`, which adds its subcommand(s) with the flags
they use and sets `func` (the parsed namespace -> the exit status). `main` runs it and turns every
foreseeable failure into one error line and its documented exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from topics.catalog import CatalogError
from topics.provision import ProvisionError
from worker.cli import console, edge, offline, redrive, serve, topic_commands
from worker.cli.exits import FAILURE, INTERRUPTED, USAGE, CommandError, report
from worker.config.settings import SettingsError
from worker.config.sources import SourcesError

COMMAND_MODULES = (serve, edge, console, topic_commands, redrive, offline)


class _Parser(argparse.ArgumentParser):
    """argparse with the one error format: `trackbridge <command>: error: ...`, status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see --help)\n")


def version() -> str:
    try:
        return metadata.version("trackbridge")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout, not installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trackbridge",
        description="Customer.io Journeys Track API calls -> Data Pipelines calls, over Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"trackbridge {version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    command = args.command if args.command != "topics" else f"topics {args.action}"
    if unknown:
        return report(command, f"unrecognized arguments: {' '.join(unknown)} (see --help)", USAGE)
    # The Kafka client's own complaints (one per retry) would bury the one line a command prints
    # when it gives up; the worker configures logging for itself and logs them.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    try:
        status: int = args.func(args)
    except (SettingsError, SourcesError, CatalogError) as error:
        return report(command, str(error), USAGE)
    except CommandError as error:
        return report(command, str(error), error.status)
    except ProvisionError as error:
        return report(command, str(error), FAILURE)
    except KeyboardInterrupt:
        return INTERRUPTED
    return status


if __name__ == "__main__":
    sys.exit(main())
