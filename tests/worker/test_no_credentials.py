"""No credential in any stored byte, for any input (property test).

Credentials are planted in generated hostile inputs -- envelopes with the header in any letter
case or twice, then broken every way an input can be (a number out of range, a lone surrogate,
bytes after the object, nesting past the decoder's limit, invalid UTF-8, cut short, not an
object, not JSON) -- and each is translated and routed as the worker does, with and without a
sealing key. Every byte of every record produced (value, key, headers) is scanned for the header
and everything it decodes to: the token in either base64 alphabet, padded or not, `site:key`,
and the key itself.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mapping
from tests.kafka_helpers import credential_forms, credentials_in, stored_bytes
from worker.config.sources import load_sources
from worker.routing import Router
from worker.sealing import Sealer

ROOT = Path(__file__).resolve().parents[2]
CONFIG = load_sources(ROOT / "examples" / "sources.toml")
ROUTERS = (Router(CONFIG), Router(CONFIG, sealer=Sealer([os.urandom(32)])))

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=10, max_size=24).map(
    lambda s: "K" + s
)
SITES = st.sampled_from(["site_prod_1", "site_mob_2", "site_unknown"])
CASES = st.sampled_from(["authorization", "Authorization", "AUTHORIZATION", "authoriZation"])


def header(site: str, key: str, urlsafe: bool, padded: bool, scheme: str) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    token = encode(f"{site}:{key}".encode()).decode()
    return f"{scheme} {token if padded else token.rstrip('=')}"


DEEP = b"[" * 10_000 + b"]" * 10_000


def breakages(envelope_text: bytes, value: str) -> st.SearchStrategy[bytes]:
    """`envelope_text` as sent, or broken in one of the ways an input can be."""
    quoted = json.dumps(value).encode()
    return st.sampled_from(
        [
            envelope_text,
            envelope_text.replace(b'"first_name"', b'"a": 1e400, "first_name"'),
            envelope_text.replace(b'"first_name"', b'"a": "\\ud800", "first_name"'),
            envelope_text + b"\n}garbage",
            envelope_text.replace(
                b'"first_name"', b'"a": ' + b"[" * 10_000 + b"]" * 10_000 + b', "first_name"'
            ),
            envelope_text.replace(b'"Cool"', b'"\xff\xfe\xc3"'),
            envelope_text[: len(envelope_text) // 2],
            envelope_text[:-1],
            b"[" + envelope_text + b"]",
            quoted,
            b"Authorization: " + value.encode() + b"\r\n",
            b"\xff" + envelope_text,
        ]
    )


@st.composite
def hostile(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    site, key = draw(SITES), draw(KEYS)
    value = header(
        site, key, draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from(["Basic", "basic"]))
    )
    envelope: dict[str, object] = {
        "method": draw(st.sampled_from(["PUT", "POST", "GET"])),
        "path": draw(st.sampled_from(["/api/v1/customers/42", "/api/v2/entity", "/nope"])),
        draw(CASES): value,
        "body": {"first_name": "Cool"},
        "received_at": "2024-05-01T10:00:00Z",
        "request_id": draw(st.sampled_from(["r1", "r-2"])),
    }
    text = json.dumps(envelope).encode()
    if draw(st.booleans()):  # the header twice, in another case, straight in the JSON text
        text = text.replace(
            b'"method"', b'"' + draw(CASES).encode() + b'": ' + json.dumps(value).encode() + b', "method"'
        )
    return draw(breakages(text, value)), credential_forms(site, key)


@settings(deadline=None, max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(hostile())
def test_no_record_holds_the_credentials(case: tuple[bytes, list[bytes]]) -> None:
    raw, secrets = case
    for router in ROUTERS:
        routed = router.route(raw, mapping.translate(raw))
        assert routed.records, "every input is accounted for"
        for record in routed.records:
            stored = stored_bytes(record)
            leaked = credentials_in(stored, secrets)
            assert not leaked, f"{leaked} stored in {stored[:300]!r}"
