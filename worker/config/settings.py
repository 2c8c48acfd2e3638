"""Worker settings: one msgspec Struct, read from `TRACKBRIDGE_*` variables, overridden by flags.

Every Kafka-facing command (`worker`, `run`, `demo`, `send`, `tail`, `topics`) reads the same
settings, so one environment configures them all. `load_settings` validates everything that can
be checked before connecting and raises `SettingsError` with one line naming the variable or
flag; commands turn that into exit status 2 without a traceback.

The table of keys lives here, in `FIELDS` (name, flag group, help); the settings table of
docs/reference.md lists it in the same order, and each subcommand offers the flags of the groups it
uses.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import enum
import os
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, NamedTuple

import msgspec

from worker.config import validation

ENV_PREFIX: Final = "TRACKBRIDGE_"
EXIT_USAGE: Final = 2

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "text"]

SEALING_KEY_BYTES: Final = 32
Positive = msgspec.Meta(gt=0)
AtLeastOne = msgspec.Meta(ge=1)

# The fetch wait used with the embedded broker: Tansu answers a fetch only when the wait runs
# out, so the wait is the floor of end-to-end latency there (measured: p99 790 ms -> 120 ms at
# 1,000 calls/s going from 1,500 ms to 20 ms).
EMBEDDED_FETCH_MAX_WAIT_MS: Final = 20
# Tansu holds a first JoinGroup for the whole rebalance timeout: keep both short when embedded.
EMBEDDED_SESSION_TIMEOUT: Final = 3.0
EMBEDDED_REBALANCE_TIMEOUT: Final = 1.0


class SettingsError(Exception):
    """The settings cannot be used; `str(error)` is one line naming the variable or flag."""


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything the worker and the Kafka commands need to know about their environment."""

    bootstrap_servers: tuple[str, ...] = ()
    security_protocol: SecurityProtocol = "PLAINTEXT"
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: str | None = None
    group_id: str = "trackbridge"
    input_topic: str = "journeys.track.raw"
    topic_prefix: str = ""
    sources: str | None = None
    web_host: str = "0.0.0.0"
    web_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 6066
    batch_size: Annotated[int, AtLeastOne] = 500
    batch_timeout: Annotated[float, Positive] = 0.05
    fetch_max_wait_ms: Annotated[int, msgspec.Meta(ge=0)] = 500
    session_timeout: Annotated[float, Positive] = 30.0
    rebalance_timeout: Annotated[float, Positive] = 30.0
    commit_interval: Annotated[float, Positive] = 1.0
    produce_timeout: Annotated[float, Positive] = 30.0
    shutdown_timeout: Annotated[float, Positive] = 30.0
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "text"
    broker_timeout: Annotated[float, Positive] = 30.0
    enable_idempotence: bool = False
    input_partitions: Annotated[int, AtLeastOne] = 12
    output_partitions: Annotated[int, AtLeastOne] = 12
    replication_factor: Annotated[int, AtLeastOne] = 3
    sealing_keys: tuple[str, ...] = ()
    edge_host: str = "0.0.0.0"
    edge_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    edge_tls_certfile: str | None = None
    edge_tls_keyfile: str | None = None
    edge_produce_timeout: Annotated[float, Positive] = 5.0
    edge_linger_ms: Annotated[int, msgspec.Meta(ge=0)] = 0
    edge_batch_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 512 * 1024

    def topic(self, name: str) -> str:
        """A topic name as it is on the broker: with `topic_prefix`."""
        return self.topic_prefix + name

    @property
    def raw_topic(self) -> str:
        """The prefixed input topic."""
        return self.topic(self.input_topic)

    @property
    def heartbeat_interval(self) -> float:
        """A third of the session timeout, at most 3 s (Kafka's own rule of thumb)."""
        return min(3.0, self.session_timeout / 3)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for SSL and SASL_SSL (system CAs unless `ssl_cafile`), else None."""
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ssl_cafile)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def kafka_auth(self) -> dict[str, Any]:
        """Security keyword arguments for aiokafka clients (producer, consumer, admin)."""
        auth: dict[str, Any] = {"security_protocol": self.security_protocol}
        context = self.ssl_context()
        if context is not None:
            auth["ssl_context"] = context
        if self.security_protocol.startswith("SASL_"):
            auth["sasl_mechanism"] = self.sasl_mechanism
            auth["sasl_plain_username"] = self.sasl_username
            auth["sasl_plain_password"] = self.sasl_password
        return auth

    def faust_credentials(self) -> Any:
        """The same security settings as Faust's `broker_credentials` (None for PLAINTEXT)."""
        import faust

        context = self.ssl_context()
        if self.security_protocol.startswith("SASL_"):
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=context,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None

    def edge_ssl_context(self) -> ssl.SSLContext | None:
        """The edge's server TLS context when `edge_tls_certfile` is set, else None (plain HTTP)."""
        if not self.edge_tls_certfile:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.edge_tls_certfile, self.edge_tls_keyfile)
        return context

    def broker_url(self) -> str:
        """The bootstrap servers in Faust's URL form (`kafka://h1:9092;h2:9092`)."""
        return "kafka://" + ";".join(self.bootstrap_servers)


