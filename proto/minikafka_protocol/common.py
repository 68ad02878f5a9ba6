"""Kafka's TopicPartition."""

from __future__ import annotations

from typing import NamedTuple


class TopicPartition(NamedTuple):
    """Kafka's TopicPartition: a plain (topic, partition) tuple, so it sorts as Kafka's
    TopicPartitionComparator does (topic, then partition) and equals the tuple it holds."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"
