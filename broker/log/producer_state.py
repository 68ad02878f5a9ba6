"""Idempotent producers' state per partition (Kafka's ProducerStateManager, much reduced).

For each producer id: its epoch and the last few batches' sequence ranges with their offsets.
A leader checks every batch from an idempotent producer against it: a retried batch already
in the log is a duplicate and gets its original offsets back instead of being written twice;
a gap in the sequence is OUT_OF_ORDER_SEQUENCE_NUMBER. Followers keep the same state from
the batches they copy, so a new leader dedups retries of batches its predecessor wrote.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from broker.log.record_batch import NO_PRODUCER_ID, NO_SEQUENCE, BatchHeader

# Kafka keeps five: a producer has at most five requests in flight per partition.
BATCHES_KEPT = 5
SEQUENCE_MODULUS = 1 << 31


class SequenceCheck(Enum):
    ACCEPT = "accept"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out of order sequence"
    FENCED_EPOCH = "producer epoch is older than the current one"


@dataclass(frozen=True)
class BatchMetadata:
    first_sequence: int
    last_sequence: int
    first_offset: int
    last_offset: int


@dataclass
class ProducerEntry:
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_KEPT))

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else NO_SEQUENCE


class ProducerStateManager:
    """Owned by one partition replica; its callers hold the partition's lock."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}

    def check(self, header: BatchHeader) -> tuple[SequenceCheck, BatchMetadata | None]:
        """Kafka's ProducerAppendInfo.checkSequence and findDuplicateBatch, for a leader append.
        A producer this partition has no state for is accepted at any sequence: its state may
        have gone with retention, as Kafka accepts since KIP-360."""
        if header.producer_id == NO_PRODUCER_ID or header.base_sequence == NO_SEQUENCE:
            return SequenceCheck.ACCEPT, None
        entry = self.producers.get(header.producer_id)
        if entry is None:
            return SequenceCheck.ACCEPT, None
        if header.producer_epoch < entry.epoch:
            return SequenceCheck.FENCED_EPOCH, None
        if header.producer_epoch > entry.epoch:
            # A new epoch starts its sequences again at 0.
            return (SequenceCheck.ACCEPT if header.base_sequence == 0 else SequenceCheck.OUT_OF_ORDER), None
        for batch in entry.batches:
            if batch.first_sequence == header.base_sequence and batch.last_sequence == header.last_sequence:
                return SequenceCheck.DUPLICATE, batch
        if entry.last_sequence != NO_SEQUENCE and header.base_sequence != (entry.last_sequence + 1) % SEQUENCE_MODULUS:
            return SequenceCheck.OUT_OF_ORDER, None
        return SequenceCheck.ACCEPT, None

    def update(self, header: BatchHeader) -> None:
        """Record a batch now in the log (stamped with its offsets), whoever wrote it."""
        if header.producer_id == NO_PRODUCER_ID or header.base_sequence == NO_SEQUENCE:
            return
        entry = self.producers.get(header.producer_id)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = self.producers[header.producer_id] = ProducerEntry(header.producer_epoch)
        entry.batches.append(
            BatchMetadata(header.base_sequence, header.last_sequence, header.base_offset, header.last_offset)
        )

    def truncate_to(self, offset: int) -> None:
        """Forget batches at or beyond `offset`, as the log just did."""
        for producer_id in list(self.producers):
            entry = self.producers[producer_id]
            kept = [b for b in entry.batches if b.last_offset < offset]
            entry.batches.clear()
            entry.batches.extend(kept)
            if not kept:
                del self.producers[producer_id]
