"""Dead-letter input copies: redacted in any letter case, never the bytes of what cannot be decoded,
bounded, and sealed so `trackbridge redrive` can restore them."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import msgspec
import pytest

from mapping.reasons import Reason
from mapping.results import Problem
from worker.records import (
    COPY_LIMIT,
    MAX_RECORD_BYTES,
    ProblemRecord,
    Record,
    cut,
    input_copy,
    problem_record,
    redact,
)
from worker.redrive import Refused, restore
from worker.sealing import Refusal, Sealed, Sealer, SealingKeyError, sealed_size

HEADER = "Basic " + base64.b64encode(b"site_prod_1:key_prod_secret").decode()
ENVELOPE = {
    "method": "PUT",
    "path": "/api/v1/customers/42",
    "authorization": HEADER,
    "body": {"first_name": "Cool"},
    "received_at": "2024-05-01T10:00:00Z",
    "request_id": "r1",
}
SEALER = Sealer([os.urandom(32)])


def raw_of(value: object) -> bytes:
    return json.dumps(value).encode()


def record_of(raw: bytes, sealer: Sealer | None = SEALER) -> ProblemRecord:
    built = problem_record(
        "dlq", Problem(Reason.INVALID_BODY, "bad"), input_copy(raw, sealer), request_id="r1"
    )
    return msgspec.json.decode(built.value, type=ProblemRecord)


@pytest.mark.parametrize("key", ["authorization", "Authorization", "AUTHORIZATION", "aUtHoRiZaTiOn"])
def test_the_authorization_key_is_redacted_in_any_case(key: str) -> None:
    envelope = {k: v for k, v in ENVELOPE.items() if k != "authorization"} | {key: HEADER}
    redacted = redact(raw_of(envelope))
    assert redacted is not None
    value, removed = redacted
    assert value[key] == "<redacted>"
    assert removed == {key: HEADER}


def test_every_authorization_key_is_redacted_and_restored() -> None:
    raw = b'{"authorization": "a", "Authorization": "b", "request_id": "r1", "method": "GET"}'
    record = record_of(raw)
    assert b'"a"' not in msgspec.json.encode(record) and b'"b"' not in msgspec.json.encode(record)
    restored = restore(record, SEALER)
    assert isinstance(restored, bytes)
    assert json.loads(restored) == json.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        raw_of(ENVELOPE).replace(b'"Cool"', b"1e400"),  # a number out of range
        raw_of(ENVELOPE).replace(b'"Cool"', b'"\\ud800"'),  # a lone surrogate escape
        raw_of(ENVELOPE) + b" trailing",
        raw_of(ENVELOPE).replace(b'"Cool"', b"[" * 10_000 + b"]" * 10_000),  # nested too deeply
        raw_of(ENVELOPE).replace(b"Cool", b"\xff\xfe"),  # not UTF-8 inside the object
        b"not json " + HEADER.encode(),
        json.dumps(HEADER).encode(),  # JSON, but not an object
    ],
    ids=["out-of-range", "surrogate", "trailing", "deep", "not-utf8", "not-json", "not-object"],
)
def test_what_cannot_be_decoded_is_kept_by_its_facts_only(raw: bytes) -> None:
    copy = input_copy(raw)
    assert bytes(copy.envelope) == b"null"
    assert copy.input.copy == "undecodable"
    assert (copy.input.bytes, copy.input.sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert copy.sealed is None


def test_what_cannot_be_decoded_is_sealed_whole_and_comes_back_byte_for_byte() -> None:
    raw = raw_of(ENVELOPE) + b" trailing"
    record = record_of(raw)
    assert record.sealed is not None and record.sealed.holds == "input"
    assert restore(record, SEALER) == raw


def test_credentials_are_sealed_and_restored() -> None:
    record = record_of(raw_of(ENVELOPE))
    assert record.sealed is not None and record.sealed.holds == "credentials"
    assert record.input.copy == "redacted"
    restored = restore(record, SEALER)
    assert isinstance(restored, bytes)
    assert json.loads(restored) == ENVELOPE


def test_without_sealing_a_redacted_record_cannot_come_back() -> None:
    record = record_of(raw_of(ENVELOPE), sealer=None)
    assert record.sealed is None
    assert restore(record, SEALER) is Refused.REDACTED
    no_credentials = {k: v for k, v in ENVELOPE.items() if k != "authorization"}
    assert restore(record_of(raw_of(no_credentials), sealer=None), None) == msgspec.json.encode(
        no_credentials
    )
    assert restore(record_of(b"nope", sealer=None), SEALER) is Refused.NOT_KEPT


def test_a_wrong_key_and_a_tampered_seal_are_refused() -> None:
    record = record_of(raw_of(ENVELOPE))
    assert record.sealed is not None
    assert restore(record, Sealer([os.urandom(32)])) is Refused.UNKNOWN_SEALING_KEY
    assert restore(record, None) is Refused.UNKNOWN_SEALING_KEY
    data = bytearray(base64.b64decode(record.sealed.data))
    data[-1] ^= 1
    tampered = msgspec.structs.replace(record.sealed, data=base64.b64encode(bytes(data)).decode())
    assert restore(msgspec.structs.replace(record, sealed=tampered), SEALER) is Refused.TAMPERED
    relabelled = msgspec.structs.replace(record.sealed, holds="input")
    assert restore(msgspec.structs.replace(record, sealed=relabelled), SEALER) is Refused.TAMPERED


def test_keys_rotate_the_first_seals_all_open() -> None:
    old, new = os.urandom(32), os.urandom(32)
    sealed = Sealer([old]).seal(b"secret", "input")
    rotated = Sealer([new, old])
    assert rotated.open(sealed) == b"secret"
    assert rotated.seal(b"x", "input").key_id != sealed.key_id
    assert Sealer([new]).open(sealed) is Refusal.UNKNOWN_KEY
    assert len(sealed.data) == sealed_size(len(b"secret"))


@pytest.mark.parametrize("text", ["", "c2hvcnQ=", "not base64!", base64.b64encode(os.urandom(31)).decode()])
def test_a_bad_sealing_key_is_refused_without_showing_it(text: str) -> None:
    with pytest.raises(SealingKeyError, match="sealing key 1 is not 32 bytes") as caught:
        Sealer.from_text([text])
    assert not text or text not in str(caught.value)


def test_a_copy_too_large_for_a_record_is_cut_or_sealed_whole() -> None:
    big = raw_of({**ENVELOPE, "body": {"blob": "x" * COPY_LIMIT}})
    assert input_copy(big).input.copy == "cut"
    assert bytes(input_copy(big).envelope) == b"null"
    assert input_copy(big, SEALER).sealed is None  # sealed, it would not fit either
    fits_sealed = raw_of({**ENVELOPE, "body": {"blob": "x" * (COPY_LIMIT // 2)}})
    assert input_copy(fits_sealed).input.copy == "redacted"
    record = problem_record("dlq", Problem(Reason.INVALID_BODY, "x"), input_copy(big, SEALER), request_id="r")
    assert len(record.value) < MAX_RECORD_BYTES


def test_a_huge_request_id_still_makes_a_bounded_record() -> None:
    request_id = "r" * MAX_RECORD_BYTES
    record = problem_record(
        "dlq", Problem(Reason.INVALID_BODY, "x"), input_copy(b"{}"), request_id=request_id, received_at="t"
    )
    size = len(record.value) + len(record.key or b"") + sum(len(k) + len(v) for k, v in record.headers)
    assert size < MAX_RECORD_BYTES


def test_cut_keeps_the_facts_and_the_headers() -> None:
    built = problem_record(
        "dlq", Problem(Reason.INVALID_BODY, "bad", 2), input_copy(raw_of(ENVELOPE), SEALER), request_id="r1"
    )
    smaller = cut(built)
    assert isinstance(smaller, Record)
    value = msgspec.json.decode(smaller.value, type=ProblemRecord)
    assert (bytes(value.envelope), value.sealed, value.input.copy) == (b"null", None, "cut")
    assert (value.reason, value.item_index, value.request_id) == (Reason.INVALID_BODY, 2, "r1")
    assert (smaller.key, smaller.headers) == (built.key, built.headers)


def test_a_sealed_record_decodes_with_its_struct() -> None:
    assert isinstance(record_of(raw_of(ENVELOPE)).sealed, Sealed)
