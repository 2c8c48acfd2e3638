"""Keys land where every other Kafka client puts them: the Java client's murmur2, bit for bit."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from worker.produce.partitioner import Partitioner, murmur2

# The partition, out of 1000, that the Java client's default partitioner gives these keys (the
# values aiokafka's and kafka-python's own tests check against).
JAVA = [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)]


@pytest.mark.parametrize(("key", "expected"), JAVA)
def test_keys_get_the_java_clients_partition(key: bytes, expected: int) -> None:
    assert Partitioner().partition("t", key, 1000) == expected
    assert murmur2(b"") == 275646681  # Utils.murmur2 of the empty key


@given(st.binary(max_size=200))
def test_murmur2_matches_aiokafka_on_any_bytes(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_every_key_gets_the_partition_of_aiokafkas_default_partitioner() -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    partitioner = Partitioner(cache_size=64)  # small: the cache is cleared many times over
    default = DefaultPartitioner()
    for _ in range(20_000):
        kind = rng.randrange(3)
        if kind == 0:
            key = str(rng.randrange(10**9)).encode()
        elif kind == 1:
            key = f"user{rng.randrange(10**6)}@example.com".encode()
        else:
            key = rng.randbytes(rng.randrange(0, 64))
        count = rng.choice((1, 2, 3, 4, 6, 12, 50, 128))
        partitions = list(range(count))
        assert partitioner.partition("t", key, count) == default(key, partitions, partitions), (seed, key)


def test_keyless_records_stick_to_one_partition_per_topic_until_shuffled() -> None:
    partitioner = Partitioner()
    first = {partitioner.partition("t", None, 8) for _ in range(100)}
    assert len(first) == 1 and first <= set(range(8))
    seen = set()
    for _ in range(200):
        partitioner.shuffle()
        seen.add(partitioner.partition("t", None, 8))
    assert len(seen) > 1 and seen <= set(range(8))