class Group(enum.StrEnum):
    """Flag groups: each subcommand offers the groups of the settings it uses."""

    CONNECTION = "connection"
    TOPICS = "topics"
    SOURCES = "sources"
    WORKER = "worker"
    PROVISIONING = "provisioning"
    SEALING = "sealing"
    EDGE = "edge"


GROUP_TITLES: Final[Mapping[Group, str]] = {
    Group.CONNECTION: "Kafka connection",
    Group.TOPICS: "topic names",
    Group.SOURCES: "sources file",
    Group.WORKER: "worker",
    Group.PROVISIONING: "topic provisioning",
    Group.SEALING: "dead-letter sealing",
    Group.EDGE: "Track API edge",
}


class Field(NamedTuple):
    """One setting: its flag group and its help text."""

    group: Group
    help: str


# One entry per key, in the order of the reference table (docs/reference.md). The variable is
# TRACKBRIDGE_<KEY>, the flag --<key with dashes>.
FIELDS: Final[Mapping[str, Field]] = {
    "bootstrap_servers": Field(
        Group.CONNECTION,
        "Kafka bootstrap servers, comma-separated host:port. Empty: `worker` refuses "
        "to start; `run` and `demo` start the embedded broker.",
    ),
    "security_protocol": Field(
        Group.CONNECTION,
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    ),
    "ssl_cafile": Field(
        Group.CONNECTION,
        "CA bundle (PEM) to verify the brokers; default: the system CAs (SSL, SASL_SSL).",
    ),
    "ssl_certfile": Field(
        Group.CONNECTION,
        "Client certificate (PEM) for mutual TLS.",
    ),
    "ssl_keyfile": Field(
        Group.CONNECTION,
        "Private key (PEM) of the client certificate.",
    ),
    "sasl_mechanism": Field(
        Group.CONNECTION,
        "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_PLAINTEXT, SASL_SSL).",
    ),
    "sasl_username": Field(
        Group.CONNECTION,
        "SASL user name.",
    ),
    "sasl_password": Field(
        Group.CONNECTION,
        "SASL password.",
    ),
    "group_id": Field(
        Group.WORKER,
        "Consumer group id (also the Faust app id).",
    ),
    "input_topic": Field(
        Group.TOPICS,
        "Topic of raw Track API calls, before the prefix.",
    ),
    "topic_prefix": Field(
        Group.TOPICS,
        "Prefix added to every topic name: the input topic and the sources file's "
        "destination, dead-letter and skip topics.",
    ),
    "sources": Field(
        Group.SOURCES,
        "The sources file (TOML); `--sources` on the command line.",
    ),
    "web_host": Field(
        Group.WORKER,
        "Address the health/metrics web server binds.",
    ),
    "web_port": Field(
        Group.WORKER,
        "Port of the health, readiness and metrics web server.",
    ),
    "batch_size": Field(
        Group.WORKER,
        "Most input records processed as one batch (one fetch).",
    ),
    "batch_timeout": Field(
        Group.WORKER,
        "Seconds a fetch waits for the first record of a batch.",
    ),
    "fetch_max_wait_ms": Field(
        Group.WORKER,
        "How long the broker may hold a fetch waiting for data (ms); 20 by default with the embedded broker.",
    ),
    "session_timeout": Field(
        Group.WORKER,
        "Consumer group session timeout, seconds (3 with the embedded broker).",
    ),
    "rebalance_timeout": Field(
        Group.WORKER,
        "Consumer group rebalance timeout, seconds (1 with the embedded broker).",
    ),
    "commit_interval": Field(
        Group.WORKER,
        "Seconds between offset commits of acknowledged batches.",
    ),
    "produce_timeout": Field(
        Group.WORKER,
        "Seconds an output may wait for its acknowledgement before its whole batch is "
        "sent again (its input offsets stay uncommitted meanwhile).",
    ),
    "shutdown_timeout": Field(
        Group.WORKER,
        "Seconds a stopping worker may take to finish and commit its batch in flight "
        "before it exits anyway (status 1; the batch is read again).",
    ),
    "log_level": Field(
        Group.WORKER,
        "DEBUG, INFO, WARNING, ERROR or CRITICAL.",
    ),
    "log_format": Field(
        Group.WORKER,
        "json (one JSON object per line, the traceback as a field; the image's default) or text.",
    ),
    "broker_timeout": Field(
        Group.WORKER,
        "Seconds without an answer from any broker after which the worker reports itself not ready "
        "and its lag as unknown.",
    ),
    "enable_idempotence": Field(
        Group.WORKER,
        "Idempotent producer (true/false). Keep false with the embedded broker, which refuses it.",
    ),
    "input_partitions": Field(
        Group.PROVISIONING,
        "Partitions of the input topic when `topics create` makes it.",
    ),
    "output_partitions": Field(
        Group.PROVISIONING,
        "Partitions of destination, dead-letter and skip topics made by `topics create`.",
    ),
    "replication_factor": Field(
        Group.PROVISIONING,
        "Replication factor of topics made by `topics create` (1 when embedded).",
    ),
    "sealing_keys": Field(
        Group.SEALING,
        "Keys that seal the credentials (or the whole input) a dead letter keeps, so `trackbridge "
        "redrive` can send it back: comma-separated, each 32 random bytes in base64 (`openssl rand "
        "-base64 32`); the first seals, all unseal. Empty: dead letters are redacted and cannot be "
        "redriven with their credentials. A secret: set it from a Kubernetes Secret.",
    ),
    "edge_host": Field(
        Group.EDGE,
        "Address the Track API edge binds.",
    ),
    "edge_port": Field(
        Group.EDGE,
        "Port of the Track API edge: the Track API paths, /healthz, /readyz and /metrics.",
    ),
    "edge_tls_certfile": Field(
        Group.EDGE,
        "Server certificate chain (PEM) for the edge to serve HTTPS; unset: plain HTTP "
        "(usually an ingress terminates TLS).",
    ),
    "edge_tls_keyfile": Field(
        Group.EDGE,
        "Private key (PEM) of the edge's certificate (when not inside the certificate file).",
    ),
    "edge_produce_timeout": Field(
        Group.EDGE,
        "Seconds the edge waits for the broker to acknowledge an envelope before it answers 503.",
    ),
    "edge_linger_ms": Field(
        Group.EDGE,
        "How long the edge's producer waits to fill a batch (ms); adds at most this to a request. "
        "0: under load, a batch is what arrives while the previous one is in flight.",
    ),
    "edge_batch_bytes": Field(
        Group.EDGE,
        "Most bytes of envelopes the edge's producer sends to one partition in one request.",
    ),
}

