"""Routing by source (spec §2, §14): hand-built translations for every branch, then every vector."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mapping
from mapping.reasons import Kind, Reason
from mapping.results import Credentials, Output, Problem, Translation
from worker import routing
from worker.config.sources import SourcesConfig, parse_sources
from worker.records import ProblemRecord, Record
from worker.routing import FILTERS, Routed, Router

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "mapping" / "vectors"
TEST_CONFIG: dict[str, Any] = json.loads((VECTORS / "test_config.json").read_text())
PLAINTEXT_KEYS = {s["site_id"]: s["_test_only_plaintext_api_key"] for s in TEST_CONFIG["sources"]}

WEB = Credentials("site_prod_1", "key_prod_secret")
MOBILE = Credentials("site_mob_2", "key_mobile_secret")
ANALYTICS, WAREHOUSE, DLQ, SKIPPED = (
    "dp.out.analytics",
    "dp.out.warehouse",
    "journeys.dlq",
    "journeys.skipped",
)
ENVELOPE = {
    "method": "PUT",
    "path": "/api/v1/customers/42",
    "authorization": "Basic c2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0",
    "body": {"first_name": "Cool"},
    "received_at": "2024-05-01T10:00:00Z",
    "request_id": "req-1",
}
RAW = msgspec.json.encode(ENVELOPE)

requires_translate = pytest.mark.skipif(
    not hasattr(mapping, "translate"), reason="mapping.translate is not written yet"
)


def sources_toml(destinations: dict[str, str] | None = None, *, extra_sources: str = "") -> str:
    """test_config.json as a TOML sources file; `destinations` adds lines to a destination table."""
    text = f'dead_letter_topic = "{DLQ}"\nskip_topic = "{SKIPPED}"\n'
    for name in ("analytics", "warehouse"):
        text += f'[destinations.{name}]\ntopic = "dp.out.{name}"\n'
        text += (destinations or {}).get(name, "") + "\n"
    for source in TEST_CONFIG["sources"]:
        text += (
            f'[[sources]]\nname = "{source["name"]}"\nsite_id = "{source["site_id"]}"\n'
            f'api_key_sha256 = "{source["api_key_sha256"]}"\n'
            f"destinations = {json.dumps(source['destinations'])}\n"
            f'_test_only_plaintext_api_key = "{source["_test_only_plaintext_api_key"]}"\n'
        )
    return text + extra_sources


@pytest.fixture
def router_factory() -> Callable[..., Router]:
    """A Router over the vectors' sources; keyword arguments go to `sources_toml`."""

    def make(
        destinations: dict[str, str] | None = None, *, extra_sources: str = "", cache_size: int = 1024
    ) -> Router:
        config: SourcesConfig = parse_sources(sources_toml(destinations, extra_sources=extra_sources))
        return Router(config, cache_size=cache_size)

    return make


@pytest.fixture
def router(router_factory: Callable[..., Router]) -> Router:
    return router_factory()


def output(
    type: str = "track",
    *,
    key: str = "42",
    event: str | None = "purchase",
    item_index: int = 0,
    output_index: int = 0,
    email_only: bool = False,
) -> Output:
    value = msgspec.json.encode({"type": type, "userId": key, "n": [item_index, output_index]})
    return Output(type, key, value, item_index, output_index, event=event, email_only=email_only)


def translation(
    *,
    outputs: list[Output] | None = None,
    problems: list[Problem] | None = None,
    credentials: Credentials | Problem | None = WEB,
    request_id: str | None = "req-1",
    received_at: str | None = "2024-05-01T10:00:00Z",
    endpoint: str | None = "v1.identify",
) -> Translation:
    return Translation(
        request_id=request_id,
        received_at=received_at,
        endpoint=endpoint,
        credentials=credentials,
        outputs=outputs or [],
        problems=problems or [],
    )


def decoded(record: Record) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(record.value)
    return value


def assert_accounting_closes(routed: Routed) -> None:
    assert routed.items_consumed == routed.items_mapped + routed.items_skipped + routed.items_rejected


# --- outputs -----------------------------------------------------------------------------------


