"""Settings: environment, flags, validation with one clear line, the embedded-broker adjustments."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import faust
import pytest

from worker.cli import main as cli
from worker.config.settings import (
    EMBEDDED_FETCH_MAX_WAIT_MS,
    FIELDS,
    Group,
    Settings,
    SettingsError,
    add_arguments,
    embedded,
    env_name,
    load_settings,
    to_environ,
)


def flags(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser, Group)
    return parser.parse_args(list(argv))


def test_defaults_are_the_documented_ones() -> None:
    settings, explicit = load_settings(environ={})
    assert explicit == frozenset()
    assert settings.bootstrap_servers == ()
    assert settings.group_id == "trackbridge"
    assert settings.input_topic == "journeys.track.raw"
    assert settings.topic_prefix == ""
    assert settings.web_port == 6066
    assert settings.batch_size == 500
    assert settings.batch_timeout == 0.05
    assert settings.fetch_max_wait_ms == 500
    assert settings.log_level == "INFO"
    assert settings.enable_idempotence is False
    assert settings.security_protocol == "PLAINTEXT"


def test_every_field_has_a_variable_and_help() -> None:
    assert set(FIELDS) == set(Settings.__struct_fields__)
    assert all(field.help.strip() for field in FIELDS.values())


def test_environment_is_read_and_flags_override_it() -> None:
    environ = {
        "TRACKBRIDGE_BOOTSTRAP_SERVERS": "k1:9092, k2:9093,",
        "TRACKBRIDGE_BATCH_SIZE": "100",
        "TRACKBRIDGE_BATCH_TIMEOUT": "0.2",
        "TRACKBRIDGE_ENABLE_IDEMPOTENCE": "True",
        "TRACKBRIDGE_LOG_LEVEL": "debug",
        "TRACKBRIDGE_TOPIC_PREFIX": "staging.",
    }
    settings, explicit = load_settings(flags("--batch-size", "7", "--no-enable-idempotence"), environ)
    assert settings.bootstrap_servers == ("k1:9092", "k2:9093")
    assert settings.batch_size == 7
    assert settings.batch_timeout == 0.2
    assert settings.enable_idempotence is False
    assert settings.log_level == "DEBUG"
    assert settings.raw_topic == "staging.journeys.track.raw"
    assert {"batch_size", "enable_idempotence", "bootstrap_servers"} <= explicit


@pytest.mark.parametrize(
    ("environ", "argv", "message"),
    [
        ({"TRACKBRIDGE_BATCH_SIZE": "0"}, (), "TRACKBRIDGE_BATCH_SIZE: expected an integer >= 1"),
        ({"TRACKBRIDGE_BATCH_SIZE": "lots"}, (), "TRACKBRIDGE_BATCH_SIZE: expected an integer, got a string"),
        ({}, ("--batch-timeout", "-1"), "--batch-timeout: expected a number > 0"),
        (
            {"TRACKBRIDGE_SECURITY_PROTOCOL": "TLS"},
            (),
            "TRACKBRIDGE_SECURITY_PROTOCOL: invalid enum value 'TLS'",
        ),
        (
            {"TRACKBRIDGE_BOOTSTRAP_SERVERS": "kafka"},
            (),
            "TRACKBRIDGE_BOOTSTRAP_SERVERS: 'kafka' is not host:port",
        ),
        (
            {"TRACKBRIDGE_ENABLE_IDEMPOTENCE": "maybe"},
            (),
            "TRACKBRIDGE_ENABLE_IDEMPOTENCE: expected a boolean",
        ),
        (
            {"TRACKBRIDGE_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            (),
            "SASL_PLAINTEXT needs TRACKBRIDGE_SASL_USERNAME and TRACKBRIDGE_SASL_PASSWORD",
        ),
        (
            {"TRACKBRIDGE_SSL_CAFILE": "/nonexistent/ca.pem"},
            (),
            "TRACKBRIDGE_SSL_CAFILE: '/nonexistent/ca.pem'",
        ),
        ({}, ("--sources", "/nonexistent.toml"), "--sources: '/nonexistent.toml' is not a readable file"),
        (
            {"TRACKBRIDGE_SASL_MECHANISM": "GSSAPI"},
            (),
            "TRACKBRIDGE_SASL_MECHANISM: invalid enum value 'GSSAPI'",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    environ: dict[str, str], argv: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(flags(*argv), environ)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_sasl_ssl_maps_to_aiokafka_and_faust_credentials() -> None:
    settings, _ = load_settings(
        environ={
            "TRACKBRIDGE_SECURITY_PROTOCOL": "sasl_ssl",
            "TRACKBRIDGE_SASL_MECHANISM": "scram-sha-512",
            "TRACKBRIDGE_SASL_USERNAME": "bridge",
            "TRACKBRIDGE_SASL_PASSWORD": "secret",
        }
    )
    auth = settings.kafka_auth()
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "bridge"
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    credentials = settings.faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.username == "bridge"


def test_ssl_maps_to_ssl_credentials_and_plaintext_to_none() -> None:
    settings, _ = load_settings(environ={"TRACKBRIDGE_SECURITY_PROTOCOL": "SSL"})
    assert isinstance(settings.faust_credentials(), faust.SSLCredentials)
    assert settings.kafka_auth()["security_protocol"] == "SSL"
    plain, _ = load_settings(environ={})
    assert plain.faust_credentials() is None
    assert plain.kafka_auth() == {"security_protocol": "PLAINTEXT"}


def test_embedded_tunes_only_what_was_not_given() -> None:
    settings, explicit = load_settings(
        environ={"TRACKBRIDGE_SESSION_TIMEOUT": "9", "TRACKBRIDGE_ENABLE_IDEMPOTENCE": "1"}
    )
    tuned = embedded(settings, explicit, "127.0.0.1:1234")
    assert tuned.bootstrap_servers == ("127.0.0.1:1234",)
    assert tuned.fetch_max_wait_ms == EMBEDDED_FETCH_MAX_WAIT_MS
    assert tuned.session_timeout == 9
    assert tuned.replication_factor == 1
    assert tuned.enable_idempotence is False  # Tansu refuses idempotent producers


def test_to_environ_round_trips() -> None:
    settings, _ = load_settings(
        environ={"TRACKBRIDGE_BOOTSTRAP_SERVERS": "a:1,b:2", "TRACKBRIDGE_BATCH_SIZE": "3"}
    )
    again, _ = load_settings(environ=to_environ(settings))
    assert again == settings


def test_commands_refuse_bad_settings_with_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in FIELDS:
        monkeypatch.delenv(env_name(name), raising=False)
    assert cli.main(["worker", "--sources", str(tmp_path / "none.toml")]) == 2
    assert "is not a readable file" in capsys.readouterr().err
    sources = tmp_path / "sources.toml"
    sources.write_text('dead_letter_topic = "dlq"\n[[sources]]\nname = "a"\n')
    assert cli.main(["worker", "--sources", str(sources)]) == 2
    err = capsys.readouterr().err
    assert "TRACKBRIDGE_BOOTSTRAP_SERVERS is empty" in err
    assert "Traceback" not in err
    monkeypatch.setenv("TRACKBRIDGE_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert cli.main(["worker", "--sources", str(sources)]) == 2
    assert "sources" in capsys.readouterr().err
