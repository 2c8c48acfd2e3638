"""The sources file: which credentials are which source, and where each source's calls go.

Spec §2 fixes the shape; trackbridge writes it in TOML. `load_sources(path)` decodes it with
msgspec into frozen Structs and checks everything that can be checked before the first message,
so a wrong file stops the worker (or `trackbridge map`) with one line that names the key and the
problem, never a traceback and never a half-working worker.

Strictness: the top level and `[destinations.NAME]` tables reject unknown keys (a typo'd filter
key or `skip_topics` would otherwise silently change what is forwarded). A `[[sources]]` entry
ignores unknown keys, as the spec requires (`_test_only_plaintext_api_key`); all of its own keys
are required, so a typo there is still reported, as a missing key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from mapping.pipelines import CALL_TYPES, CallType
from worker.config import validation

DEFAULT_SKIP_TOPIC = "journeys.skipped"


# Kafka's own rule for topic names: 1-249 of [a-zA-Z0-9._-], and not "." or "..".
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BAD_ENUM = re.compile(r"Invalid enum value (.*)")


class SourcesError(Exception):
    """The sources file cannot be used; `str(error)` is one line naming the key path and the problem."""


class Destination(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One `[destinations.NAME]` table: a topic and optional filters.

    Filters are applied in this order and the first that refuses a call names it in the
    `filtered` counts: `types` (keep only these call types), `include_events` /
    `exclude_events` (by `track` event name; other call types are not affected by them),
    `drop_email_only` (drop calls whose userId is the identifying email, spec §6.2).
    """

    topic: str
    types: frozenset[CallType] | None = None
    include_events: frozenset[str] | None = None
    exclude_events: frozenset[str] | None = None
    drop_email_only: bool = False

    @property
    def has_filters(self) -> bool:
        return (
            self.types is not None
            or self.include_events is not None
            or bool(self.exclude_events)
            or self.drop_email_only
        )


class Source(msgspec.Struct, frozen=True):
    """One `[[sources]]` entry: one set of Track credentials (spec §2). Unknown keys are ignored."""

    name: str
    site_id: str
    api_key_sha256: str
    destinations: list[str]


class SourcesConfig(msgspec.Struct, frozen=True):
    """A validated sources file."""

    dead_letter_topic: str
    skip_topic: str
    destinations: dict[str, Destination]
    sources: list[Source]

    def with_prefix(self, prefix: str) -> SourcesConfig:
        """This file with `prefix` on its destination, dead-letter and skip topics: the names on
        the broker (`TRACKBRIDGE_TOPIC_PREFIX`). The one place the prefix is applied to it."""
        if not prefix:
            return self
        return msgspec.structs.replace(
            self,
            dead_letter_topic=prefix + self.dead_letter_topic,
            skip_topic=prefix + self.skip_topic,
            destinations={
                name: msgspec.structs.replace(destination, topic=prefix + destination.topic)
                for name, destination in self.destinations.items()
            },
        )


class _File(msgspec.Struct, forbid_unknown_fields=True):
    dead_letter_topic: str
    sources: list[Source]
    skip_topic: str = DEFAULT_SKIP_TOPIC
    # Converted entry by entry in `parse_sources`, so that an error names the destination
    # (msgspec reports a dict key only as `[...]`).
    destinations: dict[str, Any] = {}


