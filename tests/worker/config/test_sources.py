"""The sources file: what a valid file decodes to, and one clear line for each way it can be wrong."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from worker.config.sources import (
    DEFAULT_SKIP_TOPIC,
    Destination,
    SourcesConfig,
    SourcesError,
    load_sources,
    parse_sources,
)

ROOT = Path(__file__).resolve().parents[3]
TEST_CONFIG = ROOT / "tests" / "mapping" / "vectors" / "test_config.json"
EXAMPLE = ROOT / "examples" / "sources.toml"

Config = dict[str, Any]


def to_toml(config: Config) -> str:
    """The sources file for `config`, written the way a person would (msgspec needs tomli_w)."""
    lines = [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict | list)
    ]
    lines += [
        f"{_toml_key(k)} = {_toml_value(v)}" for k, v in config.items() if isinstance(v, list) and not v
    ]
    for name, table in config.get("destinations", {}).items():
        if isinstance(table, dict):
            lines.append(f"[destinations.{_toml_key(name)}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
        else:
            lines.append(f"destinations.{_toml_key(name)} = {_toml_value(table)}")
    for source in config.get("sources") or []:
        lines.append("[[sources]]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in source.items()]
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string, integer or boolean is the same in TOML


@pytest.fixture
def base_config() -> Config:
    """The vectors' sources (spec §15) as a plain dict, `_test_only_plaintext_api_key` included."""
    config: Config = json.loads(TEST_CONFIG.read_text())
    return config


@pytest.fixture
def sources_file(tmp_path: Path, base_config: Config) -> Callable[..., Path]:
    """Write a sources file: the base config changed by `change`, or `text` verbatim."""

    def write(change: Callable[[Config], object] | None = None, *, text: str | None = None) -> Path:
        if text is None:
            config = copy.deepcopy(base_config)
            if change is not None:
                change(config)
            text = to_toml(config)
        path = tmp_path / "sources.toml"
        path.write_text(text)
        return path

    return write


def test_test_config_as_toml_decodes_to_the_spec_sources(sources_file: Callable[..., Path]) -> None:
    config = load_sources(sources_file())

    assert config.dead_letter_topic == "journeys.dlq"
    assert config.skip_topic == "journeys.skipped"
    assert config.destinations == {
        "analytics": Destination(topic="dp.out.analytics"),
        "warehouse": Destination(topic="dp.out.warehouse"),
    }
    assert [(s.name, s.site_id, s.destinations) for s in config.sources] == [
        ("web-prod", "site_prod_1", ["analytics", "warehouse"]),
        ("mobile", "site_mob_2", ["analytics"]),
    ]


def test_unknown_keys_in_a_source_are_ignored(sources_file: Callable[..., Path]) -> None:
    def add_keys(config: Config) -> None:
        config["sources"][0]["owner"] = "team-web"
        config["sources"][0]["_note"] = {"anything": [1, 2]}

    config = load_sources(sources_file(add_keys))

    assert config.sources[0].name == "web-prod"


def test_skip_topic_defaults_to_journeys_skipped(sources_file: Callable[..., Path]) -> None:
    config = load_sources(sources_file(lambda config: config.pop("skip_topic")))

    assert config.skip_topic == DEFAULT_SKIP_TOPIC == "journeys.skipped"


def test_a_source_may_have_no_destinations(sources_file: Callable[..., Path]) -> None:
    def no_destinations(config: Config) -> None:
        config["sources"][1]["destinations"] = []

    assert load_sources(sources_file(no_destinations)).sources[1].destinations == []


def test_filters_decode(sources_file: Callable[..., Path]) -> None:
    def add_filters(config: Config) -> None:
        config["destinations"]["warehouse"].update(
            types=["identify", "track"], exclude_events=["Device Deleted"], drop_email_only=True
        )
        config["destinations"]["events"] = {"topic": "dp.out.events", "include_events": ["purchase"]}

    config = load_sources(sources_file(add_filters))

    assert config.destinations["warehouse"] == Destination(
        topic="dp.out.warehouse",
        types=frozenset({"identify", "track"}),
        exclude_events=frozenset({"Device Deleted"}),
        drop_email_only=True,
    )
    assert config.destinations["warehouse"].has_filters
    assert config.destinations["events"].include_events == frozenset({"purchase"})
    assert not config.destinations["analytics"].has_filters


