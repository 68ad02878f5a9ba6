"""Kafka's RoundRobinAssignor ("roundrobin")."""

from __future__ import annotations

from collections.abc import Mapping

from client.group.assignors.abstract import Assignments, ConsumerPartitionAssignor, MemberInfo
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import Subscription
from minikafka_protocol.java import string_order


class RoundRobinAssignor(ConsumerPartitionAssignor):
    """Kafka's RoundRobinAssignor: all partitions sorted by (topic, partition) are dealt to the
    sorted members in a circle, skipping members not subscribed to the partition's topic."""

    name = "roundrobin"

    def assign_partitions(self, partitions_per_topic: Mapping[str, int],
                          subscriptions: Mapping[str, Subscription]) -> Assignments:
        assignment: Assignments = {member: [] for member in subscriptions}
        members = sorted(MemberInfo(member, s.group_instance_id) for member, s in subscriptions.items())
        topics_of = {member: set(subscription.topics) for member, subscription in subscriptions.items()}
        topics = sorted({topic for subscription in subscriptions.values() for topic in subscription.topics},
                        key=string_order)
        position = 0  # Kafka's CircularIterator over the sorted members
        for topic in topics:
            for partition in range(partitions_per_topic.get(topic, 0)):
                while topic not in topics_of[members[position].member_id]:
                    position = (position + 1) % len(members)
                assignment[members[position].member_id].append(TopicPartition(topic, partition))
                position = (position + 1) % len(members)
        return assignment

