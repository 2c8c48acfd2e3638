"""Mapping-core throughput: `mapping.Translator` (what the worker runs) vs bare msgspec decode+encode.

The inputs are a realistic mix of pre-built envelopes: v1 identifies with about ten attributes,
v1 track events, v1 page events, v2 batches of five mixed operations and single v2 entities.
Both figures come from the same run on one core; their ratio is the share of JSON round-trip
speed the translation keeps. (An earlier floor of 0.4 for it is withdrawn: the unavoidable work
below reaches about that alone. No target; the figures are for following the trend.)

A third figure bounds what any Python translator of these inputs can reach: the same envelopes
put through only the work no translation can skip, with every decision taken beforehand from
`Translator`'s own results. Per envelope it decodes the envelope and its body; per output it
computes the messageId, fills the output's Pipelines Struct and encodes it; then it returns the
Translation. Routing, validation, identities and times cost nothing there.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import random
import time
from collections.abc import Callable, Sequence

import msgspec

from mapping import Translator, pipelines
from mapping.envelope import Envelope
from mapping.message_id import item_key, message_id_for
from mapping.results import Output, Translation

_AUTHORIZATION = "Basic " + base64.b64encode(b"site_prod_1:key_prod_secret").decode()
_PLANS = ("free", "basic", "premium", "enterprise")
_CITIES = ("Paris", "Oslo", "Lyon", "Berlin", "Austin")


def _envelope(rng: random.Random, index: int, method: str, path: str, body: object) -> bytes:
    return json.dumps(
        {
            "method": method,
            "path": path,
            "query": None,
            "authorization": _AUTHORIZATION,
            "body": body,
            "received_at": f"2024-05-01T10:{index // 60 % 60:02d}:{index % 60:02d}Z",
            "request_id": f"req-{rng.getrandbits(64):016x}",
        }
    ).encode()


def _attributes(rng: random.Random, person: int) -> dict[str, object]:
    return {
        "email": f"user{person}@example.com",
        "first_name": "Jane",
        "last_name": f"Doe{person}",
        "plan": rng.choice(_PLANS),
        "created_at": 1_700_000_000 + person,
        "city": rng.choice(_CITIES),
        "score": round(rng.random() * 100, 2),
        "vip": rng.random() < 0.1,
        "tags": ["beta", "newsletter"],
        "company": f"Company {person % 97}",
    }


def _event(rng: random.Random, person: int) -> dict[str, object]:
    return {
        "name": rng.choice(("purchase", "added_to_cart", "signed_up", "viewed_pricing")),
        "data": {"product": f"sku-{rng.randrange(1000)}", "price": round(rng.random() * 50, 2), "qty": 1},
        "timestamp": 1_714_550_000 + person,
    }


def _page(rng: random.Random) -> dict[str, object]:
    path = rng.choice(("/pricing", "/docs/getting-started", "/blog/launch", "/"))
    return {"name": f"https://example.com{path}", "type": "page", "data": {"title": "Page", "path": path}}


def _operation(rng: random.Random, person: int) -> dict[str, object]:
    kind = rng.randrange(5)
    identifiers = {"id": str(person)}
    if kind == 0:
        return {
            "type": "person",
            "identifiers": identifiers,
            "action": "identify",
            "attributes": _attributes(rng, person),
        }
    if kind == 1:
        return {"type": "person", "identifiers": identifiers, "action": "event", **_event(rng, person)}
    if kind == 2:
        return {
            "type": "person",
            "identifiers": identifiers,
            "action": "page",
            "name": "/pricing",
            "attributes": {"title": "Pricing"},
        }
    if kind == 3:
        return {
            "type": "object",
            "identifiers": {"object_type_id": "1", "object_id": f"acme-{person % 50}"},
            "action": "add_relationships",
            "cio_relationships": [
                {"identifiers": {"id": str(person)}, "relationship_attributes": {"role": "admin"}}
            ],
        }
    return {
        "type": "delivery",
        "identifiers": {"id": f"dlv-{person}"},
        "action": "event",
        "name": "opened",
        "attributes": {"device_token": "tok"},
    }


def build_inputs(count: int, seed: int = 7) -> list[bytes]:
    """`count` envelopes in the mix: 3 identify, 3 track, 2 page, 1 batch of 5, 1 entity per 10."""
    rng = random.Random(seed)
    inputs: list[bytes] = []
    for index in range(count):
        person = rng.randrange(1_000_000)
        slot = index % 10
        if slot < 3:
            raw = _envelope(rng, index, "PUT", f"/api/v1/customers/{person}", _attributes(rng, person))
        elif slot < 6:
            raw = _envelope(rng, index, "POST", f"/api/v1/customers/{person}/events", _event(rng, person))
        elif slot < 8:
            raw = _envelope(rng, index, "POST", f"/api/v1/customers/{person}/events", _page(rng))
        elif slot == 8:
            batch = [_operation(rng, person + n) for n in range(5)]
            raw = _envelope(rng, index, "POST", "/api/v2/batch", {"batch": batch})
        else:
            raw = _envelope(rng, index, "POST", "/api/v2/entity", _operation(rng, person))
        inputs.append(raw)
    return inputs


def _rate(work: Callable[[bytes], object], inputs: Sequence[bytes], rounds: int) -> float:
    """Calls per second of `work` over `inputs`, best of `rounds` passes (gc paused while timing)."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for raw in inputs:
                work(raw)
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return len(inputs) / best


