"""Partitions written as Kafka's assignor tests write them: 't1-0, t2-3'."""

from __future__ import annotations

from minikafka_protocol.common import TopicPartition


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def tps(text: str) -> list[TopicPartition]:
    """'t1-0, t2-3' → [('t1', 0), ('t2', 3)], sorted."""
    if not text:
        return []
    parts = [item.strip().rsplit("-", 1) for item in text.split(",")]
    return sorted(tp(topic, int(p)) for topic, p in parts)
