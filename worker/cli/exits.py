"""How every `trackbridge` command ends: its exit status and its one-line error.

| status | meaning |
| 0   | done |
| 1   | a runtime failure: the brokers unreachable, a topic missing, a port in use, the worker crashed |
| 2   | usage or configuration: a bad flag or setting, an unreadable or invalid file |
| 130 | interrupted (Ctrl-C) |

An error is one line on stderr, `trackbridge <command>: error: <message>`, never a traceback.
"""

from __future__ import annotations

import sys
from typing import Final

OK: Final = 0
FAILURE: Final = 1
USAGE: Final = 2
INTERRUPTED: Final = 130

STATUSES: Final = {
    OK: "done",
    FAILURE: "a runtime failure: the brokers unreachable, a topic missing, a port in use, the worker crashed",
    USAGE: "usage or configuration: a bad flag or setting, an unreadable or invalid file",
    INTERRUPTED: "interrupted (Ctrl-C)",
}
"""Every exit status a command may end with, as docs/reference.md lists them."""


class CommandError(Exception):
    """A command cannot go on; `str(error)` is one line for the user, `status` its exit status."""

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.status = status


def report(command: str, message: str, status: int) -> int:
    """Print `message` as the command's one error line; return `status`."""
    print(f"trackbridge {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return status
