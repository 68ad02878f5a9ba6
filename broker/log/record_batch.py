"""Kafka's record batch, magic v2 (DefaultRecordBatch), byte for byte.

A batch is a 61-byte header and its records. The CRC (CRC-32C) covers everything from the
attributes to the end, so a leader can stamp the base offset and its leader epoch on a batch
without touching the CRC: the broker never re-encodes what a producer sent.

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
    attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
    producerId int64 | producerEpoch int16 | baseSequence int32 | recordsCount int32 | records

    record: length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
            keyLength varint | key | valueLength varint | value | headerCount varint |
            (headerKeyLength varint | headerKey | headerValueLength varint | headerValue)*

Varints are zigzag-encoded, as in protobuf's sint types. Compression is not supported.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from crc32c import crc32c

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
# batchLength counts the bytes after itself: a batch occupies LOG_OVERHEAD + batchLength bytes.
LOG_OVERHEAD = 12
PARTITION_LEADER_EPOCH_OFFSET = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAGIC = 2
COMPRESSION_CODEC_MASK = 0x07
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1

_BASE_OFFSET = struct.Struct(">q")
_INT32 = struct.Struct(">i")


class CorruptRecordError(ValueError):
    """Bytes that are not a well-formed batch (Kafka's CorruptRecordException)."""


class UnsupportedCompressionError(ValueError):
    """A batch compressed with a codec this broker does not read."""


class BatchHeader(NamedTuple):
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)


class Record(NamedTuple):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


# -- varints ---------------------------------------------------------------------------------