def test_every_output_goes_to_every_destination_of_its_source_with_the_spec_headers(router: Router) -> None:
    first, second = output("identify", event=None), output("group", key="acme", output_index=1)

    routed = router.route(RAW, translation(outputs=[first, second]))

    assert routed.source == "web-prod"
    assert [(r.topic, r.key, r.value) for r in routed.records] == [
        (ANALYTICS, b"42", first.value),
        (WAREHOUSE, b"42", first.value),
        (ANALYTICS, b"acme", second.value),
        (WAREHOUSE, b"acme", second.value),
    ]
    assert routed.records[2].headers == [
        ("cio-source", b"web-prod"),
        ("cio-request-id", b"req-1"),
        ("cio-item-index", b"0"),
        ("cio-output-index", b"1"),
    ]
    assert routed.outputs == {
        ("analytics", "identify"): 1,
        ("warehouse", "identify"): 1,
        ("analytics", "group"): 1,
        ("warehouse", "group"): 1,
    }
    assert (routed.items_consumed, routed.items_mapped) == (1, 1)
    assert routed.filtered == {}
    assert_accounting_closes(routed)


def test_mobile_outputs_go_to_analytics_only(router: Router) -> None:
    routed = router.route(RAW, translation(outputs=[output()], credentials=MOBILE))

    assert routed.source == "mobile"
    assert [r.topic for r in routed.records] == [ANALYTICS]
    assert routed.records[0].headers[0] == ("cio-source", b"mobile")


def test_a_source_without_destinations_maps_but_produces_nothing(
    router_factory: Callable[..., Router],
) -> None:
    lonely = (
        '[[sources]]\nname = "lonely"\nsite_id = "site_lonely"\n'
        f'api_key_sha256 = "{hashlib.sha256(b"k").hexdigest()}"\ndestinations = []\n'
    )
    router = router_factory(extra_sources=lonely)

    routed = router.route(RAW, translation(outputs=[output()], credentials=Credentials("site_lonely", "k")))

    assert routed.records == []
    assert (routed.source, routed.items_consumed, routed.items_mapped) == ("lonely", 1, 1)


@pytest.mark.parametrize(
    ("index", "text"), [(0, b"0"), (7, b"7"), (511, b"511"), (512, b"512"), (40211, b"40211")]
)
def test_index_headers_are_decimal(router: Router, index: int, text: bytes) -> None:
    routed = router.route(RAW, translation(outputs=[output(item_index=index, output_index=index)]))

    headers = dict(routed.records[0].headers)
    assert (headers["cio-item-index"], headers["cio-output-index"]) == (text, text)


def test_a_key_is_utf8(router: Router) -> None:
    routed = router.route(RAW, translation(outputs=[output(key="zoë@example.com")]))

    assert routed.records[0].key == "zoë@example.com".encode()


# --- filters -----------------------------------------------------------------------------------

FILTER_CASES = [
    pytest.param('types = ["identify"]', output("identify", event=None), None, id="types-keeps"),
    pytest.param('types = ["identify"]', output("track"), "types", id="types-drops"),
    pytest.param(
        'include_events = ["purchase"]', output("track", event="purchase"), None, id="include-keeps"
    ),
    pytest.param(
        'include_events = ["purchase"]', output("track", event="refund"), "include_events", id="include"
    ),
    pytest.param(
        'include_events = ["x"]', output("page", event="https://a.example/"), None, id="include-page"
    ),
    pytest.param('include_events = ["x"]', output("screen", event="Home"), None, id="include-screen"),
    pytest.param('include_events = ["x"]', output("identify", event=None), None, id="include-identify"),
    pytest.param(
        'exclude_events = ["purchase"]', output("track", event="purchase"), "exclude_events", id="exclude"
    ),
    pytest.param('exclude_events = ["purchase"]', output("track", event="refund"), None, id="exclude-keeps"),
    pytest.param('exclude_events = ["Home"]', output("screen", event="Home"), None, id="exclude-screen"),
    pytest.param(
        'exclude_events = ["Purchase"]', output("track", event="purchase"), None, id="case-sensitive"
    ),
    pytest.param("drop_email_only = true", output(email_only=True), "drop_email_only", id="email-only"),
    pytest.param("drop_email_only = true", output(email_only=False), None, id="email-keeps"),
    pytest.param("drop_email_only = false", output(email_only=True), None, id="email-off"),
    pytest.param(
        'types = ["identify"]\ndrop_email_only = true',
        output(email_only=True),
        "types",
        id="first-filter-wins",
    ),
    pytest.param(
        'types = ["track"]\nexclude_events = ["purchase"]\ndrop_email_only = true',
        output(event="purchase", email_only=True),
        "exclude_events",
        id="order",
    ),
]


