"""Endpoint table and path handling (spec §1, §4, §5)."""

from __future__ import annotations

import pytest

from mapping.reasons import Kind
from mapping.routes import ENDPOINTS, ROUTE_SKIPS, Endpoint, Route, match_route, split_path


def test_endpoint_names_are_stable() -> None:
    assert [endpoint.value for endpoint in ENDPOINTS] == [
        "v1.identify",
        "v1.delete",
        "v1.event",
        "v1.anonymous_event",
        "v1.add_device",
        "v1.delete_device",
        "v1.suppress",
        "v1.unsuppress",
        "v1.merge",
        "v1.metrics",
        "v1.push_events",
        "v1.form_submit",
        "v1.segment_add",
        "v1.segment_remove",
        "v1.unsubscribe",
        "v1.region",
        "v2.entity",
        "v2.batch",
    ]


def test_route_skips_are_skips() -> None:
    assert all(reason.kind is Kind.SKIP for reason in ROUTE_SKIPS.values())


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("PUT", "/api/v1/customers/42", Route(Endpoint.V1_IDENTIFY, ("42",))),
        ("put", "/api/v1/customers/42", Route(Endpoint.V1_IDENTIFY, ("42",))),
        ("DELETE", "/api/v1/customers/42", Route(Endpoint.V1_DELETE, ("42",))),
        ("POST", "/api/v1/customers/42/events", Route(Endpoint.V1_EVENT, ("42",))),
        ("POST", "/api/v1/events", Route(Endpoint.V1_ANONYMOUS_EVENT)),
        ("PUT", "/api/v1/customers/42/devices", Route(Endpoint.V1_ADD_DEVICE, ("42",))),
        ("DELETE", "/api/v1/customers/42/devices/t", Route(Endpoint.V1_DELETE_DEVICE, ("42", "t"))),
        ("POST", "/api/v1/customers/42/suppress", Route(Endpoint.V1_SUPPRESS, ("42",))),
        ("POST", "/api/v1/customers/42/unsuppress", Route(Endpoint.V1_UNSUPPRESS, ("42",))),
        ("POST", "/api/v1/merge_customers", Route(Endpoint.V1_MERGE)),
        ("POST", "/api/v1/metrics", Route(Endpoint.V1_METRICS)),
        ("POST", "/api/v1/push/events", Route(Endpoint.V1_PUSH_EVENTS)),
        ("POST", "/push/events", Route(Endpoint.V1_PUSH_EVENTS)),
        ("POST", "/api/v1/forms/contact/submit", Route(Endpoint.V1_FORM_SUBMIT, ("contact",))),
        ("POST", "/api/v1/segments/7/add_customers", Route(Endpoint.V1_SEGMENT_ADD, ("7",))),
        ("POST", "/api/v1/segments/7/remove_customers", Route(Endpoint.V1_SEGMENT_REMOVE, ("7",))),
        ("POST", "/unsubscribe/RPIL", Route(Endpoint.V1_UNSUBSCRIBE, ("RPIL",))),
        ("GET", "/api/v1/accounts/region", Route(Endpoint.V1_REGION)),
        ("POST", "/api/v2/entity", Route(Endpoint.V2_ENTITY)),
        ("POST", "/api/v2/batch", Route(Endpoint.V2_BATCH)),
    ],
)
def test_every_endpoint_is_reachable(method: str, path: str, route: Route) -> None:
    assert match_route(method, path) == route


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/customers/team%2F7/", ("team/7",)),  # %2F stays inside its segment
        ("/api/v1/customers/a+b@example.com", ("a+b@example.com",)),  # + is a literal plus
        ("/api/v1/customers/a%2Bb%40example.com", ("a+b@example.com",)),
        ("/api/v1/customers/100%", ("100%",)),  # a malformed % sequence is kept
        ("/api/v1/customers/%zz%4", ("%zz%4",)),
        ("/api/v1/customers/caf%C3%A9", ("café",)),
        ("/api/v1/customers/%FF", (None,)),  # not UTF-8 once decoded
        ("/api/v1/customers//", ("",)),
    ],
)
def test_segments_are_decoded_one_by_one(path: str, params: tuple[str | None, ...]) -> None:
    route = match_route("PUT", path)
    assert route is not None
    assert route.params == params


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/customers/42"),  # a known path with another method
        ("PUT", "/v1/identify/42"),  # the mapping page's summary-table paths
        ("POST", "/v1/customers/42/event"),
        ("POST", "/API/v1/events"),  # literal segments are case-sensitive
        ("POST", "api/v1/events"),  # not beginning with /
        ("PUT", "/api/v1/customers/"),  # a trailing slash, not an empty identifier
        ("POST", "/api/v2/batch//"),  # only one trailing empty segment is ignored
        ("POST", "/api/v2/people"),
        ("PUT", "/api/v1/customers/a%2Fb/devices/x/y"),
        ("POST", "/"),
        ("POST", ""),
    ],
)
def test_unknown_endpoints(method: str, path: str) -> None:
    assert match_route(method, path) is None


def test_literal_segments_match_once_decoded() -> None:
    assert match_route("POST", "/api/v1/%65vents") == Route(Endpoint.V1_ANONYMOUS_EVENT)


def test_split_path_drops_one_trailing_empty_segment() -> None:
    assert split_path("/a/b/") == ["", "a", "b"]
    assert split_path("/a//") == ["", "a", ""]
    assert split_path("/") == ["", ""]


def test_methods_compare_case_insensitively_in_ascii_only() -> None:
    assert match_route("Post", "/api/v2/batch") == Route(Endpoint.V2_BATCH)
    assert match_route("po\u017ft", "/api/v2/batch") is None  # LATIN SMALL LETTER LONG S