def _zigzag_slow(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Lengths and deltas are small: most varints come from this table.
_TABLE_MIN, _TABLE_MAX = -1, 1 << 14
_ZIGZAG = [_zigzag_slow(v) for v in range(_TABLE_MIN, _TABLE_MAX)]


def zigzag(value: int) -> bytes:
    if _TABLE_MIN <= value < _TABLE_MAX:
        return _ZIGZAG[value - _TABLE_MIN]
    return _zigzag_slow(value)


def read_zigzag(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    n, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise CorruptRecordError("varint runs past the end of the batch")
        b = buf[pos]
        n |= (b & 0x7F) << shift
        pos += 1
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7


# -- building --------------------------------------------------------------------------------

RecordInput = tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]


def _bytes_field(data: bytes | None) -> bytes:
    return _ZIGZAG[0] if data is None else zigzag(len(data)) + data


def build_batch(
    records: Sequence[RecordInput],
    timestamp_ms: int | None = None,
    base_offset: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
) -> bytes:
    """One uncompressed batch of (key, value) or (key, value, headers) records, all with the
    same CreateTime timestamp (so every timestamp delta is 0)."""
    if not records:
        raise ValueError("a batch holds at least one record")
    timestamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    parts: list[bytes] = []
    zero = _ZIGZAG[1]  # zigzag(0)
    for delta, record in enumerate(records):
        key, value = record[0], record[1]
        headers = record[2] if len(record) > 2 else ()  # type: ignore[misc]
        if headers:
            encoded = [zigzag(len(headers))]
            for name, data in headers:
                raw = name.encode()
                encoded += [zigzag(len(raw)), raw, _bytes_field(data)]
            header_bytes = b"".join(encoded)
        else:
            header_bytes = zero
        body = b"".join((b"\x00", zero, zigzag(delta), _bytes_field(key), _bytes_field(value), header_bytes))
        parts.append(zigzag(len(body)))
        parts.append(body)
    payload = b"".join(parts)
    tail = HEADER.pack(
        0, 0, 0, 0, 0, 0, len(records) - 1, timestamp, timestamp, producer_id, producer_epoch, base_sequence,
        len(records),
    )[ATTRIBUTES_OFFSET:] + payload
    head = struct.pack(
        ">qiibI", base_offset, HEADER_SIZE - LOG_OVERHEAD + len(payload), partition_leader_epoch, MAGIC, crc32c(tail)
    )
    return head + tail


# -- reading ---------------------------------------------------------------------------------


def read_header(buf: bytes | memoryview, pos: int = 0) -> BatchHeader:
    """The header of the batch at `pos`; CorruptRecordError if it is cut short or not v2."""
    if len(buf) - pos < HEADER_SIZE:
        raise CorruptRecordError(f"{len(buf) - pos} bytes left, fewer than a batch header")
    header = BatchHeader._make(HEADER.unpack_from(buf, pos))
    if header.magic != MAGIC:
        raise CorruptRecordError(f"magic {header.magic} at position {pos}, expected {MAGIC}")
    if header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise CorruptRecordError(f"batch length {header.batch_length} is shorter than a header")
    return header


def validate(buf: bytes | memoryview, pos: int, header: BatchHeader) -> None:
    """What a leader checks before appending: the whole batch is there, its CRC matches, its
    record count agrees with its offsets, and it is not compressed."""
    end = pos + header.size
    if end > len(buf):
        raise CorruptRecordError(f"batch at position {pos} needs {header.size} bytes, {len(buf) - pos} are left")
    computed = crc32c(bytes(buf[pos + ATTRIBUTES_OFFSET:end]))
    if computed != header.crc:
        raise CorruptRecordError(f"CRC mismatch: the batch says {header.crc}, its bytes give {computed}")
    if header.records_count <= 0 or header.last_offset_delta != header.records_count - 1:
        raise CorruptRecordError(
            f"{header.records_count} records with last offset delta {header.last_offset_delta}"
        )
    if header.attributes & COMPRESSION_CODEC_MASK:
        raise UnsupportedCompressionError(f"compression codec {header.attributes & COMPRESSION_CODEC_MASK}")


def batches(buf: bytes | memoryview, pos: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each whole batch in `buf`, stopping before an incomplete one. The
    CRC is not checked here: use validate()."""
    while len(buf) - pos >= HEADER_SIZE:
        header = read_header(buf, pos)
        if pos + header.size > len(buf):
            return
        yield pos, header
        pos += header.size


def stamp(batch: bytearray | memoryview, pos: int, base_offset: int, partition_leader_epoch: int) -> None:
    """Set a batch's base offset and leader epoch in place, as a leader does on append."""
    _BASE_OFFSET.pack_into(batch, pos, base_offset)
    _INT32.pack_into(batch, pos + PARTITION_LEADER_EPOCH_OFFSET, partition_leader_epoch)


def records(buf: bytes | memoryview, pos: int = 0, header: BatchHeader | None = None) -> list[Record]:
    """The records of the batch at `pos`."""
    header = header or read_header(buf, pos)
    data = bytes(buf[pos + HEADER_SIZE:pos + header.size])
    out: list[Record] = []
    i = 0
    try:
        for _ in range(header.records_count):
            length, i = read_zigzag(data, i)
            end = i + length
            i += 1  # attributes
            ts_delta, i = read_zigzag(data, i)
            offset_delta, i = read_zigzag(data, i)
            key_length, i = read_zigzag(data, i)
            key = None if key_length < 0 else data[i:i + key_length]
            i += max(key_length, 0)
            value_length, i = read_zigzag(data, i)
            value = None if value_length < 0 else data[i:i + value_length]
            i += max(value_length, 0)
            header_count, i = read_zigzag(data, i)
            headers: list[tuple[str, bytes | None]] = []
            for _ in range(header_count):
                name_length, i = read_zigzag(data, i)
                name = data[i:i + name_length].decode()
                i += name_length
                header_value_length, i = read_zigzag(data, i)
                headers.append((name, None if header_value_length < 0 else data[i:i + header_value_length]))
                i += max(header_value_length, 0)
            if i != end or end > len(data):
                raise CorruptRecordError(f"record at offset delta {offset_delta} is {length} bytes long, read {i}")
            out.append(Record(header.base_offset + offset_delta, header.base_timestamp + ts_delta, key, value,
                              tuple(headers)))
    except (IndexError, UnicodeDecodeError) as e:
        raise CorruptRecordError(f"record cut short: {e}") from None
    return out


def read_records(buf: bytes | memoryview) -> list[Record]:
    """Every record of every whole batch in `buf` (a fetch answer)."""
    return [r for pos, header in batches(buf) for r in records(buf, pos, header)]
