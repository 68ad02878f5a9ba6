"""A partition's log on real files (Log, LogConfig, LogManager): appends as leader and follower,
reads, rolls, recovery after an unclean shutdown, truncation, retention, and the log dirs."""

from __future__ import annotations

import os
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from crc32c import crc32c

from broker.log import file_cache, log_config, record_batch
from broker.log.file_cache import FileCache
from broker.log.leader_epoch_cache import EpochEntry
from broker.log.log_config import SERVER_SYNONYMS, TOPIC_CONFIGS, LogConfig
from broker.log.log_manager import (
    CLEAN_SHUTDOWN_FILE,
    RECOVERY_POINT_CHECKPOINT_FILE,
    DuplicateLogDirectoryError,
    LogManager,
    parse_log_dir_name,
)
from broker.log.record_batch import CorruptRecordError, UnsupportedCompressionError
from broker.log.unified_log import Log, OffsetOutOfRangeError, RecordTooLargeError, UnexpectedAppendOffsetError

SMALL = LogConfig(segment_bytes=1000, index_interval_bytes=100)


def batch(n: int = 1, value: bytes = b"value", ts: int | None = 1000) -> bytes:
    return record_batch.build_batch([(b"key", value)] * n, timestamp_ms=ts)


def headers(data: bytes) -> list[record_batch.BatchHeader]:
    return [h for _, h in record_batch.batches(data)]


def offsets(data: bytes) -> list[int]:
    return [r.offset for r in record_batch.read_records(data)]


def assert_valid(data: bytes) -> None:
    pos = 0
    for pos_, header in record_batch.batches(data):
        record_batch.validate(data, pos_, header)
        pos = pos_ + header.size
    assert pos == len(data), "a read returns whole batches only"


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def open_log(tmp_path: Path) -> Iterator[Callable[..., Log]]:
    opened: list[Log] = []

    def make(config: LogConfig = SMALL, **kwargs: Any) -> Log:
        log = Log(tmp_path / "topic-0", config, **kwargs)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def segment_files(log: Log) -> list[str]:
    return sorted(p.name for p in log.dir.iterdir() if p.suffix == ".log")


# -- LogConfig ---------------------------------------------------------------------------------


def test_log_config_defaults_are_kafkas() -> None:
    config = LogConfig()
    assert config.segment_bytes == 1073741824
    assert config.segment_ms == 604800000
    assert config.retention_ms == 604800000
    assert config.retention_bytes == -1
    assert config.max_message_bytes == 1048588
    assert config.index_interval_bytes == 4096
    assert config.segment_index_bytes == 10485760
    assert config.min_insync_replicas == 1
    assert config.unclean_leader_election_enable is False
    assert config.file_delete_delay_ms == 60000
    assert {c.field for c in TOPIC_CONFIGS.values()} == set(LogConfig.__dataclass_fields__)
    assert set(SERVER_SYNONYMS) == set(TOPIC_CONFIGS)


