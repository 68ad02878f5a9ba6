"""Kafka's ConsumerProtocol: the metadata bytes a consumer sends in JoinGroup
(ConsumerProtocolSubscription) and the leader hands out in SyncGroup (ConsumerProtocolAssignment),
versions 0-3, byte for byte. The coordinator carries them as opaque bytes; the members and the
tools that describe a group read them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from minikafka_protocol.common import TopicPartition
from minikafka_protocol.java import string_order
from minikafka_protocol.types import Reader, SchemaError, int16, int32, nullable_bytes, nullable_string

DEFAULT_GENERATION = -1  # AbstractStickyAssignor.DEFAULT_GENERATION: no generation known
HIGHEST_SUPPORTED_VERSION = 3  # of ConsumerProtocolSubscription and ConsumerProtocolAssignment


@dataclass(frozen=True)
class Subscription:
    """Kafka's ConsumerPartitionAssignor.Subscription: what one member sent in JoinGroup.

    `owned_partitions` and `generation_id` are the member's previous assignment and its generation,
    which the sticky assignor keeps as much as it can; Java's StickyAssignor carries them in
    `user_data` (StickyAssignorUserData), which is still honoured when present. `group_instance_id`
    comes from the JoinGroup member (static membership, KIP-345), not from these bytes.
    """

    topics: Sequence[str]
    user_data: bytes | None = None
    owned_partitions: Sequence[TopicPartition] = ()
    generation_id: int = DEFAULT_GENERATION
    group_instance_id: str | None = None
    rack_id: str | None = None

    def __post_init__(self) -> None:
        # Frozen, hashable and order-preserving; a topic listed twice counts once.
        object.__setattr__(self, "topics", tuple(dict.fromkeys(self.topics)))
        object.__setattr__(self, "owned_partitions", tuple(TopicPartition(*tp) for tp in self.owned_partitions))


@dataclass(frozen=True)
class Assignment:
    """Kafka's ConsumerPartitionAssignor.Assignment: what the leader gives one member in SyncGroup."""

    partitions: Sequence[TopicPartition] = ()
    user_data: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", tuple(TopicPartition(*tp) for tp in self.partitions))


def read_topic_partitions(reader: Reader) -> list[TopicPartition]:
    """An array of (topic, array of partitions), as the consumer protocol writes partitions."""
    partitions = []
    for _ in range(reader.array_length()):
        topic = reader.string()
        partitions.extend(TopicPartition(topic, reader.int32()) for _ in range(reader.array_length()))
    return partitions


def write_topic_partitions(groups: Iterable[tuple[str, Sequence[int]]]) -> bytes:
    groups = list(groups)
    out = [int32(len(groups))]
    for topic, partitions in groups:
        out += [nullable_string(topic), int32(len(partitions)), *(int32(p) for p in partitions)]
    return b"".join(out)


def group_by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Partitions grouped by topic, topics in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for topic, partition in partitions:
        groups.setdefault(topic, []).append(partition)
    return groups


def _check_version(version: int) -> int:
    """ConsumerProtocol.checkSubscriptionVersion: below 0 is an error, above 3 reads as 3."""
    if version < 0:
        raise SchemaError(f"unsupported consumer protocol version: {version}")
    return min(version, HIGHEST_SUPPORTED_VERSION)


def serialize_subscription(subscription: Subscription, version: int = 1) -> bytes:
    """ConsumerProtocol.serializeSubscription: a version-prefixed ConsumerProtocolSubscription.
    v0: topics (sorted), user data; v1: + owned partitions (sorted, by topic); v2: + generation id;
    v3: + rack id. The group instance id is not part of it."""
    version = _check_version(version)
    out = [int16(version), int32(len(subscription.topics))]
    out += [nullable_string(topic) for topic in sorted(subscription.topics, key=string_order)]
    out.append(nullable_bytes(subscription.user_data))
    if version >= 1:
        out.append(write_topic_partitions(group_by_topic(sorted(subscription.owned_partitions)).items()))
    if version >= 2:
        out.append(int32(subscription.generation_id))
    if version >= 3:
        out.append(nullable_string(subscription.rack_id))
    return b"".join(out)


def deserialize_subscription(data: bytes, group_instance_id: str | None = None) -> Subscription:
    """ConsumerProtocol.deserializeSubscription: a newer version reads as the newest we know (later
    fields are ignored, as Kafka does); fields of newer versions take their defaults."""
    reader = Reader(data)
    version = _check_version(reader.int16())
    topics = [reader.string() for _ in range(reader.array_length())]
    user_data = reader.nullable_bytes()
    owned = read_topic_partitions(reader) if version >= 1 else []
    generation = reader.int32() if version >= 2 else DEFAULT_GENERATION
    rack = reader.nullable_string() if version >= 3 else None
    return Subscription(topics, user_data, owned, generation, group_instance_id, rack or None)


def serialize_assignment(assignment: Assignment | Iterable[TopicPartition], version: int = 1) -> bytes:
    """ConsumerProtocol.serializeAssignment: a version-prefixed ConsumerProtocolAssignment (the same
    layout in versions 0-3): partitions grouped by topic in order of first appearance, user data."""
    if not isinstance(assignment, Assignment):
        assignment = Assignment(tuple(assignment))
    version = _check_version(version)
    return b"".join([int16(version), write_topic_partitions(group_by_topic(assignment.partitions).items()),
                     nullable_bytes(assignment.user_data)])


def deserialize_assignment(data: bytes) -> Assignment:
    """ConsumerProtocol.deserializeAssignment."""
    reader = Reader(data)
    _check_version(reader.int16())
    partitions = read_topic_partitions(reader)
    return Assignment(partitions, reader.nullable_bytes())