def load_sources(path: str | Path) -> SourcesConfig:
    """Read and validate a sources file; raise `SourcesError` with a one-line message."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SourcesError(f"{path}: cannot read the sources file: {error.strerror or error}") from None
    try:
        return parse_sources(data)
    except SourcesError as error:
        raise SourcesError(f"{path}: {error}") from None


def parse_sources(data: bytes | str) -> SourcesConfig:
    """Decode and validate the TOML text of a sources file; raise `SourcesError` if it is wrong."""
    try:
        file = msgspec.toml.decode(data, type=_File)
    except msgspec.ValidationError as error:
        raise SourcesError(_describe(error)) from None
    except msgspec.DecodeError as error:
        raise SourcesError(f"not valid TOML: {validation.one_line(str(error))}") from None

    destinations: dict[str, Destination] = {}
    for name, table in file.destinations.items():
        where = f"destinations.{_key(name)}"
        try:
            destinations[name] = msgspec.convert(table, Destination)
        except msgspec.ValidationError as error:
            raise SourcesError(_describe(error, where)) from None
    config = SourcesConfig(
        dead_letter_topic=file.dead_letter_topic,
        skip_topic=file.skip_topic,
        destinations=destinations,
        sources=file.sources,
    )
    _check_topics(config)
    _check_destinations(config.destinations)
    _check_sources(config.sources, config.destinations)
    return config


def _check_topics(config: SourcesConfig) -> None:
    _check_topic("dead_letter_topic", config.dead_letter_topic)
    _check_topic("skip_topic", config.skip_topic)
    if config.skip_topic == config.dead_letter_topic:
        raise SourcesError(
            f"skip_topic: {config.skip_topic!r} is also the dead_letter_topic; skips are not errors "
            "and need their own topic"
        )
    reserved = {config.dead_letter_topic: "dead_letter_topic", config.skip_topic: "skip_topic"}
    owners: dict[str, str] = {}
    for name, destination in config.destinations.items():
        where = f"destinations.{_key(name)}.topic"
        _check_topic(where, destination.topic)
        if destination.topic in reserved:
            raise SourcesError(
                f"{where}: {destination.topic!r} is the {reserved[destination.topic]}; "
                "a destination needs a topic of its own"
            )
        if destination.topic in owners:
            raise SourcesError(
                f"{where}: {destination.topic!r} is already the topic of {owners[destination.topic]}; "
                "a source using both would write every call twice"
            )
        owners[destination.topic] = f"destinations.{_key(name)}"


def _check_topic(where: str, topic: str) -> None:
    if not topic:
        raise SourcesError(f"{where}: must not be empty")
    if not _TOPIC.fullmatch(topic) or topic in {".", ".."}:
        raise SourcesError(f"{where}: {topic!r} is not a valid Kafka topic name (1-249 of a-z A-Z 0-9 . _ -)")


def _check_destinations(destinations: Mapping[str, Destination]) -> None:
    for name, destination in destinations.items():
        where = f"destinations.{_key(name)}"
        if not name:
            raise SourcesError("destinations: a destination name must not be empty")
        if destination.types is not None and not destination.types:
            raise SourcesError(f"{where}.types: must not be empty (leave it out to keep every type)")
        if destination.include_events is not None:
            if not destination.include_events:
                raise SourcesError(
                    f"{where}.include_events: must not be empty (leave it out to keep every event)"
                )
            if destination.exclude_events is not None:
                raise SourcesError(f"{where}: set include_events or exclude_events, not both")


def _check_sources(sources: list[Source], destinations: Mapping[str, Destination]) -> None:
    if not sources:
        raise SourcesError("sources: at least one [[sources]] entry is required")
    names: dict[str, int] = {}
    credentials: dict[tuple[str, str], int] = {}
    for index, source in enumerate(sources):
        where = f"sources[{index}]"
        if not source.name:
            raise SourcesError(f"{where}.name: must not be empty")
        if source.name in names:
            raise SourcesError(
                f"{where}.name: duplicate source name {source.name!r} (also sources[{names[source.name]}])"
            )
        names[source.name] = index
        if not source.site_id:
            raise SourcesError(f"{where}.site_id: must not be empty")
        if not _SHA256_HEX.fullmatch(source.api_key_sha256):
            raise SourcesError(
                f"{where}.api_key_sha256: must be 64 lowercase hex digits, the SHA-256 of the API key "
                "(print it with `trackbridge hash-key`)"
            )
        pair = (source.site_id, source.api_key_sha256)
        if pair in credentials:
            raise SourcesError(
                f"{where}: same site_id and api_key_sha256 as sources[{credentials[pair]}]; "
                "one set of credentials is one source"
            )
        credentials[pair] = index
        seen: set[str] = set()
        for position, destination in enumerate(source.destinations):
            if destination not in destinations:
                known = ", ".join(sorted(destinations)) or "none"
                raise SourcesError(
                    f"{where}.destinations[{position}]: unknown destination {destination!r} "
                    f"(defined: {known})"
                )
            if destination in seen:
                raise SourcesError(f"{where}.destinations[{position}]: {destination!r} is listed twice")
            seen.add(destination)


def _describe(error: msgspec.ValidationError, prefix: str = "") -> str:
    """Turn msgspec's "Message - at `$.a[0].b`" into "a[0].b: message", in the file's own words."""
    path, message = validation.parts(error)
    if value := _BAD_ENUM.fullmatch(message):
        message = f"unknown call type {value[1]} (one of {', '.join(CALL_TYPES)})"
    else:
        path, message = validation.in_words(path, message, _key)
    path = (prefix + path).removeprefix(".")
    return f"{path}: {message}" if path else message


def _key(name: str) -> str:
    """A TOML key as it would be written in a dotted key path."""
    return name if _BARE_KEY.fullmatch(name) else msgspec.json.encode(name).decode()
