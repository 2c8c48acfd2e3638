"""Parsing the Basic authorization header (spec §2 rules 1-3): each failure names itself."""

from __future__ import annotations

import base64

import pytest

from mapping.credentials import parse_authorization
from mapping.reasons import Reason
from mapping.results import Credentials, Problem


def basic(text: bytes, *, urlsafe: bool = False, padded: bool = True) -> str:
    token = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(text).decode()
    return "Basic " + (token if padded else token.rstrip("="))


@pytest.mark.parametrize(
    ("header", "site_id", "api_key"),
    [
        (basic(b"site_prod_1:key_prod_secret"), "site_prod_1", "key_prod_secret"),
        ("basic c2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0", "site_prod_1", "key_prod_secret"),
        ("BASIC\tc2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0  ", "site_prod_1", "key_prod_secret"),
        (basic(b"site_mob_2:key_mobile_secret", padded=False), "site_mob_2", "key_mobile_secret"),
        # go-customerio encodes with the URL-safe alphabet [CLIENT]
        (basic(b"s:k?>>", urlsafe=True), "s", "k?>>"),
        (basic(b"s:k?>>", urlsafe=True, padded=False), "s", "k?>>"),
        (basic(b"s:k:with:colons"), "s", "k:with:colons"),
        (basic("sité:clé".encode()), "sité", "clé"),
    ],
)
def test_valid_headers_give_credentials(header: str, site_id: str, api_key: str) -> None:
    assert parse_authorization(header) == Credentials(site_id, api_key)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (None, "authorization header is missing"),
        ("", "authorization scheme is not Basic"),
        ("Bearer c2l0ZV9wcm9kXzE6a2V5X3Byb2Rfc2VjcmV0", "authorization scheme is not Basic"),
        ("Basic", "Basic authorization must carry exactly one token"),
        ("Basic YTpi YTpi", "Basic authorization must carry exactly one token"),
        ("Basic %%%not-base64%%%", "Basic token is not valid base64"),
        ("Basic YTpi=", "Basic token is not valid base64"),  # padding only when it is correct
        ("Basic YQ=", "Basic token is not valid base64"),
        ("Basic Y", "Basic token is not valid base64"),  # an impossible length
        ("Basic ====", "Basic token is not valid base64"),
        ("Basic YQ==YQ==", "Basic token is not valid base64"),
        ("Basic é", "Basic token is not valid base64"),
        (basic(b"\xff\xfe:k"), "Basic credentials are not UTF-8"),
        (basic(b"no-colon"), "Basic credentials have no ':' between site id and API key"),
        (basic(b":key"), "Basic credentials have an empty site id"),
        (basic(b"site:"), "Basic credentials have an empty API key"),
    ],
)
def test_each_failure_is_unauthorized_with_its_detail(header: str | None, detail: str) -> None:
    assert parse_authorization(header) == Problem(Reason.UNAUTHORIZED, detail)


def test_details_never_contain_the_credentials() -> None:
    problem = parse_authorization(basic(b"site_prod_1:"))
    assert isinstance(problem, Problem)
    assert "site_prod_1" not in problem.detail
