"""Kafka's consumer protocol metadata bytes (minikafka_protocol.consumer_protocol): Subscription
and Assignment, Kafka's ConsumerProtocolTest cases written again, with kafka-python as a second
opinion.
"""

from __future__ import annotations

import pytest
from assignments import tp, tps

from minikafka_protocol.consumer_protocol import (
    DEFAULT_GENERATION,
    Assignment,
    Subscription,
    deserialize_assignment,
    deserialize_subscription,
    serialize_assignment,
    serialize_subscription,
)
from minikafka_protocol.types import SchemaError

kp_metadata = pytest.importorskip("kafka.protocol.consumer.metadata")


def kafka_python_subscription(s: Subscription, version: int) -> bytes:
    cls = kp_metadata.ConsumerProtocolSubscription
    owned: dict[str, list[int]] = {}
    for topic, partition in sorted(s.owned_partitions):
        owned.setdefault(topic, []).append(partition)
    return cls(version=version, topics=sorted(s.topics), user_data=s.user_data,
               owned_partitions=[cls.TopicPartition(topic=t, partitions=p) for t, p in owned.items()],
               generation_id=s.generation_id, rack_id=s.rack_id).encode(version=version)


SUBSCRIPTIONS = [
    Subscription(["foo", "bar"], b"hello", tps("foo-0, bar-3, foo-2"), 7, rack_id="rack-a"),
    Subscription(["zeta", "alpha"], None, (), DEFAULT_GENERATION),
    Subscription([], b"", tps("t-1")),
]


@pytest.mark.parametrize("version", [0, 1, 2, 3])
@pytest.mark.parametrize("subscription", SUBSCRIPTIONS)
def test_subscription_round_trips_and_matches_kafka_python(subscription: Subscription, version: int) -> None:
    data = serialize_subscription(subscription, version)
    assert data == kafka_python_subscription(subscription, version)
    decoded = deserialize_subscription(data, group_instance_id="instance-1")
    assert sorted(decoded.topics) == sorted(subscription.topics)
    assert decoded.user_data == subscription.user_data
    assert decoded.owned_partitions == (tuple(sorted(subscription.owned_partitions)) if version >= 1 else ())
    assert decoded.generation_id == (subscription.generation_id if version >= 2 else DEFAULT_GENERATION)
    assert decoded.rack_id == (subscription.rack_id if version >= 3 else None)
    assert decoded.group_instance_id == "instance-1"
    assert serialize_subscription(decoded, version) == data


def test_subscription_version_1_layout() -> None:
    data = serialize_subscription(Subscription(["b", "a"], None, tps("a-1, a-0")), 1)
    assert data == bytes.fromhex(
        "0001"  # version 1
        "00000002" "0001" "61" "0001" "62"  # topics, sorted: "a", "b"
        "ffffffff"  # user data: null
        "00000001" "0001" "61" "00000002" "00000000" "00000001"  # owned: a -> [0, 1]
    )


def test_subscription_decodes_kafka_python_bytes_and_a_future_version() -> None:
    cls = kp_metadata.ConsumerProtocolSubscription
    owned = [cls.TopicPartition(topic="t", partitions=[2])]
    data = cls(version=3, topics=["t"], user_data=b"x", owned_partitions=owned, generation_id=5, rack_id="").encode(
        version=3)
    assert deserialize_subscription(data) == Subscription(["t"], b"x", [tp("t", 2)], 5)  # empty rack means none
    future = b"\x00\x64" + data[2:] + b"\x00\x03bar"  # version 100 with a field we do not know
    assert deserialize_subscription(future) == deserialize_subscription(data)
    with pytest.raises(SchemaError):
        deserialize_subscription(b"\xff\xff" + data[2:])
    with pytest.raises(SchemaError):
        deserialize_subscription(data[:9])


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_assignment_round_trips_and_matches_kafka_python(version: int) -> None:
    cls = kp_metadata.ConsumerProtocolAssignment
    assignment = Assignment([tp("b", 1), tp("a", 5), tp("b", 0)], b"data")
    data = serialize_assignment(assignment, version)
    expected = cls(version=version, user_data=b"data", assigned_partitions=[
        cls.TopicPartition(topic="b", partitions=[1, 0]), cls.TopicPartition(topic="a", partitions=[5])])
    assert data == expected.encode(version=version)
    # Kafka groups by topic in order of first appearance, merging a topic that comes back.
    assert deserialize_assignment(data) == Assignment([tp("b", 1), tp("b", 0), tp("a", 5)], b"data")
    assert deserialize_assignment(serialize_assignment([tp("t", 0)])) == Assignment([tp("t", 0)], None)
