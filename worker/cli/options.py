"""What the subcommands share: their settings flags, the sources file, the brokers and the web port."""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Iterable

from aiokafka.errors import KafkaConnectionError

from worker.cli.exits import FAILURE, CommandError
from worker.config.settings import Group, Settings, add_arguments, env_name, load_settings
from worker.config.sources import SourcesConfig, load_sources

CONNECTION = (Group.CONNECTION,)
TOPICS = (Group.CONNECTION, Group.TOPICS)
CATALOG = (Group.TOPICS, Group.SOURCES, Group.PROVISIONING)
PROVISION = (Group.CONNECTION, *CATALOG)
WORKER = (Group.CONNECTION, Group.TOPICS, Group.SOURCES, Group.WORKER, Group.SEALING)
EMBEDDED = (Group.TOPICS, Group.SOURCES, Group.WORKER, Group.PROVISIONING, Group.SEALING)
EDGE = (Group.CONNECTION, Group.TOPICS, Group.SOURCES, Group.EDGE)
EVERYTHING = tuple(Group)


def with_settings(
    parser: argparse.ArgumentParser, groups: Iterable[Group], extra: Iterable[str] = ()
) -> argparse.ArgumentParser:
    """Give `parser` the flags of `groups` (and of the `extra` settings); every other setting
    comes from the environment."""
    add_arguments(parser, groups, extra)
    return parser


def settings(args: argparse.Namespace) -> Settings:
    """The settings: TRACKBRIDGE_* variables, overridden by the flags the command offers."""
    loaded, _ = load_settings(args)
    return loaded


def sources(settings: Settings, *, required: bool) -> SourcesConfig | None:
    """The sources file; the topic commands do without one, saying their catalog is then the
    input topic alone."""
    if settings.sources is None:
        if required:
            raise CommandError(f"no sources file: set {env_name('sources')} or pass --sources FILE")
        print("no sources file: only the input topic is in the catalog", file=sys.stderr)
        return None
    return load_sources(settings.sources)


def required_sources(settings: Settings) -> SourcesConfig:
    config = sources(settings, required=True)
    assert config is not None
    return config


def require_brokers(settings: Settings) -> None:
    if not settings.bootstrap_servers:
        raise CommandError(
            f"{env_name('bootstrap_servers')} is empty: set it (or --bootstrap-servers) to the Kafka "
            "brokers; `trackbridge run` starts an embedded broker instead"
        )


def unreachable(settings: Settings, error: BaseException) -> CommandError:
    """The error for a Kafka client that could not reach the brokers or was refused by them."""
    servers = ",".join(settings.bootstrap_servers)
    if isinstance(error, KafkaConnectionError):
        return CommandError(f"cannot reach the Kafka brokers at {servers}", FAILURE)
    return CommandError(f"the Kafka brokers at {servers} refused: {error}", FAILURE)


def require_free_port(host: str, port: int, setting: str = "web_port") -> None:
    """Fail before anything starts when a port (the `setting` one) cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise CommandError(
                f"cannot serve on {host}:{port} ({error.strerror or error}); set "
                f"{env_name(setting)} or --{setting.replace('_', '-')} to a free port",
                FAILURE,
            ) from None
