"""LeaderEpochFileCache, in the spirit of Kafka's LeaderEpochFileCacheTest, with Kafka 2.0's
rules (KIP-101, KIP-279) for out-of-order assignments and epochs before the first entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.log.checkpoint_file import CheckpointFile, CorruptCheckpointError
from broker.log.leader_epoch_cache import (
    UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
    EpochEntry,
    LeaderEpochFileCache,
)

UNDEFINED = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)


@pytest.fixture
def cache(tmp_path: Path) -> LeaderEpochFileCache:
    return LeaderEpochFileCache(tmp_path / "leader-epoch-checkpoint")


def test_adds_epoch_and_start_offset(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 10)
    assert cache.latest_epoch() == 2
    assert cache.entries() == [EpochEntry(2, 10)]
    assert cache.end_offset_for(2, 11) == (2, 11)


def test_returns_log_end_offset_for_the_latest_epoch(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 11)
    cache.assign(2, 12)
    assert cache.end_offset_for(2, 14) == (2, 14)


def test_undefined_epoch_requested(cache: LeaderEpochFileCache) -> None:
    assert cache.end_offset_for(UNDEFINED_EPOCH, 73) == UNDEFINED
    cache.assign(2, 11)
    cache.assign(3, 12)
    assert cache.end_offset_for(UNDEFINED_EPOCH, 0) == UNDEFINED


def test_does_not_overwrite_the_start_offset_of_an_assigned_epoch(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.assign(2, 10)
    cache.assign(2, 4)
    assert cache.entries() == [EpochEntry(2, 6)]


def test_empty_cache(cache: LeaderEpochFileCache) -> None:
    assert cache.latest_epoch() == UNDEFINED_EPOCH
    assert cache.latest_entry() is None
    assert cache.end_offset_for(0, 0) == UNDEFINED
    assert cache.end_offset_for(7, 0) == UNDEFINED
    cache.truncate_from_start(7)
    cache.truncate_from_end(7)
    assert cache.entries() == []


def test_epoch_before_the_first_entry_is_undefined(cache: LeaderEpochFileCache) -> None:
    # Kafka 2.0: the follower falls back to its high watermark. (Kafka 2.1+ answers (4, 11).)
    cache.assign(5, 11)
    cache.assign(6, 12)
    cache.assign(7, 13)
    assert cache.end_offset_for(4, 0) == UNDEFINED


def test_epoch_newer_than_any_known_is_undefined(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 100)
    assert cache.end_offset_for(3, 100) == UNDEFINED


def test_end_of_an_earlier_epoch_is_the_start_of_the_next(cache: LeaderEpochFileCache) -> None:
    for epoch, offset in [(1, 11), (1, 12), (2, 13), (2, 14), (3, 15), (3, 16)]:
        cache.assign(epoch, offset)
    assert cache.end_offset_for(2, 17) == (2, 15)
    assert cache.end_offset_for(1, 17) == (1, 13)


def test_a_missing_epoch_answers_with_the_largest_below_it(cache: LeaderEpochFileCache) -> None:
    cache.assign(0, 10)
    cache.assign(2, 13)
    cache.assign(4, 17)
    assert cache.end_offset_for(1, 0) == (0, 13)
    assert cache.end_offset_for(2, 0) == (2, 17)
    assert cache.end_offset_for(3, 0) == (2, 17)
    assert cache.end_offset_for(4, 20) == (4, 20)


def test_an_older_epoch_is_logged_and_ignored(cache: LeaderEpochFileCache, caplog: pytest.LogCaptureFixture) -> None:
    cache.assign(1, 5)
    cache.assign(2, 6)
    cache.assign(1, 7)
    assert cache.entries() == [EpochEntry(1, 5), EpochEntry(2, 6)]
    assert "older than the latest epoch" in caplog.text


def test_a_newer_epoch_starting_before_the_latest_entry_is_ignored(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.assign(3, 5)
    assert cache.entries() == [EpochEntry(2, 6)]


def test_epochs_that_wrote_nothing_keep_their_entries(cache: LeaderEpochFileCache) -> None:
    cache.assign(0, 0)
    cache.assign(1, 0)
    assert cache.latest_epoch() == 1
    assert cache.end_offset_for(1, 0) == (1, 0)
    assert cache.end_offset_for(0, 0) == (0, 0)
    assert cache.end_offset_for(1, 5) == (1, 5)
    cache.assign(2, 5)
    assert cache.end_offset_for(2, 10) == (2, 10)
    assert cache.end_offset_for(1, 10) == (1, 5)
    assert cache.end_offset_for(0, 10) == (0, 0)


def test_tracks_epochs_as_a_follower_receives_batches(cache: LeaderEpochFileCache) -> None:
    for epoch, offset in [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (1, 5), (2, 6), (2, 7), (2, 8)]:
        cache.assign(epoch, offset)
    assert cache.entries() == [EpochEntry(0, 0), EpochEntry(1, 3), EpochEntry(2, 6)]
    assert cache.end_offset_for(2, 9) == (2, 9)
    assert cache.end_offset_for(0, 9) == (0, 3)
    assert cache.end_offset_for(1, 9) == (1, 6)


def test_persists_between_instances_in_kafkas_format(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    cache = LeaderEpochFileCache(path)
    cache.assign(2, 6)
    cache.assign(5, 20)
    assert path.read_text() == "0\n2\n2 6\n5 20\n"
    assert LeaderEpochFileCache(path).entries() == [EpochEntry(2, 6), EpochEntry(5, 20)]
    assert not path.with_name(path.name + ".tmp").exists()


def test_truncate_from_end_drops_entries_at_or_after_the_offset(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.assign(3, 8)
    cache.assign(4, 11)
    cache.truncate_from_end(UNDEFINED_EPOCH_OFFSET)
    assert len(cache.entries()) == 3
    cache.truncate_from_end(9)
    assert cache.entries() == [EpochEntry(2, 6), EpochEntry(3, 8)]
    cache.truncate_from_end(8)
    assert cache.entries() == [EpochEntry(2, 6)]
    assert LeaderEpochFileCache(cache.path).entries() == [EpochEntry(2, 6)]


@pytest.mark.parametrize(
    ("start_offset", "expected"),
    [
        (UNDEFINED_EPOCH_OFFSET, [(2, 6), (3, 8), (4, 11)]),
        (1, [(2, 6), (3, 8), (4, 11)]),
        (6, [(2, 6), (3, 8), (4, 11)]),
        (8, [(3, 8), (4, 11)]),
        (9, [(3, 9), (4, 11)]),
        (11, [(4, 11)]),
        (15, [(4, 15)]),
    ],
)
def test_truncate_from_start_moves_the_first_kept_entry_up(
    cache: LeaderEpochFileCache, start_offset: int, expected: list[tuple[int, int]]
) -> None:
    cache.assign(2, 6)
    cache.assign(3, 8)
    cache.assign(4, 11)
    cache.truncate_from_start(start_offset)
    assert cache.entries() == [EpochEntry(*e) for e in expected]
    assert LeaderEpochFileCache(cache.path).entries() == cache.entries()


def test_epoch_for_offset(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.assign(3, 8)
    cache.assign(4, 11)
    assert cache.epoch_for_offset(5) is None
    assert cache.epoch_for_offset(6) == 2
    assert cache.epoch_for_offset(7) == 2
    assert cache.epoch_for_offset(8) == 3
    assert cache.epoch_for_offset(100) == 4


def test_clear(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.clear()
    assert cache.entries() == []
    assert cache.path.read_text() == "0\n0\n"


def test_rejects_negative_entries(cache: LeaderEpochFileCache) -> None:
    with pytest.raises(ValueError, match="invalid leader epoch entry"):
        cache.assign(-1, 0)
    with pytest.raises(ValueError, match="invalid leader epoch entry"):
        cache.assign(0, -1)


@pytest.mark.parametrize("text", ["1\n0\n", "0\n2\n1 0\n", "0\n1\n1\n", "0\n1\none 0\n", "0\n"])
def test_a_malformed_checkpoint_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_text(text)
    with pytest.raises(CorruptCheckpointError):
        LeaderEpochFileCache(path)


def test_checkpoint_file_of_a_missing_path_is_empty(tmp_path: Path) -> None:
    assert CheckpointFile(tmp_path / "nothing").read() == []


def test_changes_wait_for_a_flush_when_written_later(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    asked: list[LeaderEpochFileCache] = []
    cache = LeaderEpochFileCache(path, write_later=asked.append)
    cache.assign(2, 10)
    cache.assign(3, 12)
    assert asked == [cache]  # once until the next flush
    assert not path.exists()
    cache.flush()
    assert CheckpointFile(path).read() == ["2 10", "3 12"]
    cache.flush()  # nothing new: nothing asked, nothing written
    cache.truncate_from_end(12)
    assert asked == [cache, cache]
    cache.close()
    cache.flush()  # closed: its directory may be gone or hold another log
    assert CheckpointFile(path).read() == ["2 10", "3 12"]
