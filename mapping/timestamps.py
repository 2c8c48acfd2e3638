"""Time conversions (spec §9): Track unix seconds and the envelope's `received_at` to Pipelines times.

Pipelines times are `YYYY-MM-DDTHH:MM:SS[.mmm]Z`: always UTC, milliseconds printed only when they
are not zero. Both functions are pure conversions: calendar arithmetic on day numbers, no clock.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from mapping.reasons import Reason
from mapping.results import Problem

MAX_UNIX_SECONDS = 253_402_300_800
"""Exclusive upper bound of a Track time: 10000-01-01T00:00:00Z (spec §9)."""

_MAX_MICROS = MAX_UNIX_SECONDS * 1_000_000

_DATE_TIME = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}"  # the first six fields of a time tuple

# Unix seconds are printed from their day number (datetime.date does the calendar, in C) and two
# tables: `THH:MM:` for each minute of a day, and the two digits of each second.
_EPOCH_DAY = datetime.date(1970, 1, 1).toordinal()
_DAY = datetime.date.fromordinal
_MINUTES = tuple(f"T{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECONDS = tuple(f"{second:02d}" for second in range(60))

# spec §9: a string of ASCII digits with an optional `.digits` fraction (go-customerio's last_used).
_DIGITS = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)

# spec §1 rule 4: YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm), `T`/`Z` in either case.
_RECEIVED_AT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)


def _date_time(seconds: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS` (UTC) of unix seconds in [0, MAX_UNIX_SECONDS): four-digit years."""
    days, rest = divmod(seconds, 86_400)
    minutes, second = divmod(rest, 60)
    return f"{_DAY(_EPOCH_DAY + days).isoformat()}{_MINUTES[minutes]}{_SECONDS[second]}"


def format_micros(micros: int) -> str:
    """Print a count of microseconds since the epoch, before year 10000, as a Pipelines time.

    The fraction is truncated to milliseconds and omitted when that is `.000` (spec §9).
    """
    seconds, rest = divmod(micros, 1_000_000)
    text = _date_time(seconds)
    millis = rest // 1000
    return f"{text}.{millis:03d}Z" if millis else text + "Z"


def unix_to_iso(value: Any) -> str | None:
    """Convert a Track unix time (seconds) to a Pipelines time, or None when it is not one.

    Accepted (spec §9): a JSON integer, a JSON float, or a string of ASCII digits with an optional
    `.digits` fraction, with `0 <= t < 253402300800`. A fraction is rounded to the nearest
    microsecond first (absorbing float error), then truncated to milliseconds. Booleans, ISO
    strings, negative or too large values (typically milliseconds) give None. The caller treats
    JSON null as absent before calling.
    """
    kind = type(value)
    if kind is int:
        if 0 <= value < MAX_UNIX_SECONDS:
            return _date_time(value) + "Z"
        return None
    if kind is float:
        if not 0.0 <= value < MAX_UNIX_SECONDS:  # also rejects NaN
            return None
        # Exact rounding of the float's binary value to microseconds, in integers.
        numerator, denominator = value.as_integer_ratio()
        micros = (2 * numerator * 1_000_000 + denominator) // (2 * denominator)
    elif kind is str:
        match = _DIGITS.fullmatch(value)
        if match is None:
            return None
        whole = match[1].lstrip("0")
        if len(whole) > len(str(MAX_UNIX_SECONDS)):
            return None
        micros = int(whole or "0") * 1_000_000 + _fraction_micros(match[2] or "")
    else:
        return None
    if micros >= _MAX_MICROS:
        return None
    return format_micros(micros)


def time_field(value: Any, where: str) -> str | Problem | None:
    """An item's optional time field: None when absent or null, else its Pipelines time.

    A value that is not a Track unix time gives `invalid_timestamp` (spec §9).
    """
    if value is None:
        return None
    converted = unix_to_iso(value)
    if converted is None:
        return Problem(Reason.INVALID_TIMESTAMP, f"{where} is not unix seconds between 0 and year 10000")
    return converted


def _fraction_micros(digits: str) -> int:
    """Round a decimal fraction's digits to whole microseconds (half up)."""
    if len(digits) <= 6:
        return int(digits.ljust(6, "0"))
    return int(digits[:6]) + (digits[6] >= "5")


def _is_instant(text: str) -> bool:
    """Whether `datetime.fromisoformat` takes the text: for the fixed shapes `normalize_received_at`
    gives it, ASCII digits where they belong naming a real date and time."""
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def normalize_received_at(value: str) -> str | None:
    """Validate the envelope's `received_at` and print it as a Pipelines time, or None.

    The value must be `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)` naming a real instant (spec §1);
    it is converted to UTC and its fraction truncated to milliseconds (spec §9).
    """
    # The UTC forms edges write need no arithmetic: `…SSZ` is already canonical output, and
    # `…SS.<digits>Z` (ours writes microseconds) only has its fraction cut. Their separators sit at
    # every third character from the fifth; fromisoformat checks the digits and the calendar.
    if len(value) == 20 and value[4::3] == "--T::Z":
        return value if _is_instant(value) else None
    if value[4:20:3] == "--T::." and value[-1] == "Z":
        fraction = value[20:-1]
        if fraction.isdigit() and fraction.isascii() and _is_instant(value[:19]):
            millis = fraction[:3].ljust(3, "0")
            return f"{value[:19]}.{millis}Z" if millis != "000" else value[:19] + "Z"
    match = _RECEIVED_AT.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        instant = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    except ValueError:
        return None
    if match[8] is not None:
        offset_hours, offset_minutes = int(match[9]), int(match[10])
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = datetime.timedelta(hours=offset_hours, minutes=offset_minutes)
        try:
            instant = instant - offset if match[8] == "+" else instant + offset
        except OverflowError:
            return None
    text = _DATE_TIME.format(*instant.timetuple())
    millis = (match[7] or "")[:3].ljust(3, "0")
    return f"{text}.{millis}Z" if millis != "000" else text + "Z"
