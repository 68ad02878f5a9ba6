"""Kafka's murmur2 and the built-in partitioner, as pure functions."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from client.partitioner import StickyPartitioner, partition_for_key
from minikafka_protocol.java import murmur2, to_positive

# Kafka's UtilsTest.testMurmur2: Java's signed ints.
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("data, expected", KAFKA_MURMUR2.items())
def test_murmur2_gives_kafkas_values(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_murmur2_agrees_with_kafka_python_on_every_length_and_byte() -> None:
    rng = random.Random(7)
    for length in range(0, 70):
        for _ in range(20):
            data = bytes(rng.randrange(256) for _ in range(length))
            unsigned = kafka_python_murmur2(data)  # kafka-python's is unsigned, Kafka's a signed int
            assert murmur2(data) == (unsigned - (1 << 32) if unsigned >= 1 << 31 else unsigned)


def test_to_positive_clears_the_sign_bit_instead_of_taking_abs() -> None:
    assert to_positive(-1) == 0x7FFFFFFF
    assert to_positive(-(1 << 31)) == 0
    assert to_positive(5) == 5
    # abs() would differ: this key's hash is negative.
    assert partition_for_key(b"foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7 != abs(-790332482) % 7


def test_keys_spread_over_partitions_and_each_key_stays_on_one() -> None:
    keys = [f"key-{i}".encode() for i in range(3000)]
    counts = Counter(partition_for_key(key, 6) for key in keys)
    assert set(counts) == set(range(6)) and min(counts.values()) > 400
    assert all(partition_for_key(key, 6) == partition_for_key(key, 6) for key in keys[:50])


def test_sticky_partition_holds_until_a_new_batch_is_needed_then_moves_on() -> None:
    sticky = StickyPartitioner(random.Random(1))
    available = frozenset({0, 1, 2, 3})
    first = sticky.partition("t", available, 4)
    for _ in range(5):
        assert sticky.partition("t", available, 4) == first
        sticky.record_appended("t")
    moved = sticky.on_new_batch("t", available, 4)
    assert moved != first and sticky.partition("t", available, 4) == moved
    # A new batch before any record went to the partition is no reason to move.
    assert sticky.on_new_batch("t", available, 4) == moved


def test_sticky_partitioner_only_picks_partitions_with_a_leader_when_there_are_some() -> None:
    sticky = StickyPartitioner(random.Random(2))
    chosen = set()
    for _ in range(200):
        chosen.add(sticky.partition("t", frozenset({1, 3}), 4))
        sticky.record_appended("t")
        sticky.on_new_batch("t", frozenset({1, 3}), 4)
    assert chosen == {1, 3}
    # Alone with a leader: stays there even when moving on.
    lone = StickyPartitioner(random.Random(3))
    for _ in range(10):
        assert lone.partition("u", frozenset({2}), 4) == 2
        lone.record_appended("u")
        assert lone.on_new_batch("u", frozenset({2}), 4) == 2
    # No partition has a leader: any partition, the records wait in their batch.
    assert StickyPartitioner(random.Random(4)).partition("v", frozenset(), 3) in {0, 1, 2}


def test_sticky_partition_that_loses_its_leader_is_replaced() -> None:
    sticky = StickyPartitioner(random.Random(5))
    current = sticky.partition("t", frozenset({0, 1, 2}), 3)
    others = frozenset({0, 1, 2} - {current})
    assert sticky.partition("t", others, 3) in others


def test_moving_on_spreads_evenly_over_the_other_partitions() -> None:
    sticky = StickyPartitioner(random.Random(6))
    available = frozenset(range(5))
    counts: Counter[int] = Counter()
    for _ in range(5000):
        counts[sticky.partition("t", available, 5)] += 1
        sticky.record_appended("t")
        sticky.on_new_batch("t", available, 5)
    assert set(counts) == set(range(5)) and min(counts.values()) > 850