EDGE_SHARED: Final = ("log_level", "log_format", "enable_idempotence", "shutdown_timeout")
"""Settings of the worker group that `trackbridge edge` uses too (and offers as flags)."""

_FLAG_ONLY_METAVAR: Final = {
    "sources": "FILE",
    "bootstrap_servers": "HOST:PORT,...",
    "sealing_keys": "KEY,...",
}
_LISTS: Final = ("bootstrap_servers", "sealing_keys")


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser, groups: Iterable[Group], extra: Iterable[str] = ()
) -> None:
    """Add one flag per setting of `groups` (and per `extra` setting of another group), a titled
    argument group each; an absent flag leaves the variable or the default in force. Settings of
    other groups are still read from the environment."""
    wanted = set(groups)
    extras = set(extra)
    for group in Group:
        fields = [f for f, spec in FIELDS.items() if spec.group is group and (group in wanted or f in extras)]
        if not fields:
            continue
        section = parser.add_argument_group(f"{GROUP_TITLES[group]} (flags override {ENV_PREFIX}* variables)")
        for field in fields:
            text = FIELDS[field].help
            help_text = f"{text} [{env_name(field)}]"
            if field == "enable_idempotence":
                section.add_argument(
                    flag_name(field),
                    dest=field,
                    action=argparse.BooleanOptionalAction,
                    default=None,
                    help=help_text,
                )
            else:
                metavar = _FLAG_ONLY_METAVAR.get(field, field.upper())
                section.add_argument(
                    flag_name(field), dest=field, default=None, metavar=metavar, help=help_text
                )


