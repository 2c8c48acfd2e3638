"""Sealing what a dead letter must not keep in the clear: AES-256-GCM under a rotating key list.

A dead-letter record never stores credentials. With sealing keys configured
(`TRACKBRIDGE_SEALING_KEYS`, a Kubernetes Secret in production), it keeps them -- or the whole
input, when the input could not be decoded -- encrypted, so `trackbridge redrive` can bring the
call back once its cause is fixed. The first key seals; every key listed unseals, so keys rotate:
put the new key first, keep the old one listed until its dead letters expire.

A key is 32 random bytes, written in base64 (`openssl rand -base64 32`). Its id, stored beside the
ciphertext, is the first 8 bytes of its SHA-256 in hex: it names the key without revealing it.
The id and what the ciphertext holds are authenticated too (GCM associated data), so a ciphertext
moved to another record or relabelled fails to open like a tampered one.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import os
from collections.abc import Iterable
from typing import Final, Literal

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16

Holds = Literal["credentials", "input"]
"""What a seal holds: the input's credential headers (a JSON object of the redacted keys and their
values), or the whole input, byte for byte."""


class Sealed(msgspec.Struct, frozen=True):
    """The sealed part of a dead-letter record: key id, what it holds, base64(nonce + ciphertext)."""

    key_id: str
    holds: Holds
    data: str


class SealingKeyError(ValueError):
    """A configured sealing key is not 32 bytes of base64; the message names its position only."""


class Refusal(enum.StrEnum):
    """Why a seal cannot be opened."""

    UNKNOWN_KEY = "unknown_sealing_key"
    """Sealed with a key this process does not have (a wrong or retired key list)."""
    TAMPERED = "tampered"
    """The key is known but the ciphertext, its id or its label does not authenticate."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).digest()[:8].hex()


def sealed_size(size: int) -> int:
    """The length of `Sealed.data` for an input of `size` bytes."""
    return 4 * ((NONCE_BYTES + size + TAG_BYTES + 2) // 3)


class Sealer:
    """Seals with the first key, opens with any. Construct with `from_text` or `from_keys`."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        self._keys = {key_id(key): AESGCM(key) for key in keys}
        if not self._keys:
            raise SealingKeyError("at least one sealing key is needed")
        self.key_id = next(iter(self._keys))

    @classmethod
    def from_text(cls, texts: Iterable[str]) -> Sealer:
        keys = []
        for position, text in enumerate(texts, 1):
            try:
                key = base64.b64decode(text.strip(), validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != KEY_BYTES:
                raise SealingKeyError(f"sealing key {position} is not {KEY_BYTES} bytes of base64")
            keys.append(key)
        return cls(keys)

    def seal(self, data: bytes, holds: Holds) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._keys[self.key_id].encrypt(nonce, data, _label(self.key_id, holds))
        return Sealed(self.key_id, holds, base64.b64encode(nonce + ciphertext).decode("ascii"))

    def open(self, sealed: Sealed) -> bytes | Refusal:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            return Refusal.UNKNOWN_KEY
        try:
            blob = base64.b64decode(sealed.data, validate=True)
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _label(sealed.key_id, sealed.holds))
        except (InvalidTag, binascii.Error, ValueError):
            return Refusal.TAMPERED


def _label(key: str, holds: str) -> bytes:
    return f"trackbridge-dead-letter/{key}/{holds}".encode()


def sealer_for(keys: Iterable[str]) -> Sealer | None:
    """The sealer of the configured keys (`Settings.sealing_keys`, already checked), or None."""
    keys = tuple(keys)
    return Sealer.from_text(keys) if keys else None