_CALLS = msgspec.json.Decoder(pipelines.AnyCall)

Planned = tuple[pipelines.Call, Output]


def _plan(translation: Translation) -> list[Planned]:
    """Each output of a translation as its decoded Pipelines Struct and its Output."""
    return [(_CALLS.decode(output.value), output) for output in translation.outputs]


def unavoidable_work(inputs: Sequence[bytes], translate: Translator) -> Callable[[bytes], object]:
    """The floor of any translator of `inputs`: only the work none can skip (see the module doc)."""
    translations = {raw: translate(raw) for raw in inputs}
    plans = {raw: (done, _plan(done)) for raw, done in translations.items()}
    envelope, body, encoder = msgspec.json.Decoder(Envelope), msgspec.json.Decoder(), msgspec.json.Encoder()
    replace = msgspec.structs.replace

    def work(raw: bytes) -> object:
        read = envelope.decode(raw)
        body.decode(read.body)
        done, planned = plans[raw]
        outputs = []
        for call, output in planned:
            message_id = message_id_for(item_key(read.request_id, output.item_index), output.output_index)
            value = encoder.encode(replace(call, message_id=message_id))
            outputs.append(Output(output.type, output.key, value, output.item_index, output.output_index))
        return Translation(read.request_id, done.received_at, done.endpoint, done.credentials, outputs, [])

    return work


def main(argv: Sequence[str] | None = None) -> None:
    """Print mapping-core calls/s, msgspec decode+encode calls/s on the same inputs, and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="distinct envelopes in the mix")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes; the best one counts")
    args = parser.parse_args(argv)
    inputs = build_inputs(args.messages)
    decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()

    def round_trip(raw: bytes) -> object:
        return encoder.encode(decoder.decode(raw))

    translate = Translator()
    outputs = sum(len(translate(raw).outputs) for raw in inputs)  # also warms up
    mapped = _rate(translate, inputs, args.rounds)
    baseline = _rate(round_trip, inputs, args.rounds)
    floor = _rate(unavoidable_work(inputs, translate), inputs, args.rounds)
    mean_size = sum(map(len, inputs)) / len(inputs)
    per_call = outputs / len(inputs)
    print(f"mapping core: {len(inputs)} envelopes, mean {mean_size:.0f} bytes, {per_call:.2f} outputs each")
    print(f"  translate:              {mapped:>10,.0f} calls/s  ({1e6 / mapped:.2f} us/call)")
    print(f"  msgspec decode+encode:  {baseline:>10,.0f} calls/s  ({1e6 / baseline:.2f} us/call)")
    print(f"  ratio:                  {mapped / baseline:>10.2f}")
    print(f"  unavoidable work only:  {floor:>10,.0f} calls/s  ({1e6 / floor:.2f} us/call)")
    print(f"  its ratio (a ceiling):  {floor / baseline:>10.2f}")


if __name__ == "__main__":
    main()
