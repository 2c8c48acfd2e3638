"""The edge in process, with a stand-in producer: what it refuses, what it produces, and how.

No broker: `Recorder` takes the place of the Kafka producer, so these tests see the exact
envelope and key the edge hands over, and can make the broker "fail" on demand.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from mapping.routes import Route, allowed_methods, match_route
from worker.config.settings import load_settings
from worker.config.sources import load_sources
from worker.edge import envelope
from worker.edge.metrics import EdgeMetrics
from worker.edge.producer import Unavailable
from worker.edge.server import Edge

AUTH = "Basic " + base64.b64encode(b"site_prod_1:key_prod_secret").decode()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sources.toml"


class Recorder:
    """Stands in for `EnvelopeProducer`: records what it is sent; `fail` makes sends unavailable."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None]] = []
        self.fail = False

    def ready(self) -> bool:
        return not self.fail

    async def send(self, value: bytes, key: bytes | None) -> None:
        if self.fail:
            raise Unavailable("broker down (test)")
        self.sent.append((value, key))


Call = Callable[..., Awaitable[tuple[int, dict[str, str], bytes]]]


def run(scenario: Callable[[Call, Recorder, EdgeMetrics], Awaitable[None]]) -> None:
    settings, _ = load_settings(environ={"TRACKBRIDGE_SOURCES": str(EXAMPLES)})
    recorder, metrics = Recorder(), EdgeMetrics()
    edge = Edge(settings, load_sources(EXAMPLES), metrics=metrics, producer=recorder)  # type: ignore[arg-type]

    async def main() -> None:
        async with TestClient(TestServer(edge.app)) as client:

            async def call(method: str, target: str, body: bytes | None = None, **headers: str) -> Any:
                response = await client.request(method, target, data=body, headers=headers)
                return response.status, dict(response.headers), await response.read()

            await scenario(call, recorder, metrics)

    asyncio.run(main())


def test_an_accepted_request_is_exactly_the_spec_envelope_keyed_by_person() -> None:
    async def scenario(call: Call, recorder: Recorder, metrics: EdgeMetrics) -> None:
        body = b'{"email": "a@example.com",  "n": 1.50}'
        status, _, answer = await call(
            "PUT", "/api/v1/customers/j%C3%B6rg%2F1?x=1&y", body, Authorization=AUTH
        )
        assert (status, answer) == (200, b"{}")
        [(value, key)] = recorder.sent
        sent = json.loads(value)
        assert list(sent) == ["method", "path", "query", "authorization", "body", "received_at", "request_id"]
        assert sent["method"] == "PUT"
        assert sent["path"] == "/api/v1/customers/j%C3%B6rg%2F1"  # still percent-encoded
        assert sent["query"] == "x=1&y"
        assert sent["authorization"] == AUTH  # verbatim
        assert body in value  # the body as sent: no number or spacing rewritten
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", sent["received_at"])
        assert re.fullmatch(r"[0-9a-f]{20}-[0-9a-f]+", sent["request_id"])
        assert key == "jörg/1".encode()
        assert metrics.requests[("v1.identify", "200")] == 1

    run(scenario)


def test_a_request_without_body_or_query_has_null_ones() -> None:
    async def scenario(call: Call, recorder: Recorder, metrics: EdgeMetrics) -> None:
        assert (await call("DELETE", "/api/v1/customers/42", Authorization=AUTH))[0] == 200
        sent = json.loads(recorder.sent[0][0])
        assert (sent["body"], sent["query"]) == (None, None)

    run(scenario)


def test_an_idempotency_key_is_the_request_id_so_a_retry_repeats_it() -> None:
    async def scenario(call: Call, recorder: Recorder, metrics: EdgeMetrics) -> None:
        for _ in range(2):
            status, _, _ = await call(
                "POST",
                "/api/v1/customers/42/events",
                b'{"name":"x"}',
                Authorization=AUTH,
                **{"Idempotency-Key": "k-1"},
            )
            assert status == 200
        assert [json.loads(value)["request_id"] for value, _ in recorder.sent] == ["k-1", "k-1"]
        status, _, _ = await call(
            "POST", "/api/v1/events", b"{}", Authorization=AUTH, **{"Idempotency-Key": "a b"}
        )
        assert status == 400
        assert len(recorder.sent) == 2

    run(scenario)