def test_the_example_sources_file_is_valid_and_matches_the_vectors_sources() -> None:
    config = load_sources(EXAMPLE)

    assert isinstance(config, SourcesConfig)
    assert (config.dead_letter_topic, config.skip_topic) == ("journeys.dlq", "journeys.skipped")
    assert config.destinations["analytics"].topic == "dp.out.analytics"
    assert config.destinations["warehouse"].topic == "dp.out.warehouse"
    expected = json.loads(TEST_CONFIG.read_text())["sources"]
    assert [(s.name, s.site_id, s.api_key_sha256, s.destinations) for s in config.sources] == [
        (s["name"], s["site_id"], s["api_key_sha256"], s["destinations"]) for s in expected
    ]


def _set(path: str, value: object) -> Callable[[Config], None]:
    """A change that sets a dotted key path (`sources.0.name`) to `value`."""

    def change(config: Config) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _delete(path: str) -> Callable[[Config], None]:
    def change(config: Config) -> None:
        *parents, last = path.split(".")
        node: Any = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return change


def _duplicate_source(**changes: object) -> Callable[[Config], None]:
    def change(config: Config) -> None:
        config["sources"].append({**config["sources"][0], **changes})

    return change


OTHER_DIGEST = "0" * 64

ERRORS = [
    pytest.param(_delete("dead_letter_topic"), "dead_letter_topic: required key is missing", id="no-dlq"),
    pytest.param(_set("skip_topics", "x"), "skip_topics: unknown key", id="unknown-top-level-key"),
    pytest.param(_delete("sources"), "sources: required key is missing", id="no-sources-key"),
    pytest.param(_set("sources", []), "sources: at least one [[sources]] entry is required", id="no-sources"),
    pytest.param(
        _set("dead_letter_topic", 5), "dead_letter_topic: expected a string, got an integer", id="dlq-type"
    ),
    pytest.param(_set("dead_letter_topic", ""), "dead_letter_topic: must not be empty", id="dlq-empty"),
    pytest.param(
        _set("skip_topic", "journeys.dlq"),
        "skip_topic: 'journeys.dlq' is also the dead_letter_topic",
        id="skip-is-dlq",
    ),
    pytest.param(
        _set("destinations.analytics.topic", ""),
        "destinations.analytics.topic: must not be empty",
        id="topic-empty",
    ),
    pytest.param(
        _set("destinations.analytics.topic", "dp out"),
        "destinations.analytics.topic: 'dp out' is not a valid Kafka topic name",
        id="topic-invalid",
    ),
    pytest.param(
        _set("destinations.analytics.topic", 7),
        "destinations.analytics.topic: expected a string, got an integer",
        id="topic-type",
    ),
    pytest.param(
        _delete("destinations.analytics.topic"),
        "destinations.analytics.topic: required key is missing",
        id="topic-missing",
    ),
    pytest.param(
        _set("destinations.analytics.topic", "journeys.dlq"),
        "destinations.analytics.topic: 'journeys.dlq' is the dead_letter_topic",
        id="topic-is-dlq",
    ),
    pytest.param(
        _set("destinations.warehouse.topic", "journeys.skipped"),
        "destinations.warehouse.topic: 'journeys.skipped' is the skip_topic",
        id="topic-is-skip",
    ),
    pytest.param(
        _set("destinations.warehouse.topic", "dp.out.analytics"),
        "destinations.warehouse.topic: 'dp.out.analytics' is already the topic of destinations.analytics",
        id="topic-shared",
    ),
    pytest.param(
        _set("destinations.analytics", "dp.out.analytics"),
        "destinations.analytics: expected a table, got a string",
        id="destination-not-a-table",
    ),
    pytest.param(
        _set("destinations.warehouse.include_event", ["purchase"]),
        "destinations.warehouse.include_event: unknown key",
        id="filter-typo",
    ),
    pytest.param(
        _set("destinations.warehouse.types", ["identify", "Track"]),
        "destinations.warehouse.types[1]: unknown call type 'Track'",
        id="types-unknown",
    ),
    pytest.param(
        _set("destinations.warehouse.types", "track"),
        "destinations.warehouse.types: expected an array, got a string",
        id="types-not-a-list",
    ),
    pytest.param(
        _set("destinations.warehouse.types", []),
        "destinations.warehouse.types: must not be empty",
        id="types-empty",
    ),
    pytest.param(
        _set("destinations.warehouse.include_events", []),
        "destinations.warehouse.include_events: must not be empty",
        id="include-empty",
    ),
    pytest.param(
        lambda config: config["destinations"]["warehouse"].update(include_events=["a"], exclude_events=["b"]),
        "destinations.warehouse: set include_events or exclude_events, not both",
        id="include-and-exclude",
    ),
    pytest.param(
        _set("destinations.warehouse.drop_email_only", "yes"),
        "destinations.warehouse.drop_email_only: expected a boolean, got a string",
        id="drop-email-only-type",
    ),
    pytest.param(
        _set("destinations.web events", {"topic": "dp.out.analytics"}),
        "destinations.\"web events\".topic: 'dp.out.analytics' is already the topic",
        id="quoted-destination-name",
    ),
    pytest.param(
        _delete("sources.0.site_id"), "sources[0].site_id: required key is missing", id="no-site-id"
    ),
    pytest.param(_set("sources.1.site_id", ""), "sources[1].site_id: must not be empty", id="empty-site-id"),
    pytest.param(_set("sources.1.name", ""), "sources[1].name: must not be empty", id="empty-name"),
    pytest.param(
        _delete("sources.1.destinations"),
        "sources[1].destinations: required key is missing",
        id="no-destinations-key",
    ),
    pytest.param(
        _duplicate_source(site_id="other", api_key_sha256=OTHER_DIGEST),
        "sources[2].name: duplicate source name 'web-prod' (also sources[0])",
        id="duplicate-name",
    ),
    pytest.param(
        _duplicate_source(name="web-copy"),
        "sources[2]: same site_id and api_key_sha256 as sources[0]",
        id="duplicate-credentials",
    ),
    pytest.param(
        _set("sources.1.destinations", ["analytics", "analytic"]),
        "sources[1].destinations[1]: unknown destination 'analytic' (defined: analytics, warehouse)",
        id="unknown-destination",
    ),
    pytest.param(
        _set("sources.1.destinations", ["analytics", "analytics"]),
        "sources[1].destinations[1]: 'analytics' is listed twice",
        id="destination-twice",
    ),
    pytest.param(
        _set("sources.0.api_key_sha256", "A0693410CC39535F7059C0D21931E776F3923473E2F2761AB585B94071B21625"),
        "sources[0].api_key_sha256: must be 64 lowercase hex digits",
        id="digest-uppercase",
    ),
    pytest.param(
        _set("sources.0.api_key_sha256", "key_prod_secret"),
        "sources[0].api_key_sha256: must be 64 lowercase hex digits",
        id="digest-plaintext",
    ),
    pytest.param(
        _set("sources.0.api_key_sha256", "a" * 63),
        "sources[0].api_key_sha256: must be 64 lowercase hex digits",
        id="digest-short",
    ),
]


@pytest.mark.parametrize(("change", "message"), ERRORS)
def test_a_wrong_file_is_one_line_naming_the_key_and_the_problem(
    sources_file: Callable[..., Path], change: Callable[[Config], object], message: str
) -> None:
    path = sources_file(change)

    with pytest.raises(SourcesError) as raised:
        load_sources(path)

    text = str(raised.value)
    assert text.startswith(f"{path}: {message}")
    assert "\n" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('dead_letter_topic = "journeys.dlq"\n[x]\n[x]\n', "not valid TOML: ", id="toml"),
        pytest.param("dead_letter_topic =", "not valid TOML: ", id="toml-truncated"),
        pytest.param("", "dead_letter_topic: required key is missing", id="empty-file"),
    ],
)
def test_text_that_is_not_a_sources_file_is_one_line(text: str, message: str) -> None:
    with pytest.raises(SourcesError) as raised:
        parse_sources(text)

    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"

    with pytest.raises(SourcesError, match=r"nope\.toml: cannot read the sources file: No such file"):
        load_sources(path)
