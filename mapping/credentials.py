"""Parsing the Basic `authorization` header into Track credentials (spec §2 rules 1-3).

Only parsing lives here; matching the credentials against the configured sources (rule 4, with its
constant-time digest comparison) is the routing layer's job.
"""

from __future__ import annotations

import binascii

from mapping.reasons import Reason
from mapping.results import Credentials, Problem


def _unauthorized(detail: str) -> Problem:
    return Problem(Reason.UNAUTHORIZED, detail)


def parse_authorization(header: str | None) -> Credentials | Problem:
    """The site id and API key of a `Basic base64(site_id:api_key)` header, or why there are none.

    The scheme is `Basic` in any case, followed by whitespace and one token in the standard or the
    URL-safe base64 alphabet (go-customerio sends the latter), padded correctly or not at all. The
    decoded bytes must be UTF-8; they split at the first `:` into a non-empty site id and a
    non-empty key. Each failure is an `unauthorized` Problem whose detail names it (never the
    credentials themselves).
    """
    if header is None:
        return _unauthorized("authorization header is missing")
    parts = header.split()
    if not parts or parts[0].lower() != "basic":
        return _unauthorized("authorization scheme is not Basic")
    if len(parts) != 2:
        return _unauthorized("Basic authorization must carry exactly one token")
    token = parts[1]
    if "-" in token or "_" in token:
        token = token.replace("-", "+").replace("_", "/")
    if "=" not in token:
        token += "=" * (-len(token) % 4)
    elif len(token) % 4:
        return _unauthorized("Basic token is not valid base64")
    try:
        # strict_mode rejects characters outside the alphabet, bad padding and impossible lengths.
        decoded = binascii.a2b_base64(token, strict_mode=True)
    except ValueError:
        return _unauthorized("Basic token is not valid base64")
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return _unauthorized("Basic credentials are not UTF-8")
    site_id, colon, api_key = text.partition(":")
    if not colon:
        return _unauthorized("Basic credentials have no ':' between site id and API key")
    if not site_id:
        return _unauthorized("Basic credentials have an empty site id")
    if not api_key:
        return _unauthorized("Basic credentials have an empty API key")
    return Credentials(site_id, api_key)
