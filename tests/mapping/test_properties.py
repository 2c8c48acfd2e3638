"""Property tests: `translate` never raises, and every call is accounted for (spec §0, §11).

Whatever the input — arbitrary bytes, arbitrary JSON, or a vector envelope with fields deleted,
retyped or replaced at any depth — a translation ends as outputs, problems or both, or as an
`unauthorized` credentials problem; and every output is a well-formed Pipelines call.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mapping import translate
from mapping.reasons import Reason
from mapping.results import Credentials, Problem, Translation
from tests.mapping.cases import CASES

ENVELOPES = [case.envelope for case in CASES if set(case.envelope) != {"raw"}]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["", " ", "cio_", "cio_x", "a@b.co", "0", "01", "1714550400", "page", "screen", "event"]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
PROPERTIES = settings(deadline=None, max_examples=2500, suppress_health_check=[HealthCheck.too_slow])


def check(raw: bytes) -> Translation:
    """The invariants of one translation."""
    translation = translate(raw)
    assert isinstance(translation, Translation)
    credentials = translation.credentials
    if isinstance(credentials, Problem):
        assert credentials.reason is Reason.UNAUTHORIZED
        assert (translation.outputs, translation.problems) == ([], [])
        return translation
    assert credentials is None or isinstance(credentials, Credentials)
    assert translation.outputs or translation.problems
    for problem in translation.problems:
        assert isinstance(problem.reason, Reason)
        assert problem.item_index is None or problem.item_index >= 0
    for output in translation.outputs:
        value = json.loads(output.value)
        assert {"type", "messageId", "timestamp", "sentAt", "receivedAt", "integrations", "context"} <= set(
            value
        )
        assert value["type"] == output.type
        assert value["integrations"] == {"All": True}
        assert isinstance(value["context"]["journeys"]["identifiers"], dict)
        assert output.key
        assert None not in value.values()  # optional fields are omitted, never null
    return translation


@given(st.binary(max_size=300))
@PROPERTIES
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


@given(JSON)
@PROPERTIES
def test_arbitrary_json(value: Any) -> None:
    check(json.dumps(value).encode())


def _locations(node: Any, found: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in a JSON tree, depth first."""
    if isinstance(node, dict):
        for key, child in node.items():
            found.append((node, key))
            _locations(child, found)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.append((node, index))
            _locations(child, found)
    return found


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> bytes:
    envelope = copy.deepcopy(draw(st.sampled_from(ENVELOPES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        # Mostly inside the body: a broken envelope field only ever gives malformed_envelope.
        inside = _locations(envelope.get("body"), [])
        in_body = bool(inside) and draw(st.integers(0, 9)) > 0
        locations = inside if in_body else _locations(envelope, [])
        container, key = draw(st.sampled_from(locations))
        action = draw(st.sampled_from(["delete", "replace", "null", "empty", "add"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(JSON)
        elif action == "null":
            container[key] = None
        elif action == "empty":
            container[key] = draw(st.sampled_from(["", [], {}, 0]))
        elif isinstance(container, dict):
            container[draw(st.text(max_size=12))] = draw(JSON)
        else:
            container.insert(key, draw(JSON))
    return json.dumps(envelope).encode()


@given(mutated_envelopes())
@PROPERTIES
def test_mutated_vector_envelopes(raw: bytes) -> None:
    first = check(raw)
    assert translate(raw) == first  # deterministic: a replay yields the same records


@given(st.sampled_from(ENVELOPES), st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=8))
@PROPERTIES
def test_corrupted_vector_bytes(envelope: dict[str, Any], position: int, noise: bytes) -> None:
    raw = json.dumps(envelope).encode()
    position %= len(raw)
    check(raw[:position] + noise + raw[position + len(noise) :])
