"""Merging people (spec §4.9, v2 person `merge` §5.2): one `alias`, the primary surviving."""

from __future__ import annotations

from typing import Any

from mapping import limits, pipelines
from mapping.identity import merge_side, person, user_id
from mapping.reasons import Reason
from mapping.results import Problem, Result
from mapping.timestamps import time_field


def merge(stamp: pipelines.Stamp, primary: Any, secondary: Any, *, timestamp: Any) -> Result:
    """`alias` with userId = the primary and previousId = the secondary (each one of id/email/cio_id).

    Either side missing or not an object is `invalid_body`; then each side's identifier is
    checked (§6.1), then both IDs' lengths, then the time.
    """
    if not isinstance(primary, dict) or not isinstance(secondary, dict):
        side = "secondary" if isinstance(primary, dict) else "primary"
        return Problem(Reason.INVALID_BODY, f"{side} is missing or not an object")
    kept = merge_side(primary, "primary")
    if type(kept) is Problem:
        return kept
    merged = merge_side(secondary, "secondary")
    if type(merged) is Problem:
        return merged
    problem = limits.check_id(kept[1], f"primary {kept[0]}") or limits.check_id(
        merged[1], f"secondary {merged[0]}"
    )
    if problem is not None:
        return problem
    when = time_field(timestamp, "timestamp")
    if type(when) is Problem:
        return when
    return [pipelines.alias(stamp.at(when), 0, person(*kept), user_id(*merged))]