@pytest.mark.parametrize(("filters", "call", "refusal"), FILTER_CASES)
def test_destination_filters(
    router_factory: Callable[..., Router], filters: str, call: Output, refusal: str | None
) -> None:
    router = router_factory({"warehouse": filters})

    routed = router.route(RAW, translation(outputs=[call]))

    topics = [r.topic for r in routed.records]
    if refusal is None:
        assert topics == [ANALYTICS, WAREHOUSE]
        assert routed.filtered == {}
        assert routed.outputs[("warehouse", call.type)] == 1
    else:
        assert refusal in FILTERS
        assert topics == [ANALYTICS]  # the unfiltered destination still gets it
        assert routed.filtered == {("warehouse", refusal): 1}
        assert ("warehouse", call.type) not in routed.outputs
    assert routed.items_mapped == 1  # a filtered call was still mapped, never dead-lettered
    assert not routed.rejected
    assert_accounting_closes(routed)


def test_filtered_counts_add_up_per_destination_and_filter(router_factory: Callable[..., Router]) -> None:
    router = router_factory({"analytics": 'exclude_events = ["refund"]', "warehouse": 'types = ["identify"]'})
    calls = [output(event="refund"), output(event="refund", output_index=1), output("identify", event=None)]

    routed = router.route(RAW, translation(outputs=calls))

    assert routed.filtered == {("analytics", "exclude_events"): 2, ("warehouse", "types"): 2}
    assert routed.outputs == {("analytics", "identify"): 1, ("warehouse", "identify"): 1}


# --- problems ----------------------------------------------------------------------------------


def test_a_problem_record_has_exactly_the_spec_shape(router: Router) -> None:
    problem = Problem(Reason.ENTITY_TOO_LARGE, "batch[3] is 40211 bytes; limit 32768", item_index=3)

    routed = router.route(RAW, translation(problems=[problem]))

    (record,) = routed.records
    assert record.topic == DLQ
    assert record.key == b"req-1"
    assert list(decoded(record).items()) == [
        ("kind", "reject"),
        ("reason", "entity_too_large"),
        ("detail", "batch[3] is 40211 bytes; limit 32768"),
        ("request_id", "req-1"),
        ("item_index", 3),
        ("source", "web-prod"),
        ("received_at", "2024-05-01T10:00:00Z"),
        ("envelope", {**ENVELOPE, "authorization": "<redacted>"}),
        ("input", {"bytes": len(RAW), "sha256": hashlib.sha256(RAW).hexdigest(), "copy": "redacted"}),
        ("sealed", None),
    ]
    assert record.headers == [
        ("cio-reason", b"entity_too_large"),
        ("cio-source", b"web-prod"),
        ("cio-request-id", b"req-1"),
        ("cio-item-index", b"3"),
    ]
    assert routed.rejected == {Reason.ENTITY_TOO_LARGE: 1}
    assert msgspec.json.decode(record.value, type=ProblemRecord).kind is Kind.REJECT


def test_a_skip_goes_to_the_skip_topic_as_kind_skip(router: Router) -> None:
    problem = Problem(Reason.EMPTY_RELATIONSHIPS, "cio_relationships is empty", item_index=0)

    routed = router.route(RAW, translation(problems=[problem]))

    (record,) = routed.records
    assert record.topic == SKIPPED
    assert decoded(record)["kind"] == "skip"
    assert routed.skipped == {Reason.EMPTY_RELATIONSHIPS: 1}
    assert routed.rejected == {}
    assert (routed.items_consumed, routed.items_skipped) == (1, 1)


def test_a_call_settled_before_auth_has_no_source(router: Router) -> None:
    problem = Problem(Reason.FORM_SUBMISSION_NOT_FORWARDED, "form submissions are not forwarded")

    routed = router.route(RAW, translation(problems=[problem], credentials=None))

    (record,) = routed.records
    assert (record.topic, routed.source) == (SKIPPED, None)
    assert decoded(record)["source"] is None
    assert decoded(record)["item_index"] is None
    assert [name for name, _ in record.headers] == ["cio-reason", "cio-request-id"]


