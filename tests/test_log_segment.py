"""OffsetIndex and LogSegment on real files: the index file format, reads by offset with the
KIP-74 rule, recovery of torn and corrupt tails, truncation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from broker.log import record_batch
from broker.log.file_cache import FileCache
from broker.log.log_config import LogConfig
from broker.log.log_segment import LogSegment, SegmentClosedError
from broker.log.offset_index import InvalidOffsetError, OffsetIndex


def stamped(base_offset: int, n: int = 1, value: bytes = b"v", epoch: int = 0, ts: int = 1000) -> bytes:
    return record_batch.build_batch(
        [(b"k", value)] * n, timestamp_ms=ts, base_offset=base_offset, partition_leader_epoch=epoch
    )


def fill(segment: LogSegment, count: int, records_per_batch: int = 2, value: bytes = b"v" * 20) -> list[bytes]:
    out = []
    for _ in range(count):
        batch = stamped(segment.next_offset, records_per_batch, value)
        header = record_batch.read_header(batch)
        segment.append(batch, header.last_offset, header.max_timestamp)
        out.append(batch)
    return out


def bases(data: bytes) -> list[int]:
    return [h.base_offset for _, h in record_batch.batches(data)]


# -- OffsetIndex -------------------------------------------------------------------------------


def test_index_file_holds_relative_offset_and_position_big_endian(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "00000000000000000100.index", 100, 1024)
    index.append(105, 4096)
    index.append(110, 8192)
    index.close()
    assert (tmp_path / "00000000000000000100.index").read_bytes() == bytes.fromhex(
        "00000005" "00001000" "0000000a" "00002000"
    )


def test_index_lookup_finds_the_largest_entry_at_or_below(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 100, 1024)
    assert index.lookup(150) == (100, 0)
    for offset, position in [(110, 100), (120, 200), (130, 300)]:
        index.append(offset, position)
    assert index.lookup(99) == (100, 0)
    assert index.lookup(109) == (100, 0)
    assert index.lookup(110) == (110, 100)
    assert index.lookup(125) == (120, 200)
    assert index.lookup(10_000) == (130, 300)
    assert index.lookup(10_000, max_position=300) == (120, 200)
    assert index.floor_position(250) == 200
    assert index.floor_position(50) == 0


def test_index_truncate_reset_and_reload(tmp_path: Path) -> None:
    path = tmp_path / "x.index"
    index = OffsetIndex(path, 0, 1024)
    for i in range(1, 6):
        index.append(i * 10, i * 100)
    index.truncate_to(30)
    assert index.entries() == [(10, 100), (20, 200)]
    assert path.stat().st_size == 16
    index.close()
    with path.open("ab") as f:
        f.write(b"\x00\x00\x00")  # a torn entry
    reloaded = OffsetIndex(path, 0, 1024)
    assert reloaded.entries() == [(10, 100), (20, 200)]
    assert path.stat().st_size == 16
    reloaded.reset()
    assert reloaded.entries() == [] and path.stat().st_size == 0
    reloaded.close()


def test_index_rejects_out_of_order_and_overflow(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 0, 16)  # two entries
    index.append(5, 10)
    with pytest.raises(InvalidOffsetError):
        index.append(5, 20)
    index.append(6, 20)
    assert index.is_full
    with pytest.raises(InvalidOffsetError):
        index.append(7, 30)
    index.close()


# -- LogSegment --------------------------------------------------------------------------------


def test_append_indexes_every_interval_and_reads_from_any_offset(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 0, LogConfig(index_interval_bytes=200))
    batches = fill(segment, 100)
    assert segment.next_offset == 200
    assert segment.size == sum(map(len, batches))
    entries = segment.index.entries()
    assert 10 < len(entries) < 100
    for offset, position in entries:
        assert record_batch.read_header(batches[offset // 2]).base_offset == offset
        assert position == sum(len(b) for b in batches[: offset // 2])
    for offset in range(200):
        data = segment.read(offset, 1)
        assert data == batches[offset // 2]  # the batch holding the offset, whole (KIP-74)
    assert segment.read(200, 1000) == b""
    segment.close()


def test_read_honours_max_bytes_and_max_offset(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 0, LogConfig(index_interval_bytes=100))
    batches = fill(segment, 20)
    size = len(batches[0])
    assert bases(segment.read(0, 3 * size)) == [0, 2, 4]
    assert bases(segment.read(0, 3 * size - 1)) == [0, 2]
    assert bases(segment.read(3, 2 * size)) == [2, 4]
    # A batch whose base offset is below max_offset comes, even if it reaches past it.
    assert bases(segment.read(0, 100 * size, max_offset=5)) == [0, 2, 4]
    assert bases(segment.read(0, 100 * size, max_offset=4)) == [0, 2]
    assert segment.read(4, 100 * size, max_offset=4) == b""
    assert bases(segment.read(0, 10**9)) == list(range(0, 40, 2))
    segment.close()


def test_reopen_finds_the_next_offset_from_the_index(tmp_path: Path) -> None:
    config = LogConfig(index_interval_bytes=100)
    segment = LogSegment(tmp_path, 50, config)
    batches = [stamped(50 + 2 * i, 2, b"x" * 30, ts=1000 + i) for i in range(30)]
    for batch in batches:
        header = record_batch.read_header(batch)
        segment.append(batch, header.last_offset, header.max_timestamp)
    segment.close()
    reopened = LogSegment(tmp_path, 50, config)
    assert not reopened.needs_recovery
    assert reopened.next_offset == 110
    assert reopened.size == sum(map(len, batches))
    assert reopened.max_timestamp == 1029
    assert reopened.read(77, 1) == batches[13]
    reopened.close()


def test_missing_index_or_torn_tail_asks_for_recovery(tmp_path: Path) -> None:
    config = LogConfig(index_interval_bytes=100)
    segment = LogSegment(tmp_path, 0, config)
    fill(segment, 10)
    segment.close()
    (tmp_path / "00000000000000000000.index").unlink()
    reopened = LogSegment(tmp_path, 0, config)
    assert reopened.needs_recovery
    assert reopened.recover(config.max_message_bytes) == 0
    assert len(reopened.index) > 0 and reopened.next_offset == 20
    reopened.close()
    with (tmp_path / "00000000000000000000.log").open("ab") as f:
        f.write(stamped(20)[:30])
    torn = LogSegment(tmp_path, 0, config)
    assert torn.needs_recovery
    torn.close()


def test_recover_cuts_a_torn_batch_and_rebuilds_the_index(tmp_path: Path) -> None:
    config = LogConfig(index_interval_bytes=100)
    segment = LogSegment(tmp_path, 0, config)
    batches = fill(segment, 10)
    good = segment.size
    segment.close()
    path = tmp_path / "00000000000000000000.log"
    with path.open("ab") as f:
        f.write(stamped(20, 3)[:-5])
    segment = LogSegment(tmp_path, 0, config)
    index_before = segment.index.entries()
    truncated = segment.recover(config.max_message_bytes)
    assert truncated == len(stamped(20, 3)) - 5
    assert path.stat().st_size == good == segment.size
    assert segment.next_offset == 20
    assert segment.index.entries() == index_before
    assert segment.read(0, 10**6) == b"".join(batches)
    segment.close()


def test_recover_cuts_a_corrupt_batch_and_everything_after_it(tmp_path: Path) -> None:
    config = LogConfig()
    segment = LogSegment(tmp_path, 0, config)
    batches = fill(segment, 5)
    segment.close()
    path = tmp_path / "00000000000000000000.log"
    data = bytearray(path.read_bytes())
    corrupt_at = len(batches[0]) + len(batches[1]) + record_batch.HEADER_SIZE + 3  # in batch 2's records
    data[corrupt_at] ^= 0xFF
    path.write_bytes(bytes(data))
    segment = LogSegment(tmp_path, 0, config)
    assert segment.recover(config.max_message_bytes) == sum(len(b) for b in batches[2:])
    assert segment.next_offset == 4
    assert bases(segment.read(0, 10**6)) == [0, 2]
    segment.close()


def test_recover_cuts_an_oversize_batch(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 0, LogConfig())
    small = fill(segment, 1)[0]
    big = stamped(2, 1, b"x" * 2000)
    segment.append(big, 2, 1000)
    assert segment.recover(max_message_bytes=1000) == len(big)
    assert segment.read(0, 10**6) == small
    segment.close()


def test_recover_rejects_offsets_going_backwards(tmp_path: Path) -> None:
    # The CRC does not cover the base offset: recovery checks that offsets go up.
    segment = LogSegment(tmp_path, 0, LogConfig())
    first = fill(segment, 2)
    backwards = stamped(1)
    segment.append(backwards, 1, 1000)
    assert segment.recover(10**6) == len(backwards)
    assert segment.read(0, 10**6) == b"".join(first)
    segment.close()


def test_truncate_removes_the_whole_batch_holding_the_offset(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 0, LogConfig(index_interval_bytes=100))
    batches = fill(segment, 20)
    assert segment.truncate_to(15) == sum(len(b) for b in batches[7:])  # batch 14..15 goes whole
    assert segment.next_offset == 14
    assert segment.size == sum(len(b) for b in batches[:7])
    assert all(offset < 14 for offset, _ in segment.index.entries())
    assert segment.truncate_to(100) == 0
    # Appending again goes where the cut was.
    fill(segment, 1)
    assert bases(segment.read(12, 10**6)) == [12, 14]
    size = segment.size
    assert segment.truncate_to(0) == size
    assert segment.size == 0 and segment.next_offset == 0
    segment.close()


def test_read_with_a_size_observed_before_an_append(tmp_path: Path) -> None:
    # A reader never looks past the size it saw, even if the index has moved on.
    segment = LogSegment(tmp_path, 0, LogConfig(index_interval_bytes=0))
    fill(segment, 3)
    size = segment.size
    fill(segment, 3)
    segment._size = size  # as a reader that sampled the size before the last appends sees it
    assert bases(segment.read(0, 10**6)) == [0, 2, 4]
    assert segment.read(6, 10**6) == b""
    segment.close()


def test_delete_renames_and_removes_files(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 7, LogConfig())
    fill(segment, 2)
    segment.change_file_suffix(".deleted")
    assert sorted(os.listdir(tmp_path)) == ["00000000000000000007.index.deleted", "00000000000000000007.log.deleted"]
    segment.delete()
    assert os.listdir(tmp_path) == []


def test_every_operation_works_with_a_one_descriptor_cache(tmp_path: Path) -> None:
    # The log file and the index evict each other: each operation reopens what it needs.
    cache = FileCache(1)
    config = LogConfig(index_interval_bytes=100)
    segment = LogSegment(tmp_path, 0, config, cache=cache)
    batches = fill(segment, 20)
    assert len(segment.index) > 3 and cache.evictions > 3
    assert segment.read(0, 10**6) == b"".join(batches)
    assert segment.truncate_to(30) == sum(len(b) for b in batches[15:])
    batches = batches[:15] + fill(segment, 2)
    segment.flush()
    assert segment.recover(config.max_message_bytes) == 0
    assert bases(segment.read(0, 10**6)) == list(range(0, 34, 2))
    assert segment.max_timestamp == 1000 and segment.last_modified_ms > 0
    segment.change_file_suffix(".deleted")
    cache.evict_all()
    assert segment.read(20, 1) == batches[10]  # reopened under the new name
    segment.close()
    reopened = LogSegment(tmp_path, 0, config, cache=cache)  # no such file any more: a new one
    assert reopened.size == 0
    reopened.delete()
    segment.delete()
    assert os.listdir(tmp_path) == [] and cache.open_count == 0


def test_a_read_in_flight_finishes_and_later_reads_fail_once_deleted(tmp_path: Path) -> None:
    cache = FileCache(4)
    segment = LogSegment(tmp_path, 0, LogConfig(), cache=cache)
    batches = fill(segment, 3)
    headers = segment.batch_headers()  # pins the descriptor while it is being read
    assert next(headers).base_offset == 0
    segment.change_file_suffix(".deleted")
    segment.delete()
    assert [h.base_offset for h in headers] == [2, 4]
    assert cache.open_count == 0  # the deferred close happened when the reader was done
    with pytest.raises(SegmentClosedError):
        segment.read(0, 10**6)
    with pytest.raises(SegmentClosedError):
        segment.flush()
    assert len(batches) == 3
