"""A partition replica's log (Kafka's UnifiedLog and LocalLog): the segments in directory
`<topic>-<partition>`, the active one last, and the leader epoch cache beside them.

Writers (appends, truncation, rolls, retention) hold the log's lock. The segment list is copied
on every change and replaced whole, so a read takes it without the lock and never waits for a
writer; a segment deleted under a read makes that read start over on the new list, where its
offset is then out of range.

Differences from Kafka, by design: the active segment is never deleted by retention (Kafka
rolls it first when it is entirely below the high watermark and past retention); deleted
segments are renamed `.deleted` and removed at once rather than after file.delete.delay.ms (no
reader keeps a path: a read in flight holds the open descriptor); a segment rolls by
segment.ms from when it was created or loaded, not from its first record's timestamp; the log
start offset is the first segment's base offset (there is no DeleteRecords); a follower's
batches are not held to max.message.bytes (the leader accepted them).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from broker.log import record_batch
from broker.log.leader_epoch_cache import LEADER_EPOCH_CHECKPOINT_FILE, LeaderEpochFileCache
from broker.log.log_config import LogConfig
from broker.log.log_segment import LOG_SUFFIX, LogSegment, SegmentClosedError
from broker.log.offset_index import index_file_name
from broker.log.record_batch import BatchHeader, CorruptRecordError

log = logging.getLogger(__name__)

# Leftovers of an operation cut short: Kafka's log cleaner writes `.cleaned` and `.swap` files,
# deletion renames to `.deleted`, checkpoints write `.tmp`. None of them holds anything to keep.
_LEFTOVER_SUFFIXES = (".deleted", ".cleaned", ".swap", ".tmp")
DELETED_SUFFIX = ".deleted"
# Recovery holds batches to the int32 limit of their length field, not to max.message.bytes: a
# batch written under a larger setting, or copied from a leader, is as good as any (Kafka's
# recovery has no size limit either); a garbage length fails as a torn batch or on its CRC.
_RECOVERY_MAX_BATCH_BYTES = (1 << 31) - 1


class OffsetOutOfRangeError(Exception):
    """A read before the log start offset or past the log end offset (Kafka's OffsetOutOfRangeException)."""


class RecordTooLargeError(ValueError):
    """A batch larger than max.message.bytes (Kafka's RecordTooLargeException)."""


class UnexpectedAppendOffsetError(ValueError):
    """A follower's batches that do not start at the log end offset (Kafka's UnexpectedAppendOffsetException)."""

    def __init__(self, message: str, first_offset: int, log_end_offset: int) -> None:
        super().__init__(message)
        self.first_offset = first_offset
        self.log_end_offset = log_end_offset


class LogClosedError(OSError):
    """A write to a log that was closed or deleted."""


@dataclass
class AppendInfo:
    """What an append wrote (Kafka's LogAppendInfo): enough for a caller to keep producer state."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    batches: list[BatchHeader] = field(default_factory=list)  # as stamped, in log order
    size: int = 0  # bytes


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Segments:
    """An immutable snapshot of the segment list with its base offsets, for bisecting."""

    __slots__ = ("bases", "segments")

    def __init__(self, segments: list[LogSegment]) -> None:
        self.segments = segments
        self.bases = [s.base_offset for s in segments]

    def floor_index(self, offset: int) -> int:
        """Index of the segment that would hold `offset` (0 if it is below every segment)."""
        return max(bisect.bisect_right(self.bases, offset) - 1, 0)


class Log:
    def __init__(
        self,
        dir: Path,
        config: LogConfig,
        recovery_point: int = 0,
        clean_shutdown: bool = True,
        *,
        time_ms: Callable[[], int] = _now_ms,
        write_epochs_later: Callable[[LeaderEpochFileCache], None] | None = None,
    ) -> None:
        self.dir = Path(dir)
        self.config = config
        self._time_ms = time_ms
        self._lock = threading.RLock()
        self._closed = False
        self._truncations = 0  # lets a flush tell whether what it synced is still the log
        self.dir.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers()
        self.leader_epoch_cache = LeaderEpochFileCache(self.dir / LEADER_EPOCH_CHECKPOINT_FILE, write_epochs_later)
        self._view = _Segments(self._load_segments(recovery_point, clean_shutdown))
        self._recovery_point = self.log_end_offset
        # A leader epoch cannot start past the data that survived, nor before the log's start.
        self.leader_epoch_cache.truncate_from_end(self.log_end_offset)
        self.leader_epoch_cache.truncate_from_start(self.log_start_offset)
        log.info(
            "Loaded log %s: %d segments, offsets %d to %d, %s shutdown, latest leader epoch %d",
            self.name, len(self._view.segments), self.log_start_offset, self.log_end_offset,
            "clean" if clean_shutdown else "unclean", self.latest_epoch,
        )

    # -- loading ---------------------------------------------------------------------------------

    def _remove_leftovers(self) -> None:
        for path in self.dir.iterdir():
            if path.name.endswith(_LEFTOVER_SUFFIXES):
                log.info("Log %s: deleting leftover file %s", self.name, path.name)
                path.unlink(missing_ok=True)
            elif path.suffix == ".index" and not path.with_suffix(LOG_SUFFIX).exists():
                log.info("Log %s: deleting index %s that has no segment", self.name, path.name)
                path.unlink(missing_ok=True)

    def _load_segments(self, recovery_point: int, clean_shutdown: bool) -> list[LogSegment]:
        now = self._time_ms()
        bases = sorted(
            int(p.name[: -len(LOG_SUFFIX)]) for p in self.dir.iterdir()
            if p.name.endswith(LOG_SUFFIX) and p.name[: -len(LOG_SUFFIX)].isdigit()
        )
        segments = [LogSegment(self.dir, base, self.config, created_ms=now) for base in bases]
        if not segments:
            return [LogSegment(self.dir, 0, self.config, created_ms=now)]
        first_unflushed = len(segments)
        if not clean_shutdown:
            first_unflushed = _Segments(segments).floor_index(recovery_point)
        if first_unflushed < len(segments):
            # Epochs that start in unflushed segments are read again from their batches.
            self.leader_epoch_cache.truncate_from_end(segments[first_unflushed].base_offset)
        i = 0
        while i < len(segments):
            segment = segments[i]
            if i >= first_unflushed or segment.needs_recovery:
                truncated = segment.recover(_RECOVERY_MAX_BATCH_BYTES, self.leader_epoch_cache)
                segment.flush()
                if truncated:
                    log.warning(
                        "Log %s: recovery cut %d bytes of torn or corrupt batches from segment %d, which now "
                        "ends at offset %d", self.name, truncated, segment.base_offset, segment.next_offset,
                    )
                    if i >= first_unflushed and i + 1 < len(segments):
                        # What followed a corrupt batch was written after it: it cannot be trusted.
                        for later in segments[i + 1:]:
                            log.warning("Log %s: deleting segment %d after the corrupt one", self.name,
                                        later.base_offset)
                            later.delete()
                        del segments[i + 1:]
            i += 1
        return segments

    # -- state -----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def segments(self) -> list[LogSegment]:
        return list(self._view.segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._view.segments[-1]

    @property
    def log_start_offset(self) -> int:
        return self._view.segments[0].base_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._view.segments[-1].next_offset

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self._view.segments)

    @property
    def latest_epoch(self) -> int:
        """The latest leader epoch in the epoch cache, -1 when there is none."""
        return self.leader_epoch_cache.latest_epoch()

    @property
    def recovery_point(self) -> int:
        """Every offset below this is on disk (fsynced): recovery after a crash starts here."""
        return self._recovery_point

    def update_config(self, config: LogConfig) -> None:
        with self._lock:
            self.config = config
            for segment in self._view.segments:
                segment.config = config

    # -- appending -------------------------------------------------------------------------------

    def append_as_leader(self, records: bytes, leader_epoch: int) -> AppendInfo:
        """Check a producer's batches, give them offsets from the log end and this leader's epoch
        (in place in a copy: the CRC does not cover either), and append them in one write."""
        batches = self._analyze(records, check_size=True)
        if not batches:
            raise CorruptRecordError("no record batch to append")
        buf = bytearray(records)
        with self._lock:
            self._check_open()
            offset = self.log_end_offset
            stamped = []
            for pos, header in batches:
                record_batch.stamp(buf, pos, offset, leader_epoch)
                stamped.append(header._replace(base_offset=offset, partition_leader_epoch=leader_epoch))
                offset += header.last_offset_delta + 1
            if leader_epoch >= 0 and leader_epoch > self.leader_epoch_cache.latest_epoch():
                self.leader_epoch_cache.assign(leader_epoch, stamped[0].base_offset)
            return self._append(buf, stamped)

    def append_as_follower(self, records: bytes) -> AppendInfo:
        """Append batches copied from the leader as they are: offsets and epochs included. They
        must start at the log end offset and go up."""
        batches = self._analyze(records, check_size=False)
        with self._lock:
            self._check_open()
            log_end = self.log_end_offset
            if not batches:
                return AppendInfo(log_end, log_end - 1, -1)
            first = batches[0][1].base_offset
            if first != log_end:
                raise UnexpectedAppendOffsetError(
                    f"Log {self.name}: the first offset to append is {first}, the log end offset is {log_end}",
                    first, log_end,
                )
            headers = []
            next_offset = log_end
            for _, header in batches:
                if header.base_offset < next_offset:
                    raise CorruptRecordError(
                        f"Log {self.name}: out of order offsets, batch at {header.base_offset} after {next_offset - 1}"
                    )
                next_offset = header.next_offset
                epoch = header.partition_leader_epoch
                if epoch >= 0 and epoch > self.leader_epoch_cache.latest_epoch():
                    self.leader_epoch_cache.assign(epoch, header.base_offset)
                headers.append(header)
            return self._append(records, headers)

    def _analyze(self, records: bytes, check_size: bool) -> list[tuple[int, BatchHeader]]:
        """(position, header) of each batch after validation: every byte in a whole batch with a
        good CRC (CorruptRecordError), uncompressed (UnsupportedCompressionError), and, for a
        leader, no larger than max.message.bytes (RecordTooLargeError)."""
        view = memoryview(records)
        max_size = self.config.max_message_bytes
        out = []
        pos = 0
        while pos < len(view):
            header = record_batch.read_header(view, pos)
            if pos + header.size > len(view):
                raise CorruptRecordError(f"batch at byte {pos} needs {header.size} bytes, {len(view) - pos} are left")
            if check_size and header.size > max_size:
                raise RecordTooLargeError(
                    f"The batch is {header.size} bytes, larger than the maximum allowed ({max_size}) in log {self.name}"
                )
            record_batch.validate(view, pos, header)
            out.append((pos, header))
            pos += header.size
        return out

    def _append(self, data: bytes | bytearray, headers: list[BatchHeader]) -> AppendInfo:
        last_offset = headers[-1].last_offset
        max_timestamp = max(h.max_timestamp for h in headers)
        segment = self._maybe_roll(len(data), last_offset)
        segment.append(data, last_offset, max_timestamp)
        return AppendInfo(headers[0].base_offset, last_offset, max_timestamp, headers, len(data))

    def assign_epoch_start_offset(self, leader_epoch: int, start_offset: int) -> None:
        """A new leader's epoch starts at its log end (Kafka's maybeAssignEpochStartOffset)."""
        with self._lock:
            self._check_open()
            self.leader_epoch_cache.assign(leader_epoch, start_offset)

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """OffsetsForLeaderEpoch on this log: (epoch, end offset), (-1, -1) when unknown."""
        return self.leader_epoch_cache.end_offset_for(leader_epoch, self.log_end_offset)

    # -- rolling ---------------------------------------------------------------------------------

    def _maybe_roll(self, size: int, last_offset: int) -> LogSegment:
        """Kafka's maybeRoll: a new segment when the active one would outgrow segment.bytes, is
        older than segment.ms, has a full index, or could not index `last_offset`."""
        segment = self.active_segment
        if segment.size == 0:
            return segment
        now = self._time_ms()
        reason = (
            "segment.bytes" if segment.size + size > self.config.segment_bytes
            else "segment.ms" if now - segment.created_ms > self.config.segment_ms
            else "a full index" if segment.index.is_full
            else "offset overflow" if not segment.can_convert_to_relative_offset(last_offset)
            else None
        )
        if reason is None:
            return segment
        return self._roll(reason, now)

    def roll(self) -> LogSegment:
        with self._lock:
            self._check_open()
            return self._roll("request", self._time_ms())

    def _roll(self, reason: str, now: int) -> LogSegment:
        active = self.active_segment
        if active.size == 0:
            return active
        base = self.log_end_offset
        for stale in (self.dir / f"{base:020d}{LOG_SUFFIX}", self.dir / index_file_name(base)):
            # Only a crash between creating and using a segment leaves one behind.
            stale.unlink(missing_ok=True)
        segment = LogSegment(self.dir, base, self.config, created_ms=now)
        self._view = _Segments([*self._view.segments, segment])
        log.info("Log %s: rolled a new segment at offset %d (%s)", self.name, base, reason)
        return segment

    # -- reading ---------------------------------------------------------------------------------

    def read(self, start_offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """Whole batches from the one holding `start_offset`, at most `max_bytes` of them unless
        the first alone is larger (KIP-74), none whose base offset is at or above `max_offset`
        (consumers read below the high watermark). Empty at the log end."""
        while True:
            view = self._view
            try:
                return self._read(view, start_offset, max_bytes, max_offset)
            except SegmentClosedError:
                if self._view is view:  # the log itself was closed
                    raise
                # Truncation or retention removed a segment under us: look again.

    def _read(self, view: _Segments, start_offset: int, max_bytes: int, max_offset: int | None) -> bytes:
        segments = view.segments
        start, end = segments[0].base_offset, segments[-1].next_offset
        if start_offset < start or start_offset > end:
            raise OffsetOutOfRangeError(
                f"Received request for offset {start_offset} for partition {self.name}, but we only have log "
                f"segments in the range {start} to {end}."
            )
        if start_offset == end or (max_offset is not None and start_offset >= max_offset):
            return b""
        for segment in segments[view.floor_index(start_offset):]:
            data = segment.read(start_offset, max_bytes, max_offset)
            if data:
                return data
        return b""

    def batch_headers(self, start_offset: int = 0) -> Iterator[BatchHeader]:
        """The header of every batch from the one holding `start_offset` to the log end (for
        rebuilding producer state)."""
        view = self._view
        for segment in view.segments[view.floor_index(start_offset):]:
            yield from segment.batch_headers(start_offset)

    # -- truncation ------------------------------------------------------------------------------

    def truncate_to(self, offset: int) -> None:
        """Remove everything at and after `offset`; the batch holding it goes whole, so the log
        may end below `offset`. A follower does this before fetching from a new leader."""
        if offset < 0:
            raise ValueError(f"cannot truncate log {self.name} to a negative offset {offset}")
        with self._lock:
            self._check_open()
            log_end = self.log_end_offset
            if offset >= log_end:
                return
            if offset <= self.log_start_offset:
                self.truncate_fully_and_start_at(offset)
                return
            segments = self._view.segments
            keep = [s for s in segments if s.base_offset < offset]
            removed = segments[len(keep):]
            self._view = _Segments(keep)
            self._delete_segment_files(removed)
            truncated = keep[-1].truncate_to(offset)
            self._truncations += 1
            self.leader_epoch_cache.truncate_from_end(self.log_end_offset)
            self._recovery_point = min(self._recovery_point, self.log_end_offset)
            log.info(
                "Log %s: truncated to offset %d (log end was %d, is %d): %d segments deleted, %d bytes cut",
                self.name, offset, log_end, self.log_end_offset, len(removed), truncated,
            )

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete every segment and start empty at `offset` (a follower far behind a leader whose
        log starts past its end)."""
        with self._lock:
            self._check_open()
            removed = self._view.segments
            for segment in removed:
                # Out of the way first: the new segment may have the same base offset.
                segment.change_file_suffix(DELETED_SUFFIX)
            self._view = _Segments([LogSegment(self.dir, offset, self.config, created_ms=self._time_ms())])
            self._delete_segment_files(removed)
            self.leader_epoch_cache.clear()
            self._truncations += 1
            self._recovery_point = offset
            log.info("Log %s: deleted all %d segments, the log starts again at offset %d", self.name,
                     len(removed), offset)

    # -- retention -------------------------------------------------------------------------------

    def delete_old_segments(self, high_watermark: int, now_ms: int) -> int:
        """Kafka's retention: delete the oldest segments past retention.ms (by their largest
        timestamp), then those beyond retention.bytes. Only segments wholly below the high
        watermark go, and never the active one. Returns how many were deleted."""
        with self._lock:
            self._check_open()
            deleted = 0
            retention_ms = self.config.retention_ms
            if retention_ms >= 0:
                deleted += self._delete_while(
                    high_watermark, lambda s: now_ms - s.largest_timestamp > retention_ms,
                    f"retention.ms {retention_ms} breached",
                )
            retention_bytes = self.config.retention_bytes
            if retention_bytes >= 0:
                excess = self.size_in_bytes - retention_bytes

                def beyond_size(segment: LogSegment) -> bool:
                    nonlocal excess
                    if excess - segment.size < 0:
                        return False
                    excess -= segment.size
                    return True

                deleted += self._delete_while(
                    high_watermark, beyond_size, f"retention.bytes {retention_bytes} breached"
                )
            return deleted

    def _delete_while(self, high_watermark: int, predicate: Callable[[LogSegment], bool], reason: str) -> int:
        segments = self._view.segments
        deletable = []
        for segment, following in itertools.pairwise(segments):
            # A segment ends where the next begins; one reaching past the high watermark stays so
            # that the log start offset never passes it.
            if following.base_offset > high_watermark or not predicate(segment):
                break
            deletable.append(segment)
        if not deletable:
            return 0
        self._view = _Segments(segments[len(deletable):])
        self._delete_segment_files(deletable)
        self.leader_epoch_cache.truncate_from_start(self.log_start_offset)
        self._recovery_point = max(self._recovery_point, self.log_start_offset)
        log.info(
            "Log %s: deleted segments %s (%s); the log now starts at offset %d",
            self.name, [s.base_offset for s in deletable], reason, self.log_start_offset,
        )
        return len(deletable)

    def _delete_segment_files(self, segments: list[LogSegment]) -> None:
        # Kafka renames to .deleted and removes the files file.delete.delay.ms later so that
        # readers holding the file finish; our readers hold the open descriptor instead, which
        # survives the unlink, so the files go at once. The rename keeps a crash in between
        # from resurrecting the segment.
        for segment in segments:
            if not segment.log_path.name.endswith(DELETED_SUFFIX):
                segment.change_file_suffix(DELETED_SUFFIX)
        for segment in segments:
            segment.delete()

    # -- files -----------------------------------------------------------------------------------

    def flush(self, offset: int | None = None) -> None:
        """fsync the segments holding offsets from the recovery point up to `offset` (the log
        end by default) and move the recovery point there. Appends go on meanwhile."""
        with self._lock:
            self._check_open()
            target = self.log_end_offset if offset is None else min(offset, self.log_end_offset)
            if target <= self._recovery_point:
                return
            segments = [
                s for s in self._view.segments if s.next_offset > self._recovery_point and s.base_offset < target
            ]
            truncations = self._truncations
        for segment in segments:
            with contextlib.suppress(SegmentClosedError):  # deleted meanwhile: nothing of it needs to last
                segment.flush()
        with self._lock:
            # A truncation meanwhile may have replaced what was flushed with bytes that were not.
            if self._truncations == truncations:
                self._recovery_point = min(max(self._recovery_point, target), self.log_end_offset)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.leader_epoch_cache.close()
            for segment in self._view.segments:
                segment.close()

    def delete(self) -> None:
        """Close the log and remove its directory."""
        with self._lock:
            self.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"log {self.name} is closed")

    def __repr__(self) -> str:
        return f"Log({self.name}, offsets {self.log_start_offset}..{self.log_end_offset})"