def test_a_malformed_envelope_keeps_only_its_facts_and_has_no_key(router: Router) -> None:
    problem = Problem(Reason.MALFORMED_ENVELOPE, "not JSON")
    broken = translation(
        problems=[problem], credentials=None, request_id=None, received_at=None, endpoint=None
    )

    routed = router.route(b"this is not json", broken)

    (record,) = routed.records
    assert (record.topic, record.key) == (DLQ, None)
    assert record.headers == [("cio-reason", b"malformed_envelope")]
    value = decoded(record)
    assert (value["request_id"], value["received_at"], value["source"]) == (None, None, None)
    assert value["envelope"] is None  # not a JSON object: kept by its facts only
    assert value["input"] == {
        "bytes": 16,
        "sha256": hashlib.sha256(b"this is not json").hexdigest(),
        "copy": "undecodable",
    }
    assert value["sealed"] is None


def test_a_batch_routes_good_items_and_settles_bad_ones(router: Router) -> None:
    outputs = [
        output(item_index=0),
        output("identify", event=None, item_index=2),
        output("group", item_index=2),
    ]
    problems = [
        Problem(Reason.INVALID_BODY, "batch[1] is not an object", item_index=1),
        Problem(Reason.EMPTY_RELATIONSHIPS, "nothing to add", item_index=3),
    ]

    routed = router.route(RAW, translation(outputs=outputs, problems=problems, endpoint="v2.batch"))

    assert Counter(r.topic for r in routed.records) == {ANALYTICS: 3, WAREHOUSE: 3, DLQ: 1, SKIPPED: 1}
    dead = [decoded(r) for r in routed.records if r.topic == DLQ]
    assert [(d["item_index"], d["source"]) for d in dead] == [(1, "web-prod")]
    assert (routed.items_consumed, routed.items_mapped, routed.items_rejected, routed.items_skipped) == (
        4,
        2,
        1,
        1,
    )
    assert_accounting_closes(routed)


def test_items_consumed_counts_distinct_items_so_a_double_settlement_breaks_the_identity(
    router: Router,
) -> None:
    # A contract breach (an item both mapped and rejected) must show up, not be hidden by arithmetic.
    broken = translation(outputs=[output(item_index=0)], problems=[Problem(Reason.INVALID_BODY, "x", 0)])

    routed = router.route(RAW, broken)

    assert routed.items_consumed == 1
    assert routed.items_mapped + routed.items_rejected == 2


def test_outputs_without_credentials_break_the_contract(router: Router) -> None:
    with pytest.raises(ValueError, match="before authentication"):
        router.route(RAW, translation(outputs=[output()], credentials=None))


# --- authentication ----------------------------------------------------------------------------

UNAUTHORIZED_CASES = [
    pytest.param(
        Problem(Reason.UNAUTHORIZED, "no authorization header"), "no authorization header", id="header"
    ),
    pytest.param(
        Credentials("site_nope", "key_prod_secret"), "unknown site id 'site_nope'", id="unknown-site"
    ),
    pytest.param(Credentials("site_prod_1", "key_mobile_secret"), "does not match site id", id="wrong-key"),
    pytest.param(Credentials("site_prod_1", "KEY_PROD_SECRET"), "does not match site id", id="key-case"),
    pytest.param(Credentials("SITE_PROD_1", "key_prod_secret"), "unknown site id", id="site-case"),
]


