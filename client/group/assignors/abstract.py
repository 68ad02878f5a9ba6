"""What every partition assignor shares (Kafka's ConsumerPartitionAssignor and
AbstractPartitionAssignor): the entry point `assign`, which keeps only the subscribed topics that
have partitions and sorts each member's result, and `MemberInfo`, the order in which assignors
serve members (static members first, KIP-345).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import Subscription
from minikafka_protocol.java import string_order

Assignments = dict[str, list[TopicPartition]]


@dataclass(frozen=True)
class MemberInfo:
    """AbstractPartitionAssignor.MemberInfo: members with a group instance id come first, by
    instance id, then the others by member id; so static members keep their partitions when
    their member id changes."""

    member_id: str
    group_instance_id: str | None = None

    def sort_key(self) -> tuple[int, bytes]:
        if self.group_instance_id is not None:
            return (0, string_order(self.group_instance_id))
        return (1, string_order(self.member_id))

    def __lt__(self, other: MemberInfo) -> bool:
        return self.sort_key() < other.sort_key()


class ConsumerPartitionAssignor(ABC):
    """Kafka's ConsumerPartitionAssignor with AbstractPartitionAssignor's entry point."""

    name: ClassVar[str]

    def assign(self, partitions_per_topic: Mapping[str, int],
               subscriptions: Mapping[str, Subscription]) -> Assignments:
        """Each member id's partitions, sorted. `partitions_per_topic` is the cluster metadata; as
        AbstractPartitionAssignor.assign does, only subscribed topics with partitions count."""
        subscribed = {topic for subscription in subscriptions.values() for topic in subscription.topics}
        partitions = {topic: count for topic, count in partitions_per_topic.items()
                      if topic in subscribed and count > 0}
        raw = self.assign_partitions(partitions, subscriptions)
        return {member: sorted(raw.get(member, ())) for member in subscriptions}

    @abstractmethod
    def assign_partitions(self, partitions_per_topic: Mapping[str, int],
                          subscriptions: Mapping[str, Subscription]) -> Assignments:
        """The assignment over topics that all have partitions (AbstractPartitionAssignor.assign)."""