BATCH_OVER = json.dumps({"batch": [{"type": "person", "action": "identify", "identifiers": {"id": "1"},
                                    "attributes": {"a": "x" * 512_000}}]}).encode()  # fmt: skip
ENTITY_OVER = json.dumps({"type": "person", "action": "identify", "identifiers": {"id": "1"},
                          "attributes": {"a": "x" * 32_768}}).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("method", "target", "body", "headers", "status", "reason"),
    [
        ("GET", "/api/v1/nothing", None, {"Authorization": AUTH}, 404, "unknown_path"),
        ("POST", "/api/v1/customers/42", b"{}", {"Authorization": AUTH}, 405, "method_not_allowed"),
        ("PUT", "/api/v1/customers/42", b"{}", {}, 401, "unauthorized"),
        ("PUT", "/api/v1/customers/42", b"{}", {"Authorization": "Bearer x"}, 401, "unauthorized"),
        ("PUT", "/api/v1/customers/42", b"{}", {"Authorization": "Basic " + base64.b64encode(b"site_prod_1:no").decode()}, 401, "unauthorized"),  # noqa: E501
        ("POST", "/api/v2/entity", b"{}", {"Authorization": "Basic !!"}, 401, "unauthorized"),
        ("PUT", "/api/v1/customers/42", b"{not json", {"Authorization": AUTH}, 400, "invalid_json"),
        ("PUT", "/api/v1/customers/42", b'{"a": "\xff"}', {"Authorization": AUTH}, 400, "invalid_json"),
        ("POST", "/api/v2/entity", ENTITY_OVER, {"Authorization": AUTH}, 400, "body_too_large"),
        ("POST", "/api/v2/batch", BATCH_OVER, {"Authorization": AUTH}, 400, "body_too_large"),
        ("PUT", "/api/v1/customers/42", b'{"a":"' + b"x" * 1_000_001 + b'"}', {"Authorization": AUTH}, 413, "request_too_large"),  # noqa: E501
    ],
)  # fmt: skip
def test_what_the_track_api_refuses_is_refused_before_anything_is_produced_and_counted(  # noqa: PLR0917
    method: str, target: str, body: bytes | None, headers: dict[str, str], status: int, reason: str
) -> None:
    async def scenario(call: Call, recorder: Recorder, metrics: EdgeMetrics) -> None:
        got, answer_headers, answer = await call(method, target, body, **headers)
        assert got == status
        assert recorder.sent == []
        assert metrics.refused[reason] == 1
        assert sum(n for (_, code), n in metrics.requests.items() if code == str(status)) == 1
        shape = json.loads(answer)
        if target.startswith("/api/v2/"):
            assert shape["errors"][0]["reason"] == reason
        else:
            assert set(shape) == {"meta"} and shape["meta"]["error"]
        assert "key_prod_secret" not in answer.decode()
        if status == 405:
            assert answer_headers["Allow"] == "DELETE, PUT"

    run(scenario)


def test_endpoints_served_without_credentials_are_forwarded_without_them() -> None:
    async def scenario(call: Call, recorder: Recorder, metrics: EdgeMetrics) -> None:
        assert (await call("POST", "/unsubscribe/d-1", b'{"unsubscribe":true}'))[0] == 200
        assert (await call("POST", "/api/v1/metrics", b'{"delivery_id":"d-1","metric":"opened"}'))[0] == 200
        assert (await call("POST", "/push/events", b'{"delivery_id":"d-1","event":"opened"}'))[0] == 200
        assert [key for _, key in recorder.sent] == [None, b"d-1", b"d-1"]
        assert (await call("POST", "/api/v1/forms/f/submit", b"{}"))[0] == 401

    run(scenario)