@pytest.mark.parametrize(("credentials", "detail"), UNAUTHORIZED_CASES)
def test_unauthorized_is_one_whole_call_dead_letter_and_routes_nothing(
    router: Router, credentials: Credentials | Problem, detail: str
) -> None:
    settled = translation(
        outputs=[output()],
        problems=[Problem(Reason.INVALID_BODY, "dropped", item_index=1)],
        credentials=credentials,
    )

    routed = router.route(RAW, settled)

    (record,) = routed.records
    value = decoded(record)
    assert (record.topic, record.key, routed.source) == (DLQ, b"req-1", None)
    assert (value["kind"], value["reason"], value["source"], value["item_index"]) == (
        "reject",
        "unauthorized",
        None,
        None,
    )
    assert detail in value["detail"]
    assert "key_prod_secret" not in record.value.decode()
    assert value["envelope"]["authorization"] == "<redacted>"
    assert routed.rejected == {Reason.UNAUTHORIZED: 1}
    assert (routed.items_consumed, routed.items_mapped) == (1, 0)
    assert routed.outputs == {}


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the SHA-256 computations and constant-time comparisons routing makes."""
    calls: Counter[str] = Counter()
    sha256, compare_digest = hashlib.sha256, hmac.compare_digest

    def counting_sha256(data: bytes = b"") -> Any:
        calls["sha256"] += 1
        return sha256(data)

    def counting_compare_digest(a: Any, b: Any) -> bool:
        calls["compare_digest"] += 1
        return compare_digest(a, b)

    monkeypatch.setattr(routing, "sha256", counting_sha256)
    monkeypatch.setattr(hmac, "compare_digest", counting_compare_digest)
    return calls


def test_a_successful_lookup_is_cached_and_compared_in_constant_time(
    router: Router, spies: Counter[str]
) -> None:
    first = router.route(
        RAW, translation(outputs=[output()], credentials=Credentials("site_prod_1", "key_prod_secret"))
    )
    assert spies == {"sha256": 1, "compare_digest": 1}

    # An equal Credentials value (not the same object) is served from the cache.
    again = router.route(
        RAW, translation(outputs=[output()], credentials=Credentials("site_prod_1", "key_prod_secret"))
    )

    assert spies == {"sha256": 1, "compare_digest": 1}
    assert first.source == again.source == "web-prod"
    assert router.cached_credentials == 1


def test_a_failed_lookup_is_not_cached(router: Router, spies: Counter[str]) -> None:
    for _ in range(3):
        routed = router.route(RAW, translation(credentials=Credentials("site_prod_1", "guess")))
        assert routed.rejected == {Reason.UNAUTHORIZED: 1}

    assert spies["sha256"] == 3
    assert router.cached_credentials == 0


def test_every_source_of_a_site_id_is_compared(
    router_factory: Callable[..., Router], spies: Counter[str]
) -> None:
    second_key = (
        '[[sources]]\nname = "web-staging"\nsite_id = "site_prod_1"\n'
        f'api_key_sha256 = "{hashlib.sha256(b"key_staging").hexdigest()}"\ndestinations = ["analytics"]\n'
    )
    router = router_factory(extra_sources=second_key)

    staging = router.route(
        RAW, translation(outputs=[output()], credentials=Credentials("site_prod_1", "key_staging"))
    )
    prod = router.route(RAW, translation(outputs=[output()], credentials=WEB))

    assert (staging.source, prod.source) == ("web-staging", "web-prod")
    assert [r.topic for r in staging.records] == [ANALYTICS]
    assert spies["compare_digest"] == 4  # both candidates, both times: no early exit


def test_the_cache_is_bounded(router_factory: Callable[..., Router]) -> None:
    extra = "".join(
        f'[[sources]]\nname = "s{n}"\nsite_id = "site_{n}"\n'
        f'api_key_sha256 = "{hashlib.sha256(f"key_{n}".encode()).hexdigest()}"\ndestinations = []\n'
        for n in range(5)
    )
    router = router_factory(extra_sources=extra, cache_size=2)

    sources = [
        router.route(RAW, translation(credentials=Credentials(f"site_{n}", f"key_{n}"))).source
        for n in range(5)
    ]
    evicted = router.route(RAW, translation(credentials=Credentials("site_0", "key_0")))

    assert sources == [f"s{n}" for n in range(5)]
    assert evicted.source == "s0"  # still found after eviction
    assert router.cached_credentials == 2


def test_the_router_knows_every_topic_it_may_write(router: Router) -> None:
    assert router.topics == {ANALYTICS, WAREHOUSE, DLQ, SKIPPED}


# --- the spec vectors, through the real translator ---------------------------------------------


class Case(msgspec.Struct):
    name: str
    envelope: dict[str, Any]
    expect: list[dict[str, Any]]
    expect_reason: str | None


def vector_cases() -> list[Any]:
    return [
        pytest.param(case, id=f"{path.stem}/{case.name}")
        for path in sorted(VECTORS.glob("*.json"))
        if path.name != "test_config.json"
        for case in msgspec.json.decode(path.read_bytes(), type=list[Case])
    ]


def raw_of(case: Case) -> bytes:
    """spec §15: `{"raw": text}` is sent verbatim, any other envelope as its JSON."""
    if list(case.envelope) == ["raw"]:
        return str(case.envelope["raw"]).encode()
    return msgspec.json.encode(case.envelope)


def source_of(envelope: dict[str, Any]) -> str | None:
    """The test_config source whose plaintext credentials the envelope's header carries."""
    scheme, _, token = str(envelope.get("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    token = token.strip().rstrip("=")
    try:
        standard = token.replace("-", "+").replace("_", "/")  # spec §2: either alphabet
        text = base64.b64decode(standard + "=" * (-len(token) % 4), validate=True)
        site_id, _, key = text.decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    for source in TEST_CONFIG["sources"]:
        if source["site_id"] == site_id and PLAINTEXT_KEYS[site_id] == key:
            return str(source["name"])
    return None


TOPICS_OF_SOURCE = {"web-prod": [ANALYTICS, WAREHOUSE], "mobile": [ANALYTICS]}
BEFORE_AUTH = {
    "malformed_envelope",
    "unauthorized",
    "unknown_endpoint",
    "form_submission_not_forwarded",
    "manual_segment_not_forwarded",
    "custom_unsubscribe_not_forwarded",
    "not_a_data_call",
}
WHOLE_CALL = {*BEFORE_AUTH, "batch_too_large", "empty_batch"}


def items_of(case: Case) -> int:
    """Items in a call: a batch's elements once its wrapper passed, else the call itself."""
    envelope = case.envelope
    body = envelope.get("body")
    batch = body.get("batch") if isinstance(body, dict) else None
    is_batch = (
        str(envelope.get("method", "")).upper() == "POST"
        and str(envelope.get("path", "")).rstrip("/") == "/api/v2/batch"
        and isinstance(batch, list)
    )
    if not isinstance(batch, list) or not is_batch or case.expect_reason in WHOLE_CALL:
        return 1
    return len(batch)


@requires_translate
@pytest.mark.parametrize("case", vector_cases())
def test_every_vector_is_routed_exactly_as_spec_section_15_implies(router: Router, case: Case) -> None:
    raw = raw_of(case)

    routed = router.route(raw, mapping.translate(raw))

    source = source_of(case.envelope)
    by_topic: dict[str, list[Record]] = {}
    for record in routed.records:
        by_topic.setdefault(record.topic, []).append(record)
    output_topics = TOPICS_OF_SOURCE.get(source or "", []) if case.expect else []
    for topic in output_topics:
        assert [json.loads(r.value) for r in by_topic.pop(topic)] == case.expect
    problems = by_topic.pop(DLQ, []) + by_topic.pop(SKIPPED, [])
    assert by_topic == {}, "records on a topic the spec does not imply"
    if case.expect_reason is None:
        assert problems == []
    else:
        assert problems, f"expected a {case.expect_reason} record"
        kind = Reason(case.expect_reason).kind
        for record in problems:
            value = json.loads(record.value)
            assert record.topic == (SKIPPED if kind is Kind.SKIP else DLQ)
            assert (value["kind"], value["reason"]) == (kind.value, case.expect_reason)
            assert value["source"] == (None if case.expect_reason in BEFORE_AUTH else source)
            if case.expect_reason == "malformed_envelope":  # its request_id may be unusable
                assert value["request_id"] in {None, case.envelope.get("request_id")}
            else:
                assert value["request_id"] == case.envelope["request_id"]
            assert record.key == (None if value["request_id"] is None else value["request_id"].encode())
            envelope = value["envelope"] or {}
            assert all(envelope[key] == "<redacted>" for key in envelope if key.lower() == "authorization")
    assert routed.source == (None if case.expect_reason in BEFORE_AUTH else source)
    assert routed.items_consumed == items_of(case)
    assert_accounting_closes(routed)


@requires_translate
def test_the_accounting_identity_holds_over_all_vectors_together(router: Router) -> None:
    totals: Counter[str] = Counter()
    for param in vector_cases():
        (case,) = param.values
        raw = raw_of(case)
        routed = router.route(raw, mapping.translate(raw))
        totals.update(
            consumed=routed.items_consumed,
            mapped=routed.items_mapped,
            skipped=routed.items_skipped,
            rejected=routed.items_rejected,
            expected=items_of(case),
        )

    assert totals["consumed"] == totals["expected"]
    assert totals["consumed"] == totals["mapped"] + totals["skipped"] + totals["rejected"]
    assert min(totals["mapped"], totals["skipped"], totals["rejected"]) > 0


SMALL_ENVELOPES = [
    case.envelope
    for case in (param.values[0] for param in vector_cases())
    if list(case.envelope) != ["raw"] and len(raw_of(case)) < 1000
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@requires_translate
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda envelope, body: msgspec.json.encode({**envelope, "body": body}),
            st.sampled_from(SMALL_ENVELOPES),
            JSON_VALUES,
        ),
    )
)
def test_any_input_routes_without_raising_and_the_accounting_closes(router: Router, raw: bytes) -> None:
    routed = router.route(raw, mapping.translate(raw))

    assert routed.items_consumed >= 1
    assert_accounting_closes(routed)
    assert all(record.topic in router.topics for record in routed.records)
