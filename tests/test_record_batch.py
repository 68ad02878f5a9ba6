"""Kafka's record batch v2, byte for byte, checked against kafka-python's reader and writer."""

from __future__ import annotations

import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from broker.log import record_batch as rb


def kafka_python_batch(records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for offset, (key, value, headers) in enumerate(records):
        builder.append(offset, timestamp=1234, key=key, value=value, headers=headers)
    return bytes(builder.build())


def test_our_batch_is_kafkas_bytes_but_for_the_unset_leader_epoch() -> None:
    records = [(b"k", b"v", [("h", b"1")]), (None, b"w", []), (b"", None, [])]
    ours = rb.build_batch(records, timestamp_ms=1234)
    theirs = kafka_python_batch(records)
    # Java's producer leaves the partition leader epoch at -1 (kafka-python writes 0); the CRC
    # does not cover it, so everything else must match.
    assert ours[:12] == theirs[:12] and ours[16:] == theirs[16:]
    assert rb.read_header(ours).partition_leader_epoch == -1


def test_kafka_python_reads_our_batch_and_we_read_theirs() -> None:
    ours = rb.build_batch([(None, b"x" * 300)] * 50 + [(b"key", b"y", [("a", None)])], timestamp_ms=99,
                          producer_id=7, producer_epoch=1, base_sequence=40)
    batch = DefaultRecordBatch(bytearray(ours))
    assert batch.validate_crc() and batch.producer_id == 7 and batch.base_sequence == 40
    read = list(batch)
    assert len(read) == 51 and read[-1].key == b"key" and read[-1].headers == [("a", None)]
    theirs = kafka_python_batch([(b"k", b"v", [])] * 3)
    header = rb.read_header(theirs)
    rb.validate(theirs, 0, header)
    assert [(r.offset, r.key, r.value) for r in rb.records(theirs)] == [(i, b"k", b"v") for i in range(3)]


def test_stamping_offsets_and_epoch_keeps_the_crc_valid() -> None:
    batch = bytearray(rb.build_batch([(None, b"a"), (None, b"b")]))
    rb.stamp(batch, 0, 1000, 7)
    header = rb.read_header(batch)
    rb.validate(batch, 0, header)
    assert (header.base_offset, header.last_offset, header.partition_leader_epoch) == (1000, 1001, 7)
    assert [r.offset for r in rb.records(batch)] == [1000, 1001]


def test_a_flipped_byte_fails_the_crc() -> None:
    batch = bytearray(rb.build_batch([(None, b"hello")]))
    batch[-2] ^= 0xFF
    with pytest.raises(rb.CorruptRecordError, match="CRC"):
        rb.validate(batch, 0, rb.read_header(batch))


def test_a_batch_cut_short_is_corrupt_and_not_yielded_whole() -> None:
    batch = rb.build_batch([(None, b"hello")] * 3)
    with pytest.raises(rb.CorruptRecordError):
        rb.validate(batch[:-1], 0, rb.read_header(batch[:-1]))
    with pytest.raises(rb.CorruptRecordError):
        rb.read_header(batch[:30])
    two = batch + batch[:-5]
    assert [pos for pos, _ in rb.batches(two)] == [0]


def test_wrong_magic_and_compressed_batches_are_refused() -> None:
    batch = bytearray(rb.build_batch([(None, b"x")]))
    batch[rb.MAGIC_OFFSET] = 1
    with pytest.raises(rb.CorruptRecordError, match="magic"):
        rb.read_header(batch)
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=1, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    builder.append(0, timestamp=1, key=None, value=b"x" * 100, headers=[])
    gzipped = bytes(builder.build())
    with pytest.raises(rb.UnsupportedCompressionError):
        rb.validate(gzipped, 0, rb.read_header(gzipped))


@pytest.mark.parametrize("value", [0, 1, -1, 63, -64, 64, 16383, 16384, -16385, 2**31 - 1, -(2**31), 2**62])
def test_zigzag_varints_round_trip(value: int) -> None:
    encoded = rb.zigzag(value)
    assert rb.read_zigzag(encoded, 0) == (value, len(encoded))
