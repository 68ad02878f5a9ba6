"""Kafka's RangeAssignor ("range", the default partition.assignment.strategy), without racks."""

from __future__ import annotations

from collections.abc import Mapping

from client.group.assignors.abstract import Assignments, ConsumerPartitionAssignor, MemberInfo
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import Subscription


class RangeAssignor(ConsumerPartitionAssignor):
    """Kafka's RangeAssignor, without racks: per topic, the sorted subscribers each get a range of
    `P // C` partitions, the first `P % C` of them one more, so co-partitioned topics line up."""

    name = "range"

    def assign_partitions(self, partitions_per_topic: Mapping[str, int],
                          subscriptions: Mapping[str, Subscription]) -> Assignments:
        assignment: Assignments = {member: [] for member in subscriptions}
        consumers_per_topic: dict[str, list[MemberInfo]] = {}
        for member, subscription in subscriptions.items():
            for topic in subscription.topics:
                consumers_per_topic.setdefault(topic, []).append(MemberInfo(member, subscription.group_instance_id))
        for topic, count in partitions_per_topic.items():
            consumers = sorted(consumers_per_topic.get(topic, ()))
            if not consumers:
                continue
            per_consumer, extra = divmod(count, len(consumers))
            for i, consumer in enumerate(consumers):
                start = per_consumer * i + min(i, extra)
                length = per_consumer + (1 if i < extra else 0)
                assignment[consumer.member_id].extend(TopicPartition(topic, p) for p in range(start, start + length))
        return assignment