def test_kafka_unavailable_is_503_with_retry_after_and_counted() -> None:
    async def scenario(call: Call, recorder: Recorder, metrics: EdgeMetrics) -> None:
        recorder.fail = True
        status, headers, answer = await call("POST", "/api/v2/entity", b"{}", Authorization=AUTH)
        assert status == 503 and headers["Retry-After"] == "2"
        assert json.loads(answer)["errors"][0]["reason"] == "kafka_unavailable"
        assert metrics.requests[("v2.entity", "503")] == 1
        assert (await call("GET", "/readyz"))[0] == 503
        assert (await call("GET", "/healthz"))[0] == 200
        assert b"trackbridge_edge_refused_total" in (await call("GET", "/metrics"))[2]

    run(scenario)


def test_the_region_lookup_points_the_client_back_at_the_edge() -> None:
    async def scenario(call: Call, recorder: Recorder, metrics: EdgeMetrics) -> None:
        status, _, answer = await call("GET", "/api/v1/accounts/region", Authorization=AUTH)
        assert status == 200 and json.loads(answer)["url"].startswith("http://127.0.0.1:")

    run(scenario)


def _key(method: str, path: str, body: Any = None) -> bytes | None:
    route = match_route(method, path)
    assert isinstance(route, Route)
    return envelope.partition_key(route, body)


def test_the_partition_key_is_the_person_however_the_call_names_them() -> None:
    assert _key("POST", "/api/v1/customers/42/events") == b"42"
    assert _key("DELETE", "/api/v1/customers/a%40b.co/devices/t") == b"a@b.co"
    assert _key("POST", "/api/v1/events", {"anonymous_id": "anon"}) == b"anon"
    assert _key("POST", "/api/v1/merge_customers", {"primary": {"email": "a@b.co"}}) == b"a@b.co"
    person = {"type": "person", "identifiers": {"cio_id": "abc"}}
    assert _key("POST", "/api/v2/entity", person) == b"cio_abc"  # as the v1 path spells it
    assert _key("POST", "/api/v2/entity", {"type": "person", "identifiers": {"id": 42}}) == b"42"
    same = {"batch": [{"type": "person", "identifiers": {"id": "7"}}] * 3}
    assert _key("POST", "/api/v2/batch", same) == b"7"
    mixed = {
        "batch": [
            {"type": "person", "identifiers": {"id": "7"}},
            {"type": "person", "identifiers": {"id": "8"}},
        ]
    }
    assert _key("POST", "/api/v2/batch", mixed) is None
    assert (
        _key(
            "POST",
            "/api/v2/entity",
            {"type": "object", "identifiers": {"object_type_id": "1", "object_id": "a"}},
        )
        == b"object:1:a"
    )
    assert _key("POST", "/api/v1/segments/1/add_customers", {"ids": ["1"]}) is None


def test_allowed_methods_tell_405_from_404_with_the_worker_route_table() -> None:
    assert allowed_methods("/api/v1/customers/42") == ("DELETE", "PUT")
    assert allowed_methods("/api/v2/batch") == ("POST",)
    assert allowed_methods("/api/v3/batch") == ()


def test_the_idempotency_key_must_be_visible_ascii() -> None:
    assert envelope.idempotency_key("abc-123_X") == "abc-123_X"
    for bad in ("", "a b", "é", "x" * 256, "a\tb"):
        assert envelope.idempotency_key(bad) is None


def test_the_envelope_encodes_the_raw_body_verbatim() -> None:
    value = envelope.encode(
        envelope.EdgeEnvelope(
            "PUT", "/p", None, None, msgspec.Raw(b'{"a":1e3}'), "2024-01-01T00:00:00.000000Z", "r"
        )
    )
    assert b'"body":{"a":1e3}' in value
