"""The spec's test vectors (spec §15) and the small pieces of routing the vector harness needs."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import msgspec

from mapping.results import Credentials, Problem, Translation

VECTORS = Path(__file__).parent / "vectors"
CONFIG: dict[str, Any] = json.loads((VECTORS / "test_config.json").read_text())
FILES = sorted(path for path in VECTORS.glob("*.json") if path.name != "test_config.json")


class Case(msgspec.Struct, frozen=True):
    """One vector: an input envelope, its complete ordered outputs, and its one reason (or None)."""

    file: str
    name: str
    envelope: dict[str, Any]
    expect: list[dict[str, Any]]
    expect_reason: str | None

    @property
    def raw(self) -> bytes:
        """The Kafka value: `{"raw": text}` cases are sent as that text, verbatim (spec §15)."""
        if set(self.envelope) == {"raw"}:
            return str(self.envelope["raw"]).encode()
        return json.dumps(self.envelope).encode()

    @property
    def id(self) -> str:
        return f"{self.file}:{self.name}"


def load_cases() -> list[Case]:
    cases = []
    for path in FILES:
        for entry in json.loads(path.read_text()):
            cases.append(
                Case(path.stem, entry["name"], entry["envelope"], entry["expect"], entry["expect_reason"])
            )
    return cases


CASES = load_cases()


def source_of(credentials: Credentials | Problem | None) -> str | None:
    """The test config's source for parsed credentials (spec §2 rule 4, constant-time digests)."""
    if not isinstance(credentials, Credentials):
        return None
    digest = hashlib.sha256(credentials.api_key.encode()).hexdigest()
    for source in CONFIG["sources"]:
        if source["site_id"] == credentials.site_id and hmac.compare_digest(source["api_key_sha256"], digest):
            return str(source["name"])
    return None


def settle(translation: Translation) -> tuple[list[dict[str, Any]], list[str]]:
    """Outputs (parsed) and reasons as the routing layer settles them for the test config.

    Unparseable credentials, or credentials no source matches, make the whole call one
    `unauthorized` reject with no outputs (spec §2), unless the call was settled before auth.
    """
    credentials = translation.credentials
    if isinstance(credentials, Problem):
        return [], [credentials.reason.value]
    if credentials is not None and source_of(credentials) is None:
        return [], ["unauthorized"]
    outputs = [json.loads(output.value) for output in translation.outputs]
    return outputs, [problem.reason.value for problem in translation.problems]


PROD_AUTHORIZATION = "Basic c2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0"  # site_prod_1 / key_prod_secret


def envelope(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw_body: str | None = None,
    authorization: str | None = PROD_AUTHORIZATION,
    request_id: str = "req-test",
    received_at: str = "2024-05-01T10:00:00Z",
) -> bytes:
    """An input message value; `raw_body` puts JSON text in the body verbatim (whitespace, `1e15`)."""
    fields = {
        "method": method,
        "path": path,
        "authorization": authorization,
        "received_at": received_at,
        "request_id": request_id,
    }
    text = json.dumps(fields)[:-1] + ', "body": ' + (json.dumps(body) if raw_body is None else raw_body) + "}"
    return text.encode()


def compact_size(value: Any) -> int:
    """The spec's measure (§12) of a non-string value."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
