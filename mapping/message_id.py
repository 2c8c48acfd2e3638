"""Deterministic, replay-safe messageIds (spec §10).

The messageId of output `o` of item `i` of request `r` is `str(uuid5(NAMESPACE, f"{r}:{i}:{o}"))`,
computed here directly with hashlib, which costs about a third of going through `uuid.UUID`. The
hash input up to the output index is shared by all outputs of an item (`item_key`).
"""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("be8e8c87-5f81-55c4-acc7-e877606232ff")
"""uuid5(NAMESPACE_URL, "urn:journeys-track-bridge:message-id") (spec §10)."""

_NAMESPACE_BYTES = NAMESPACE.bytes

# RFC 4122 variant: the top two bits of byte 8 become 10, i.e. its first hex digit is 8, 9, a or b.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}

# Precomputed pieces of the hash input for the small indexes nearly every call uses.
_INDEXES = tuple(str(index).encode() for index in range(64))
_ITEM_PARTS = tuple(f":{index}:" for index in range(64))


def item_key(request_id: str, item_index: int) -> bytes:
    """The uuid5 hash input shared by the outputs of one item: namespace, request id, item index."""
    part = _ITEM_PARTS[item_index] if item_index < 64 else f":{item_index}:"
    return _NAMESPACE_BYTES + (request_id + part).encode()


def message_id_for(key: bytes, output_index: int) -> str:
    """The messageId of one output of the item whose `item_key` is `key`."""
    index = _INDEXES[output_index] if output_index < 64 else str(output_index).encode()
    digest = hashlib.sha1(key + index).hexdigest()
    # Version 5 replaces hex digit 12; the variant bits change hex digit 16.
    return (
        f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-"
        f"{_VARIANT_DIGIT[digest[16]]}{digest[17:20]}-{digest[20:32]}"
    )


def message_id(request_id: str, item_index: int, output_index: int) -> str:
    """`str(uuid5(NAMESPACE, f"{request_id}:{item_index}:{output_index}"))`, lowercase canonical text."""
    return message_id_for(item_key(request_id, item_index), output_index)
