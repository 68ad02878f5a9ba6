"""Which partition a record goes to: Kafka's built-in partitioner.

A record with a key goes to `to_positive(murmur2(key)) % partitions`, byte for byte what Kafka's
Java client computes (BuiltInPartitioner.partitionForKey, Utils.murmur2), so a key lands on the
same partition whichever client wrote it. A record without a key goes to the topic's *sticky*
partition (KIP-480; KIP-794 in spirit): keyless records go to one partition until its batch is
full or sent, then to another, chosen at random among those with a leader. Batches fill up
instead of each record starting its own; Kafka's adaptive weighting of partitions by their
queue sizes (partitioner.adaptive.partitioning.enable) is left out.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence

from minikafka_protocol.java import murmur2, to_positive


def partition_for_key(key: bytes, num_partitions: int) -> int:
    return to_positive(murmur2(key)) % num_partitions


class StickyPartitioner:
    """The sticky partition of each topic, for records without a key (Kafka's BuiltInPartitioner).

    A topic's keyless records go to one partition until a record would start a new batch there,
    because the batch is full (batch.size) or was sent (linger.ms); that record and the next
    ones go to another partition, chosen at random among those with a leader (`available`), or
    among all when none has one, so that the records wait in their batch for a leader.
    Not thread-safe: the producer calls it under the lock that guards its batches.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        # topic -> [partition, records appended to it since it became sticky]
        self._sticky: dict[str, list[int]] = {}

    def partition(self, topic: str, available: Collection[int], num_partitions: int) -> int:
        """The topic's sticky partition; chosen anew if there is none or it lost its leader."""
        sticky = self._sticky.get(topic)
        if sticky is None or sticky[0] >= num_partitions or (available and sticky[0] not in available):
            return self._move(topic, -1 if sticky is None else sticky[0], available, num_partitions)
        return sticky[0]

    def on_new_batch(self, topic: str, available: Collection[int], num_partitions: int) -> int:
        """KIP-480: the sticky partition needs a new batch for the next record. Once records went
        to it, move on; the record goes to the partition this returns."""
        sticky = self._sticky[topic]
        if sticky[1] == 0:
            return sticky[0]
        return self._move(topic, sticky[0], available, num_partitions)

    def record_appended(self, topic: str) -> None:
        self._sticky[topic][1] += 1

    def _move(self, topic: str, previous: int, available: Collection[int], num_partitions: int) -> int:
        candidates: Sequence[int] = sorted(available) if available else range(num_partitions)
        if len(candidates) > 1 and previous in candidates:
            # Uniformly among the others: moving on must not land on the partition just left.
            skip = candidates.index(previous)
            index = self._rng.randrange(len(candidates) - 1)
            chosen = candidates[index + 1 if index >= skip else index]
        else:
            chosen = candidates[self._rng.randrange(len(candidates))]
        self._sticky[topic] = [chosen, 0]
        return chosen