def test_log_config_from_topic_properties_over_defaults() -> None:
    defaults = LogConfig(retention_ms=1000)
    config = LogConfig.from_properties(
        {"segment.bytes": "2048", "unclean.leader.election.enable": "TRUE", "cleanup.policy": "delete"}, defaults
    )
    assert config.segment_bytes == 2048
    assert config.unclean_leader_election_enable is True
    assert config.retention_ms == 1000
    assert LogConfig.from_properties(config.to_properties()) == config


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("segment.bytes", "abc", "Not a number"),
        ("segment.bytes", "10", "at least 61"),
        ("retention.ms", "-2", "at least -1"),
        ("min.insync.replicas", "0", "at least 1"),
        ("unclean.leader.election.enable", "yes", "true or false"),
        ("max.message.bytes", str(1 << 31), "no more than"),
    ],
)
def test_log_config_bad_values(name: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as e:
        LogConfig.from_properties({name: value})
    assert "\n" not in str(e.value) and name in str(e.value)



def test_a_new_topic_s_configs_are_validated_by_the_one_table_the_logs_use() -> None:
    # CreateTopics once had a table of its own that let segment.bytes=20 through and refused
    # segment.ms; the broker then dropped the topic's whole config for its defaults.
    log_config.validate({"segment.ms": "3600000", "index.interval.bytes": "1024", "segment.index.bytes": "4096",
                         "file.delete.delay.ms": "0", "segment.bytes": "61"})
    with pytest.raises(ValueError, match="Value must be at least 61"):
        log_config.validate({"segment.bytes": "20"})
    with pytest.raises(ValueError, match=r"^Unknown topic config name: cleanup\.policy$"):
        log_config.validate({"cleanup.policy": "compact"})


def test_a_stored_config_with_one_bad_value_keeps_its_other_overrides() -> None:
    config, problems = LogConfig.from_stored_properties(
        {"segment.bytes": "20", "retention.ms": "1234", "min.insync.replicas": "2", "cleanup.policy": "delete"},
        LogConfig(segment_bytes=4096),
    )
    assert (config.segment_bytes, config.retention_ms, config.min_insync_replicas) == (4096, 1234, 2)
    assert problems == ["Invalid value 20 for configuration segment.bytes: Value must be at least 61"]

# -- appends and reads -------------------------------------------------------------------------


def test_append_as_leader_assigns_offsets_and_stamps_the_epoch(open_log: Callable[..., Log]) -> None:
    log = open_log()
    first = log.append_as_leader(batch(1), leader_epoch=5)
    second = log.append_as_leader(batch(3, ts=2000), leader_epoch=5)
    assert (first.first_offset, first.last_offset) == (0, 0)
    assert (second.first_offset, second.last_offset, second.max_timestamp) == (1, 3, 2000)
    assert [(h.base_offset, h.partition_leader_epoch) for h in second.batches] == [(1, 5)]
    assert log.log_end_offset == 4
    data = log.read(0, 10**6)
    assert_valid(data)  # stamping did not break the CRC
    assert [(h.base_offset, h.last_offset, h.partition_leader_epoch) for h in headers(data)] == [(0, 0, 5), (1, 3, 5)]
    assert offsets(data) == [0, 1, 2, 3]
    assert log.leader_epoch_cache.entries() == [EpochEntry(5, 0)]
    log.append_as_leader(batch(), leader_epoch=7)
    assert log.latest_epoch == 7
    assert log.leader_epoch_cache.entries() == [EpochEntry(5, 0), EpochEntry(7, 4)]
    assert log.end_offset_for_epoch(5) == (5, 4)
    assert log.end_offset_for_epoch(7) == (7, 5)


def test_append_as_leader_takes_several_batches_in_one_call(open_log: Callable[..., Log]) -> None:
    log = open_log()
    log.append_as_leader(batch(2), 1)
    info = log.append_as_leader(batch(2) + batch(1) + batch(3), 1)
    assert [(h.base_offset, h.last_offset) for h in info.batches] == [(2, 3), (4, 4), (5, 7)]
    assert (info.first_offset, info.last_offset) == (2, 7)
    assert offsets(log.read(0, 10**6)) == list(range(8))


@pytest.mark.parametrize(
    "records",
    [
        b"",
        batch()[:-1],  # a torn batch
        batch() + batch()[:30],  # trailing bytes that are no whole batch
        batch()[:20] + b"\xff" + batch()[21:],  # a bad CRC
    ],
    ids=["empty", "torn", "trailing", "crc"],
)
def test_append_refuses_bytes_that_are_not_whole_good_batches(open_log: Callable[..., Log], records: bytes) -> None:
    log = open_log()
    with pytest.raises(CorruptRecordError):
        log.append_as_leader(records, 0)
    assert log.log_end_offset == 0 and log.size_in_bytes == 0


def test_append_refuses_a_compressed_batch(open_log: Callable[..., Log]) -> None:
    data = bytearray(batch())
    struct.pack_into(">h", data, record_batch.ATTRIBUTES_OFFSET, 1)  # gzip
    struct.pack_into(">I", data, record_batch.CRC_OFFSET, crc32c(bytes(data[record_batch.ATTRIBUTES_OFFSET:])))
    with pytest.raises(UnsupportedCompressionError):
        open_log().append_as_leader(bytes(data), 0)


def test_append_refuses_a_batch_over_max_message_bytes(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(max_message_bytes=200))
    log.append_as_leader(batch(value=b"x" * 100), 0)
    with pytest.raises(RecordTooLargeError, match="larger than the maximum"):
        log.append_as_leader(batch(value=b"x" * 200), 0)
    assert log.log_end_offset == 1


def test_read_max_bytes_max_offset_and_the_first_batch_rule(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(index_interval_bytes=50))
    one = batch(2)
    for _ in range(10):
        log.append_as_leader(one, 0)
    size = len(one)
    assert [h.base_offset for h in headers(log.read(0, 3 * size))] == [0, 2, 4]
    assert [h.base_offset for h in headers(log.read(0, 3 * size - 1))] == [0, 2]
    assert [h.base_offset for h in headers(log.read(5, 2 * size))] == [4, 6]
    # KIP-74: the first batch comes whole even when it is larger than max_bytes.
    assert [h.base_offset for h in headers(log.read(7, 1))] == [6]
    assert [h.base_offset for h in headers(log.read(7, 0))] == [6]
    # Consumers stop at the high watermark.
    assert [h.base_offset for h in headers(log.read(0, 10**6, max_offset=6))] == [0, 2, 4]
    assert log.read(6, 10**6, max_offset=6) == b""
    assert log.read(20, 10**6) == b""


def test_read_out_of_range(open_log: Callable[..., Log]) -> None:
    log = open_log()
    log.append_as_leader(batch(3), 0)
    with pytest.raises(OffsetOutOfRangeError, match="range 0 to 3"):
        log.read(4, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)
    assert log.read(3, 100) == b""


def test_append_as_follower_keeps_offsets_and_epochs(tmp_path: Path, open_log: Callable[..., Log]) -> None:
    leader = Log(tmp_path / "leader-0", SMALL)
    leader.append_as_leader(batch(2), 3)
    leader.append_as_leader(batch(1), 4)
    leader.append_as_leader(batch(2), 4)
    follower = open_log()
    data = leader.read(0, 10**6)
    info = follower.append_as_follower(data)
    assert (info.first_offset, info.last_offset) == (0, 4)
    assert follower.read(0, 10**6) == data
    assert follower.leader_epoch_cache.entries() == [EpochEntry(3, 0), EpochEntry(4, 2)]
    assert follower.append_as_follower(b"").batches == []
    with pytest.raises(UnexpectedAppendOffsetError) as e:
        follower.append_as_follower(leader.read(2, 10**6))
    assert (e.value.first_offset, e.value.log_end_offset) == (2, 5)
    leader.close()


# -- rolling -----------------------------------------------------------------------------------


def test_roll_by_segment_bytes(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(segment_bytes=500))
    one = batch(1, b"x" * 100)
    for _ in range(10):
        log.append_as_leader(one, 0)
    per_segment = 500 // len(one)
    assert [s.base_offset for s in log.segments] == list(range(0, 10, per_segment))
    assert all(s.size <= 500 for s in log.segments)
    assert offsets(log.read(0, 10**6)) == list(range(per_segment))  # a read stays in one segment
    assert offsets(log.read(per_segment, 10**6))[0] == per_segment
    # A batch larger than a segment still goes in, alone.
    log.append_as_leader(batch(1, b"y" * 600), 0)
    assert log.active_segment.base_offset == 10 and log.active_segment.size > 500


def test_roll_by_segment_ms(open_log: Callable[..., Log]) -> None:
    clock = Clock()
    log = open_log(LogConfig(segment_ms=1000), time_ms=clock)
    log.append_as_leader(batch(), 0)
    clock.now += 1000
    log.append_as_leader(batch(), 0)
    assert len(log.segments) == 1
    clock.now += 1
    log.append_as_leader(batch(), 0)
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_roll_when_the_index_is_full(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(index_interval_bytes=0, segment_index_bytes=16))  # two index entries
    for _ in range(7):
        log.append_as_leader(batch(), 0)
    # The first batch of a segment is found without an entry; the next two fill the index.
    assert [s.base_offset for s in log.segments] == [0, 3, 6]
    assert all(len(s.index) <= 2 for s in log.segments)


def test_index_lookups_across_many_batches_and_segments(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(segment_bytes=10_000, index_interval_bytes=300))
    sizes = [1 + i % 4 for i in range(400)]
    for n in sizes:
        log.append_as_leader(batch(n, b"v" * 7), 2)
    assert len(log.segments) > 3
    assert sum(len(s.index) for s in log.segments) > 50
    starts = []
    offset = 0
    for n in sizes:
        starts.append(offset)
        offset += n
    for target in range(0, offset, 7):
        first = headers(log.read(target, 1))[0]
        assert first.base_offset <= target <= first.last_offset
    assert [h.base_offset for h in log.batch_headers(0)] == starts
    assert sizes[201] == 2 and [h.base_offset for h in log.batch_headers(starts[201] + 1)] == starts[201:]


# -- recovery ----------------------------------------------------------------------------------


def fill_log(log: Log, batches: int, n: int = 2) -> None:
    for _ in range(batches):
        log.append_as_leader(batch(n, b"x" * 50), 1)


def test_a_torn_last_batch_is_cut_on_an_unclean_open(tmp_path: Path, open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 20)
    last = log.active_segment
    last_batch = headers(log.read(38, 10**6))[-1]
    log.close()
    with last.log_path.open("r+b") as f:
        f.truncate(last.size - last_batch.size // 2)
    reopened = open_log(recovery_point=0, clean_shutdown=False)
    assert reopened.log_end_offset == 38
    assert offsets(reopened.read(0, 10**6))[0] == 0
    assert reopened.read(38, 10**6) == b""
    with pytest.raises(OffsetOutOfRangeError):
        reopened.read(39, 10**6)
    # Appends carry on from the cut.
    assert reopened.append_as_leader(batch(), 1).first_offset == 38


def test_a_corrupt_byte_in_the_last_batch_is_cut_on_an_unclean_open(open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 20)
    last = log.active_segment
    log.close()
    data = bytearray(last.log_path.read_bytes())
    data[-3] ^= 0x01
    last.log_path.write_bytes(bytes(data))
    reopened = open_log(clean_shutdown=False)
    assert reopened.log_end_offset == 38
    for start in range(0, 38, 2):
        assert_valid(reopened.read(start, 10**6))


def test_a_clean_open_keeps_everything(open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 20)
    data = b"".join(log.read(s.base_offset, 10**6) for s in log.segments)
    segments = [s.base_offset for s in log.segments]
    log.close()
    reopened = open_log()
    assert [s.base_offset for s in reopened.segments] == segments
    assert reopened.log_end_offset == 40
    assert b"".join(reopened.read(s.base_offset, 10**6) for s in reopened.segments) == data
    assert reopened.leader_epoch_cache.entries() == [EpochEntry(1, 0)]


def test_a_torn_tail_is_cut_even_after_a_clean_shutdown(open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 3)
    last = log.active_segment
    log.close()
    with last.log_path.open("ab") as f:
        f.write(batch()[:40])
    reopened = open_log()
    assert reopened.log_end_offset == 6
    assert reopened.active_segment.size == last.size


def test_recovery_starts_at_the_recovery_point_and_drops_what_follows_corruption(
    open_log: Callable[..., Log],
) -> None:
    log = open_log()
    fill_log(log, 40)
    segments = log.segments
    assert len(segments) >= 4
    log.close()
    # A corrupt byte in the first segment, below the recovery point: trusted, not checked.
    first = bytearray(segments[0].log_path.read_bytes())
    first[-3] ^= 0x01
    segments[0].log_path.write_bytes(bytes(first))
    # A corrupt byte in the second segment, at the recovery point: everything after it goes.
    second = bytearray(segments[1].log_path.read_bytes())
    second[-3] ^= 0x01
    segments[1].log_path.write_bytes(bytes(second))
    reopened = open_log(recovery_point=segments[1].base_offset + 1, clean_shutdown=False)
    assert [s.base_offset for s in reopened.segments] == [segments[0].base_offset, segments[1].base_offset]
    assert reopened.log_end_offset == segments[2].base_offset - 2
    assert segment_files(reopened) == [segments[0].log_path.name, segments[1].log_path.name]


def test_recovery_drops_leader_epochs_past_the_recovered_end(open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 2)
    log.append_as_leader(batch(), 2)
    log.assign_epoch_start_offset(3, 5)  # as a new leader does before it writes
    assert log.leader_epoch_cache.entries() == [EpochEntry(1, 0), EpochEntry(2, 4), EpochEntry(3, 5)]
    active = log.active_segment
    log.close()
    with active.log_path.open("r+b") as f:
        f.truncate(active.size - 10)
    reopened = open_log(clean_shutdown=False)
    assert reopened.log_end_offset == 4
    assert reopened.leader_epoch_cache.entries() == [EpochEntry(1, 0)]


def test_leftover_files_are_deleted_on_open(tmp_path: Path, open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 2)
    log.close()
    for name in ["00000000000000000099.log.deleted", "00000000000000000000.log.cleaned",
                 "00000000000000000000.log.swap", "leader-epoch-checkpoint.tmp", "00000000000000000077.index"]:
        (log.dir / name).write_bytes(b"junk")
    reopened = open_log()
    assert sorted(p.name for p in reopened.dir.iterdir()) == [
        "00000000000000000000.index", "00000000000000000000.log", "leader-epoch-checkpoint",
    ]
    assert reopened.log_end_offset == 4


# -- truncation --------------------------------------------------------------------------------


def test_truncate_to_the_middle_of_a_batch_removes_it_whole(open_log: Callable[..., Log]) -> None:
    log = open_log()
    log.append_as_leader(batch(3), 1)
    log.append_as_leader(batch(3), 2)
    log.truncate_to(4)
    assert log.log_end_offset == 3
    assert log.leader_epoch_cache.entries() == [EpochEntry(1, 0)]
    assert offsets(log.read(0, 10**6)) == [0, 1, 2]
    log.truncate_to(100)  # past the end: nothing to do
    assert log.log_end_offset == 3
    assert log.append_as_leader(batch(), 3).first_offset == 3


def test_truncate_to_a_segment_boundary_deletes_later_segments(open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 40)
    segments = log.segments
    cut = segments[2].base_offset
    log.truncate_to(cut)
    assert [s.base_offset for s in log.segments] == [segments[0].base_offset, segments[1].base_offset]
    assert log.log_end_offset == cut
    assert segment_files(log) == [segments[0].log_path.name, segments[1].log_path.name]
    assert log.append_as_leader(batch(), 1).first_offset == cut
    log.close()
    assert Log(log.dir, SMALL).log_end_offset == cut + 1


def test_truncate_fully_and_start_at(open_log: Callable[..., Log]) -> None:
    log = open_log()
    fill_log(log, 20)
    log.truncate_fully_and_start_at(500)
    assert (log.log_start_offset, log.log_end_offset) == (500, 500)
    assert segment_files(log) == ["00000000000000000500.log"]
    assert log.leader_epoch_cache.entries() == []
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    assert log.append_as_leader(batch(), 4).first_offset == 500
    assert log.leader_epoch_cache.entries() == [EpochEntry(4, 500)]


# -- retention ---------------------------------------------------------------------------------


def test_retention_by_size_keeps_the_active_segment_and_the_high_watermark(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(segment_bytes=1000, retention_bytes=1500))
    fill_log(log, 40)
    log.append_as_leader(batch(), 2)
    segments = log.segments
    assert len(segments) >= 5
    # Nothing at or above the high watermark goes: segment 1 ends past it.
    assert log.delete_old_segments(high_watermark=segments[1].base_offset + 1, now_ms=0) == 1
    assert log.log_start_offset == segments[1].base_offset
    assert log.delete_old_segments(high_watermark=log.log_end_offset, now_ms=0) > 0
    assert log.size_in_bytes >= 1500
    assert log.size_in_bytes - log.segments[0].size < 1500
    assert log.active_segment is segments[-1]
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100)
    assert log.leader_epoch_cache.entries()[0] == EpochEntry(1, log.log_start_offset)
    assert not any(p.name.endswith(".deleted") for p in log.dir.iterdir())


def test_retention_by_time_never_deletes_the_active_segment(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(segment_bytes=300, retention_ms=10_000))
    for ts in range(1000, 1010):
        log.append_as_leader(batch(1, b"x" * 100, ts=ts), 0)
    log.append_as_leader(batch(1, b"x" * 100, ts=50_000), 0)
    segments = log.segments
    assert log.delete_old_segments(high_watermark=log.log_end_offset, now_ms=5000) == 0
    # Old enough: every segment but the active one (and one whose records are recent).
    deleted = log.delete_old_segments(high_watermark=log.log_end_offset, now_ms=1009 + 10_001)
    assert deleted == len(segments) - 1
    assert log.segments == [segments[-1]]
    assert log.log_start_offset == segments[-1].base_offset
    assert log.delete_old_segments(high_watermark=log.log_end_offset, now_ms=10**12) == 0
    assert len(log.segments) == 1


def test_unlimited_retention(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(segment_bytes=300, retention_ms=-1, retention_bytes=-1))
    fill_log(log, 20)
    assert log.delete_old_segments(log.log_end_offset, now_ms=10**15) == 0


# -- concurrency and speed ---------------------------------------------------------------------


def test_reads_alongside_appends_see_whole_batches(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(segment_bytes=5000, index_interval_bytes=200))
    done = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                end = log.log_end_offset
                data = log.read(0, 10**6) if end else b""
                assert_valid(data)
                start = max(end - 3, 0)
                assert_valid(log.read(start, 10**6))
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(300):
        log.append_as_leader(batch(3, b"x" * 40), 0)
    done.set()
    thread.join()
    assert not errors, errors[0]


def test_reads_alongside_retention_and_truncation_see_data_or_out_of_range(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig(segment_bytes=400, retention_bytes=0))
    done = threading.Event()
    errors: list[BaseException] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        try:
            while not done.is_set():
                try:
                    assert_valid(log.read(log.log_start_offset, 10**6))
                    reads += 1
                except OffsetOutOfRangeError:
                    pass
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    for round_ in range(30):
        fill_log(log, 10)
        log.delete_old_segments(log.log_end_offset, now_ms=0)
        if round_ % 3 == 0:
            log.truncate_to(log.log_end_offset - 3)
    done.set()
    thread.join()
    assert not errors, errors[0]
    assert reads > 0


def test_appending_a_110_kb_batch_takes_well_under_a_millisecond(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig())
    big = record_batch.build_batch([(b"k", b"x" * 110_000)])
    log.append_as_leader(big, 0)
    rounds = 50
    started = time.perf_counter()
    for _ in range(rounds):
        log.append_as_leader(big, 0)
    per_append = (time.perf_counter() - started) / rounds
    assert per_append < 0.001, f"{per_append * 1e6:.0f} µs per append"


def test_reading_1_mb_takes_well_under_a_millisecond(open_log: Callable[..., Log]) -> None:
    log = open_log(LogConfig())
    for _ in range(120):
        log.append_as_leader(batch(10, b"x" * 1000), 0)
    assert len(log.read(0, 1 << 20)) > 1_000_000
    rounds = 50
    started = time.perf_counter()
    for i in range(rounds):
        log.read(i, 1 << 20)
    per_read = (time.perf_counter() - started) / rounds
    assert per_read < 0.001, f"{per_read * 1e6:.0f} µs per read"


# -- the file cache ----------------------------------------------------------------------------


@pytest.fixture
def small_file_cache() -> Iterator[FileCache]:
    cache = FileCache(8)
    previous = file_cache.set_default_cache(cache)
    yield cache
    file_cache.set_default_cache(previous)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_more_logs_and_segments_than_the_file_cache_holds(tmp_path: Path, small_file_cache: FileCache) -> None:
    baseline = open_fds()
    config = LogConfig(segment_bytes=600, index_interval_bytes=100, retention_bytes=1500)
    logs = [Log(tmp_path / f"t-{i}", config) for i in range(50)]
    expected: list[list[tuple[int, bytes | None]]] = [[] for _ in logs]
    rng = random.Random(7)
    peak = 0

    def check(i: int, offset: int | None = None) -> None:
        log = logs[i]
        start = log.log_start_offset if offset is None else offset
        records: list[tuple[int, bytes | None]] = []
        position = start
        while position < log.log_end_offset:  # a read stops at the end of a segment
            records += [(r.offset, r.value) for r in record_batch.read_records(log.read(position, 10**7))]
            position = records[-1][0] + 1
        if offset is not None:  # from the whole batch holding `offset`
            assert records[0][0] in (start, start - 1)
            start = records[0][0]
        assert records == [(o, v) for o, v in expected[i] if o >= start]

    try:
        for round_ in range(30):
            for i in rng.sample(range(len(logs)), len(logs)):
                log = logs[i]
                values = [f"log {i} round {round_} record {n}".encode() for n in range(2)]
                info = log.append_as_leader(record_batch.build_batch([(b"k", v) for v in values]), 1)
                expected[i] += zip(range(info.first_offset, info.last_offset + 1), values, strict=True)
                other = rng.randrange(len(logs))
                if logs[other].log_end_offset > logs[other].log_start_offset:
                    check(other, rng.randrange(logs[other].log_start_offset, logs[other].log_end_offset))
                peak = max(peak, open_fds())
            for i in rng.sample(range(len(logs)), 5):
                log = logs[i]
                match rng.randrange(3):
                    case 0:
                        log.truncate_to(log.log_end_offset - 1)  # the last batch goes whole
                    case 1:
                        log.delete_old_segments(log.log_end_offset, now_ms=0)
                    case _:
                        log.flush()
                expected[i] = [(o, v) for o, v in expected[i] if log.log_start_offset <= o < log.log_end_offset]
            peak = max(peak, open_fds())
        assert sum(len(log.segments) for log in logs) > 2 * len(logs)
        for i in range(len(logs)):
            check(i)
        # Reloaded, every log still holds what it held.
        for log in logs:
            log.close()
        logs = [Log(tmp_path / f"t-{i}", config) for i in range(50)]
        for i in range(len(logs)):
            check(i)
            peak = max(peak, open_fds())
    finally:
        for log in logs:
            log.close()
    # The cache's descriptors, plus a leader epoch checkpoint being written.
    assert peak <= baseline + small_file_cache.capacity + 2, (peak, baseline)
    assert small_file_cache.evictions > 1000
    assert small_file_cache.open_count == 0


# -- LogManager --------------------------------------------------------------------------------


def test_log_dir_names() -> None:
    assert parse_log_dir_name("my-topic-12") == ("my-topic", 12)
    assert parse_log_dir_name("topic") is None
    assert parse_log_dir_name("topic-x") is None
    assert parse_log_dir_name("-3") is None


def test_new_logs_go_to_the_log_dir_with_the_fewest(tmp_path: Path) -> None:
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    manager = LogManager(dirs, SMALL)
    for p in range(4):
        manager.get_or_create_log(("t", p))
    assert sorted((tmp_path / "a").iterdir()) == [tmp_path / "a" / "t-0", tmp_path / "a" / "t-2"]
    assert sorted((tmp_path / "b").iterdir()) == [tmp_path / "b" / "t-1", tmp_path / "b" / "t-3"]
    assert manager.get_or_create_log(("t", 0)) is manager.get_log(("t", 0))
    manager.shutdown()


def test_reload_after_a_clean_shutdown(tmp_path: Path) -> None:
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    manager = LogManager(dirs, SMALL)
    for p in range(3):
        fill_log(manager.get_or_create_log(("my-topic", p)), 5 + p)
    manager.shutdown()
    for d in dirs:
        assert (Path(d) / CLEAN_SHUTDOWN_FILE).exists()
    assert (tmp_path / "a" / RECOVERY_POINT_CHECKPOINT_FILE).read_text() == "0\n2\nmy-topic 0 10\nmy-topic 2 14\n"
    reloaded = LogManager(dirs, SMALL)
    assert {tp: log.log_end_offset for tp, log in reloaded.all_logs().items()} == {
        ("my-topic", 0): 10, ("my-topic", 1): 12, ("my-topic", 2): 14,
    }
    assert reloaded.log_dir_of(("my-topic", 1)) == Path(dirs[1])
    for d in dirs:
        assert not (Path(d) / CLEAN_SHUTDOWN_FILE).exists()
    reloaded.shutdown()


def test_reload_after_an_unclean_shutdown_recovers_from_the_recovery_point(tmp_path: Path) -> None:
    dirs = [str(tmp_path / "a")]
    manager = LogManager(dirs, SMALL)
    log = manager.get_or_create_log(("t", 0))
    fill_log(log, 10)
    manager.flush()
    assert (tmp_path / "a" / RECOVERY_POINT_CHECKPOINT_FILE).read_text() == "0\n1\nt 0 20\n"
    fill_log(log, 10)
    active = log.active_segment
    # A crash: no clean-shutdown file, and the last write torn.
    log.close()
    with active.log_path.open("r+b") as f:
        f.truncate(active.size - 7)
    reloaded = LogManager(dirs, SMALL)
    recovered = reloaded.get_log(("t", 0))
    assert recovered is not None
    assert recovered.log_end_offset == 38
    assert recovered.recovery_point == 38
    reloaded.shutdown()


def test_checkpointing_flushes_rolled_segments_and_records_the_recovery_point(tmp_path: Path) -> None:
    manager = LogManager([str(tmp_path)], SMALL)
    log = manager.get_or_create_log(("t", 0))
    fill_log(log, 20)
    assert log.recovery_point == 0
    manager.checkpoint_recovery_points()
    assert log.recovery_point == log.active_segment.base_offset > 0
    assert (tmp_path / RECOVERY_POINT_CHECKPOINT_FILE).read_text() == f"0\n1\nt 0 {log.recovery_point}\n"
    manager.shutdown()
    assert (tmp_path / RECOVERY_POINT_CHECKPOINT_FILE).read_text() == "0\n1\nt 0 40\n"


def test_a_partition_in_two_log_dirs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a" / "t-0").mkdir(parents=True)
    (tmp_path / "b" / "t-0").mkdir(parents=True)
    with pytest.raises(DuplicateLogDirectoryError, match="t-0"):
        LogManager([str(tmp_path / "a"), str(tmp_path / "b")], SMALL)


def test_delete_log(tmp_path: Path) -> None:
    dirs = [str(tmp_path / "a")]
    manager = LogManager(dirs, SMALL)
    fill_log(manager.get_or_create_log(("t", 0)), 3)
    manager.get_or_create_log(("t", 1))
    assert manager.delete_log(("t", 0))
    assert not manager.delete_log(("t", 0))
    assert manager.get_log(("t", 0)) is None
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.is_dir()) == ["t-1"]
    (tmp_path / "a" / "t-2.0123456789abcdef-delete").mkdir()  # a deletion cut short
    manager.shutdown()
    reloaded = LogManager(dirs, SMALL)
    assert list(reloaded.all_logs()) == [("t", 1)]
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.is_dir()) == ["t-1"]
    reloaded.shutdown()


