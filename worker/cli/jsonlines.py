"""Reading JSON lines (`map`, `send`, `demo`): one Kafka message value per non-blank line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import BinaryIO

from worker.cli.exits import CommandError


def open_input(name: str) -> BinaryIO:
    """The file `name`, or standard input for `-`; an unreadable file is a usage error."""
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")
    except OSError as error:
        raise CommandError(f"{name}: cannot read: {error.strerror or error}") from None


def values(stream: BinaryIO) -> Iterator[bytes]:
    """The message values of a JSON-lines stream: each non-blank line, without its line ending."""
    for line in stream:
        value = line.rstrip(b"\r\n")
        if value.strip():
            yield value


def read_values(name: str) -> Iterator[bytes]:
    """The message values of the file `name` (`-`: standard input), closing it at the end."""
    with open_input(name) as stream:
        yield from values(stream)
