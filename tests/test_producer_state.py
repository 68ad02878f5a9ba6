"""An idempotent producer's batches as a leader checks them (no log: headers alone)."""

from __future__ import annotations

from broker.log import record_batch
from broker.log.producer_state import ProducerStateManager, SequenceCheck


def header(
    producer_id: int, epoch: int, sequence: int, count: int = 2, base_offset: int = 0
) -> record_batch.BatchHeader:
    batch = record_batch.build_batch([(None, b"v")] * count, producer_id=producer_id, producer_epoch=epoch,
                                     base_sequence=sequence, base_offset=base_offset)
    return record_batch.read_header(batch)


def test_a_retried_batch_is_a_duplicate_with_its_original_offsets() -> None:
    state = ProducerStateManager()
    state.update(header(7, 0, 0, base_offset=10))
    verdict, original = state.check(header(7, 0, 0))
    assert verdict is SequenceCheck.DUPLICATE and original is not None
    assert (original.first_offset, original.last_offset) == (10, 11)


def test_the_next_sequence_is_accepted_and_a_gap_is_out_of_order() -> None:
    state = ProducerStateManager()
    state.update(header(7, 0, 0))
    assert state.check(header(7, 0, 2))[0] is SequenceCheck.ACCEPT
    assert state.check(header(7, 0, 5))[0] is SequenceCheck.OUT_OF_ORDER


def test_an_older_producer_epoch_is_fenced_and_a_newer_one_starts_at_zero() -> None:
    state = ProducerStateManager()
    state.update(header(7, 3, 0))
    assert state.check(header(7, 2, 2))[0] is SequenceCheck.FENCED_EPOCH
    assert state.check(header(7, 4, 0))[0] is SequenceCheck.ACCEPT
    assert state.check(header(7, 4, 9))[0] is SequenceCheck.OUT_OF_ORDER


def test_unknown_producers_and_plain_batches_are_accepted() -> None:
    state = ProducerStateManager()
    assert state.check(header(9, 0, 42))[0] is SequenceCheck.ACCEPT
    assert state.check(header(-1, -1, -1))[0] is SequenceCheck.ACCEPT


def test_truncation_forgets_batches_past_the_new_end() -> None:
    state = ProducerStateManager()
    state.update(header(7, 0, 0, base_offset=0))
    state.update(header(7, 0, 2, base_offset=2))
    state.truncate_to(2)
    assert state.check(header(7, 0, 2))[0] is SequenceCheck.ACCEPT
    state.truncate_to(0)
    assert state.producers == {}