def test_cleanup_logs_runs_retention_where_the_high_watermark_is_known(tmp_path: Path) -> None:
    manager = LogManager([str(tmp_path)], LogConfig(segment_bytes=300, retention_bytes=0))
    for p in range(2):
        fill_log(manager.get_or_create_log(("t", p)), 10)
    logs = manager.all_logs()
    segments = {tp: len(log.segments) for tp, log in logs.items()}
    watermarks = {("t", 0): logs[("t", 0)].log_end_offset}
    deleted = manager.cleanup_logs(watermarks.get, now_ms=0)
    assert deleted == segments[("t", 0)] - 1
    assert len(logs[("t", 0)].segments) == 1
    assert len(logs[("t", 1)].segments) == segments[("t", 1)]
    manager.update_config(("t", 1), LogConfig(segment_bytes=300, retention_bytes=-1))
    assert manager.cleanup_logs(lambda tp: 10**9, now_ms=0) == 0
    manager.shutdown()


def test_leader_epochs_reach_their_checkpoint_files_at_the_next_checkpoint(tmp_path: Path) -> None:
    manager = LogManager([str(tmp_path)], SMALL)
    logs = [manager.get_or_create_log(("t", p)) for p in range(3)]
    for log_ in logs:
        log_.assign_epoch_start_offset(4, 0)
    checkpoints = [log_.dir / "leader-epoch-checkpoint" for log_ in logs]
    assert not any(path.exists() for path in checkpoints)  # a LeaderAndIsr writes no file
    assert all(log_.leader_epoch_cache.latest_epoch() == 4 for log_ in logs)  # and serves the epoch at once
    manager.checkpoint_leader_epochs()
    assert [path.read_text() for path in checkpoints] == ["0\n1\n4 0\n"] * 3
    logs[0].assign_epoch_start_offset(5, 0)
    manager.shutdown()  # a clean shutdown writes what is pending
    assert checkpoints[0].read_text() == "0\n2\n4 0\n5 0\n"


def test_a_deleted_logs_pending_leader_epochs_are_never_written(tmp_path: Path) -> None:
    manager = LogManager([str(tmp_path)], SMALL)
    manager.get_or_create_log(("t", 0)).assign_epoch_start_offset(7, 0)
    assert manager.delete_log(("t", 0))
    recreated = manager.get_or_create_log(("t", 0))
    manager.checkpoint_leader_epochs()
    assert not (recreated.dir / "leader-epoch-checkpoint").exists()
    assert recreated.leader_epoch_cache.latest_epoch() == -1
    manager.shutdown()