def load_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, frozenset[str]]:
    """Settings from `environ` (default: the process environment) overridden by `args`' flags.

    Returns the settings and the names of the keys that were given explicitly (so that an
    embedded broker only adjusts the ones left to their defaults). Raises `SettingsError`.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for field in FIELDS:
        value = environ.get(env_name(field))
        if value is not None and value != "":
            raw[field], origin[field] = value, env_name(field)
        flag = None if args is None else getattr(args, field, None)
        if flag is not None:
            raw[field], origin[field] = flag, flag_name(field)
    for field in _LISTS:
        if field in raw:
            raw[field] = [item.strip() for item in str(raw[field]).split(",") if item.strip()]
    for field in ("security_protocol", "sasl_mechanism", "log_level"):
        if isinstance(raw.get(field), str):
            raw[field] = raw[field].strip().upper()
    if isinstance(raw.get("log_format"), str):
        raw["log_format"] = raw["log_format"].strip().lower()
    if isinstance(raw.get("enable_idempotence"), str):
        raw["enable_idempotence"] = raw["enable_idempotence"].strip().lower()
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as error:
        raise SettingsError(_describe(error, origin)) from None
    _check(settings, origin)
    return settings, frozenset(raw)


def to_environ(settings: Settings) -> dict[str, str]:
    """`settings` as TRACKBRIDGE_* variables, for a child process (None values are left out)."""
    environ: dict[str, str] = {}
    for field in FIELDS:
        value = getattr(settings, field)
        if value is None:
            continue
        if field in _LISTS:
            text = ",".join(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        environ[env_name(field)] = text
    return environ


def embedded(settings: Settings, explicit: frozenset[str], bootstrap: str) -> Settings:
    """`settings` pointed at an embedded broker, with its tuned defaults where none was given."""
    changes: dict[str, Any] = {"bootstrap_servers": (bootstrap,), "security_protocol": "PLAINTEXT"}
    tuned = {
        "fetch_max_wait_ms": EMBEDDED_FETCH_MAX_WAIT_MS,
        "session_timeout": EMBEDDED_SESSION_TIMEOUT,
        "rebalance_timeout": EMBEDDED_REBALANCE_TIMEOUT,
        "replication_factor": 1,
        "enable_idempotence": False,  # Tansu refuses idempotent producers
    }
    for field, value in tuned.items():
        if field not in explicit or field == "enable_idempotence":
            changes[field] = value
    return msgspec.structs.replace(settings, **changes)


def _check(settings: Settings, origin: Mapping[str, str]) -> None:
    def where(field: str) -> str:
        return origin.get(field, env_name(field))

    for server in settings.bootstrap_servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise SettingsError(f"{where('bootstrap_servers')}: {server!r} is not host:port")
    for field in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "edge_tls_certfile", "edge_tls_keyfile"):
        path = getattr(settings, field)
        if path is not None and not Path(path).is_file():
            raise SettingsError(f"{where(field)}: {path!r} is not a readable file")
    if settings.ssl_keyfile and not settings.ssl_certfile:
        raise SettingsError(f"{where('ssl_keyfile')}: needs {env_name('ssl_certfile')} too")
    if settings.security_protocol.startswith("SASL_") and not (
        settings.sasl_username and settings.sasl_password
    ):
        raise SettingsError(
            f"{where('security_protocol')}: {settings.security_protocol} needs "
            f"{env_name('sasl_username')} and {env_name('sasl_password')}"
        )
    if settings.sources is not None and not Path(settings.sources).is_file():
        raise SettingsError(f"{where('sources')}: {settings.sources!r} is not a readable file")
    for position, key in enumerate(settings.sealing_keys, 1):
        try:
            size = len(base64.b64decode(key, validate=True))
        except (binascii.Error, ValueError):
            size = 0
        if size != SEALING_KEY_BYTES:
            raise SettingsError(
                f"{where('sealing_keys')}: key {position} is not {SEALING_KEY_BYTES} bytes of base64"
            )
    if not settings.group_id:
        raise SettingsError(f"{where('group_id')}: must not be empty")
    if not settings.input_topic:
        raise SettingsError(f"{where('input_topic')}: must not be empty")
    if settings.session_timeout > 90:
        raise SettingsError(f"{where('session_timeout')}: at most 90 seconds (the broker request timeout)")
    if settings.edge_tls_keyfile and not settings.edge_tls_certfile:
        raise SettingsError(f"{where('edge_tls_keyfile')}: needs {env_name('edge_tls_certfile')} too")
    if settings.edge_tls_certfile:
        try:
            settings.edge_ssl_context()
        except (OSError, ssl.SSLError) as error:
            raise SettingsError(
                f"{where('edge_tls_certfile')}: cannot load the edge's TLS files: {error}"
            ) from None
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        try:
            settings.ssl_context()
        except (OSError, ssl.SSLError) as error:
            raise SettingsError(f"{where('ssl_certfile')}: cannot load the TLS files: {error}") from None


def _describe(error: msgspec.ValidationError, origin: Mapping[str, str]) -> str:
    """msgspec's "Expected `int` >= 1 - at `$.batch_size`" as "TRACKBRIDGE_BATCH_SIZE: expected ..."."""
    path, message = validation.in_words(*validation.parts(error))
    field = path.removeprefix(".")
    return f"{origin.get(field, env_name(field))}: {message}" if field else message
