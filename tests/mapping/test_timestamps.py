"""Time conversions (spec §9) and the envelope's received_at (spec §1 rule 4)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.timestamps import MAX_UNIX_SECONDS, normalize_received_at, unix_to_iso


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1714550400, "2024-05-01T08:00:00Z"),
        (1692886522.5, "2023-08-24T14:15:22.500Z"),
        (1692886522.0, "2023-08-24T14:15:22Z"),
        (1692886522.1239, "2023-08-24T14:15:22.123Z"),  # truncated to milliseconds
        (1692886522.9999996, "2023-08-24T14:15:23Z"),  # rounded to the microsecond first
        (0.0005, "1970-01-01T00:00:00Z"),
        (MAX_UNIX_SECONDS - 1, "9999-12-31T23:59:59Z"),
        ("1514764800", "2018-01-01T00:00:00Z"),  # go-customerio's last_used
        ("0001514764800", "2018-01-01T00:00:00Z"),
        ("1692886522.25", "2023-08-24T14:15:22.250Z"),
        ("1692886522.1234565", "2023-08-24T14:15:22.123Z"),
        ("1692886522.9999995", "2023-08-24T14:15:23Z"),
        ("1692886522.000", "2023-08-24T14:15:22Z"),
    ],
)
def test_unix_times_convert(value: Any, expected: str) -> None:
    assert unix_to_iso(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        -1,
        -0.5,
        MAX_UNIX_SECONDS,
        MAX_UNIX_SECONDS - 0.0000001,  # rounds up to year 10000
        1692886522000,  # milliseconds
        float("nan"),
        float("inf"),
        True,
        False,
        "2024-05-01T10:00:00Z",
        "",
        "12a",
        "1.",
        ".5",
        "-5",
        " 5",
        "١٢٣",  # non-ASCII digits
        "9" * 5000,
        {"t": 1},
        [1],
    ],
)
def test_anything_else_is_not_a_unix_time(value: Any) -> None:
    assert unix_to_iso(value) is None


@given(st.integers(min_value=0, max_value=MAX_UNIX_SECONDS - 1))
@settings(deadline=None)
def test_integer_seconds_match_datetime(seconds: int) -> None:
    expected = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert unix_to_iso(seconds) == expected
    assert unix_to_iso(str(seconds)) == expected


@given(st.integers(min_value=0, max_value=MAX_UNIX_SECONDS - 1), st.integers(0, 999_999))
@settings(deadline=None)
def test_fractions_print_truncated_milliseconds(seconds: int, micros: int) -> None:
    text = unix_to_iso(f"{seconds}.{micros:06d}")
    assert text is not None
    millis = micros // 1000
    assert text.endswith(f".{millis:03d}Z" if millis else f":{seconds % 60:02d}Z")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
        ("2024-05-01t10:00:00z", "2024-05-01T10:00:00Z"),
        ("2024-05-01T12:00:00.250+02:00", "2024-05-01T10:00:00.250Z"),
        ("2024-05-01T10:00:00.000Z", "2024-05-01T10:00:00Z"),
        ("2024-05-01T10:00:00.1239999Z", "2024-05-01T10:00:00.123Z"),
        ("2024-05-01T10:00:00.5-00:30", "2024-05-01T10:30:00.500Z"),
        ("2024-01-01T00:30:00+01:00", "2023-12-31T23:30:00Z"),
        ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00Z"),
        ("2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00.123Z"),  # what our edge writes
        ("2024-05-01T10:00:00.000999Z", "2024-05-01T10:00:00Z"),
        ("2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.500Z"),
        ("2024-02-29T23:59:59.999999Z", "2024-02-29T23:59:59.999Z"),
    ],
)
def test_received_at_is_normalised_to_utc_milliseconds(value: str, expected: str) -> None:
    assert normalize_received_at(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T10:00:00",  # no zone
        "2024-05-01 10:00:00Z",
        "2024-05-01T10:00Z",
        "2024-05-01T10:00:00+0200",
        "2024-05-01T10:00:00.Z",
        "2024-05-01T10:00:00,5Z",
        "2024-05-01T10:00:00.12\u0663Z",  # a non-ASCII digit in the fraction
        "2024-05-01T10:00:00.5ZZ",
        "2023-02-29T10:00:00.5Z",
        "2024-05-01T24:00:00.5Z",
        "2023-02-29T10:00:00Z",
        "2024-13-01T10:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T10:00:60Z",
        "2024-05-01T10:00:00+24:00",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
        "2024-W18-3T10:00:00Z",
        "\uff12\uff10\uff12\uff14-05-01T10:00:00Z",  # fullwidth digits
        "1714550400",
        "",
    ],
)
def test_received_at_must_be_an_rfc3339_instant(value: str) -> None:
    assert normalize_received_at(value) is None
