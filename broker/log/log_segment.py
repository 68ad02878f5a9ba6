"""One segment of a partition's log (Kafka's LogSegment): `<baseOffset:020d>.log`, the record
batches exactly as they were stamped, and `<baseOffset:020d>.index`, their sparse offset index.

Appends come from one writer at a time (the Log holds its lock); reads may run alongside it and
never block on it: a read pins the file descriptor, looks at the size once, and reads with
os.pread up to that size, so it sees whole batches or nothing of an append in progress.

Neither file is held open: each operation pins its descriptor in the file cache
(broker.log.file_cache), which reopens a file whose descriptor it closed to stay within the
process's open-file limit. Appends write with os.pwrite at the segment's size, so where a write
lands never depends on a descriptor's position.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from broker.log import record_batch
from broker.log.file_cache import CachedFile, FileCache, FileClosedError, default_cache
from broker.log.log_config import LogConfig
from broker.log.offset_index import CorruptIndexError, OffsetIndex, index_file_name
from broker.log.record_batch import HEADER_SIZE, BatchHeader, CorruptRecordError, UnsupportedCompressionError

if TYPE_CHECKING:
    from broker.log.leader_epoch_cache import LeaderEpochFileCache

log = logging.getLogger(__name__)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
_INT32_MAX = (1 << 31) - 1
# Bytes read at a time when walking batch headers: enough for the batches between two index
# entries at the default index.interval.bytes, small enough not to matter for one big batch.
_SCAN_CHUNK = 16384
# A read up to this size is read whole and cut after its last whole batch; a larger one finds
# that batch's end first, to read exactly the bytes to return.
_READ_AND_CUT_BYTES = 65536
# Bytes read at a time when recovery checks every batch's CRC.
_RECOVERY_CHUNK = 1 << 20


class SegmentClosedError(FileClosedError):
    """A read of a segment that was closed or deleted meanwhile (by truncation or retention)."""


def log_file_name(base_offset: int) -> str:
    return f"{base_offset:020d}{LOG_SUFFIX}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LogSegment:
    def __init__(
        self,
        dir: Path,
        base_offset: int,
        config: LogConfig,
        created_ms: int | None = None,
        *,
        cache: FileCache | None = None,
    ) -> None:
        """Opens the segment's files, creating them if absent. An existing segment is trusted as
        far as a clean shutdown allows: its next offset comes from the batches after the last
        index entry. `needs_recovery` says whether that tail or the index did not add up.
        `cache` is the process's file cache by default."""
        self.dir = dir
        self.base_offset = base_offset
        self.config = config
        self.created_ms = _now_ms() if created_ms is None else created_ms
        self.log_path = dir / log_file_name(base_offset)
        index_path = dir / index_file_name(base_offset)
        index_existed = index_path.exists()
        cache = cache if cache is not None else default_cache()
        self._file: CachedFile = cache.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self.index = OffsetIndex(index_path, base_offset, config.segment_index_bytes, cache=cache)
        except BaseException:
            self._file.close()
            raise
        self._next_offset = base_offset
        self._bytes_since_last_index_entry = 0
        self.needs_recovery = False
        try:
            with self._pinned() as fd:
                self._size = os.fstat(fd).st_size
                self._max_timestamp: int | None = -1 if self._size == 0 else None  # None: not read yet
                if self._size:
                    self._load_tail(fd, index_existed)
        except BaseException:
            self.close()
            raise

    def _pin(self) -> int:
        """The log file's descriptor, pinned until _unpin; SegmentClosedError once closed."""
        try:
            return self._file.acquire()
        except FileClosedError:
            raise SegmentClosedError(errno.EBADF, "the segment was closed", str(self.log_path)) from None

    def _unpin(self) -> None:
        self._file.release()

    @contextlib.contextmanager
    def _pinned(self) -> Iterator[int]:
        fd = self._pin()
        try:
            yield fd
        finally:
            self._file.release()

    def _load_tail(self, fd: int, index_existed: bool) -> None:
        try:
            if not index_existed:
                raise CorruptIndexError(f"no index file for {self.log_path}")
            self.index.sanity_check(self._size)
        except CorruptIndexError as e:
            log.warning("Segment %s needs recovery: %s", self.log_path, e)
            self.needs_recovery = True
            return
        _, position = self.index.last_entry
        end = position
        try:
            for pos, header in _scan_headers(fd, position, self._size):
                self._next_offset = header.next_offset
                end = pos + header.size
        except CorruptRecordError as e:
            log.warning("Segment %s has a corrupt batch after position %d: %s", self.log_path, end, e)
        if end != self._size:
            log.warning("Segment %s needs recovery: its batches end at byte %d of %d", self.log_path, end, self._size)
            self.needs_recovery = True
        self._bytes_since_last_index_entry = self._size - position

    # -- state -----------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self._size

    @property
    def next_offset(self) -> int:
        """The offset after this segment's last batch (its base offset when empty)."""
        return self._next_offset

    @property
    def max_timestamp(self) -> int:
        """The largest batch max timestamp, -1 if none; read from the file once after a load
        (Kafka keeps it in the time index, which we do not have)."""
        if self._max_timestamp is None:
            with self._pinned() as fd:
                self._max_timestamp = max(
                    (h.max_timestamp for _, h in _scan_headers(fd, 0, self._size)), default=-1
                )
        return self._max_timestamp

    @property
    def largest_timestamp(self) -> int:
        """What time retention goes by: the largest record timestamp, or, as Kafka does when
        there is none, the file's modification time."""
        ts = self.max_timestamp
        return ts if ts >= 0 else self.last_modified_ms

    @property
    def last_modified_ms(self) -> int:
        with self._pinned() as fd:
            return os.fstat(fd).st_mtime_ns // 1_000_000

    def can_convert_to_relative_offset(self, offset: int) -> bool:
        return 0 <= offset - self.base_offset <= _INT32_MAX

    # -- appending -------------------------------------------------------------------------------

    def append(self, batch_bytes: bytes | bytearray, largest_offset: int, max_timestamp: int) -> None:
        """Append whole, already stamped batches (one write), indexing a batch whenever more
        than index.interval.bytes were written since the last indexed one."""
        if not batch_bytes:
            return
        if not self.can_convert_to_relative_offset(largest_offset):
            raise ValueError(f"offset {largest_offset} does not fit segment {self.base_offset}")
        position = self._size
        view = memoryview(batch_bytes)
        fd = self._pin()
        try:
            written = os.pwrite(fd, view, position)
            while written < len(view):
                written += os.pwrite(fd, view[written:], position + written)
        except OSError:
            # Leave no partial batch behind for the next append to land after.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, position)
            raise
        finally:
            self._unpin()
        # Readers take the size as the end of what they may read, so it moves once the bytes are
        # there, and before the log end offset: whoever sees the new end can read up to it.
        self._size = position + len(view)
        interval = self.config.index_interval_bytes
        for rel, header in record_batch.batches(view):
            if self._bytes_since_last_index_entry > interval and not self.index.is_full:
                self.index.append(header.base_offset, position + rel)
                self._bytes_since_last_index_entry = 0
            self._bytes_since_last_index_entry += header.size
        if self._max_timestamp is not None and max_timestamp > self._max_timestamp:
            self._max_timestamp = max_timestamp
        self._next_offset = largest_offset + 1

    # -- reading ---------------------------------------------------------------------------------

    def read(self, start_offset: int, max_bytes: int, max_offset: int | None = None) -> bytes:
        """Whole batches from the one holding `start_offset`: no more than `max_bytes`, except
        that the first batch comes whole whatever its size (KIP-74), and none whose base offset
        is at or above `max_offset`. Empty when nothing here is at or after `start_offset`."""
        if max_bytes < 0:
            raise ValueError(f"invalid max_bytes {max_bytes}")
        if max_offset is not None and start_offset >= max_offset:
            return b""
        limit = self._size
        fd = self._pin()
        try:
            found = self._translate_offset(fd, start_offset, limit)
            if found is None:
                return b""
            position, first = found
            if max_offset is not None and first.base_offset >= max_offset:
                return b""
            wanted = max(min(max_bytes, limit - position), first.size)
            if wanted > _READ_AND_CUT_BYTES:
                # Find where the batches end first and read exactly them: cutting a large read
                # afterwards costs a copy as long as the read.
                end = self._batches_end(fd, position, position + wanted, limit, max_offset)
                data = os.pread(fd, end - position, position)
                if len(data) == end - position:
                    return data
            else:
                data = os.pread(fd, wanted, position)
        finally:
            self._unpin()
        return data[: self._batches_end_in(data, position, limit, max_offset)]

    def _cut_from(self, position: int, end: int, limit: int, max_offset: int | None) -> int:
        """Where to start walking headers to find the last whole batch before `end` and below
        `max_offset`: the last indexed batch boundary known to qualify (walking every header of a
        large read costs more than the read), or `position`."""
        boundary = self.index.floor_position(end)
        if max_offset is not None:
            boundary = min(boundary, self.index.lookup(max_offset, max_position=limit)[1])
        return max(boundary, position)

    def _batches_end(self, fd: int, position: int, end: int, limit: int, max_offset: int | None) -> int:
        """The end of the last whole batch from `position` up to `end` whose base offset is below
        `max_offset`, walking headers in the file."""
        cut = self._cut_from(position, end, limit, max_offset)
        for pos, header in _scan_headers(fd, cut, end):
            if max_offset is not None and header.base_offset >= max_offset:
                break
            cut = pos + header.size
        return cut

    def _batches_end_in(self, data: bytes, position: int, limit: int, max_offset: int | None) -> int:
        """As _batches_end, over `data` read from `position`: a length within `data`."""
        end = self._cut_from(position, position + len(data), limit, max_offset) - position
        for pos, header in record_batch.batches(data, end):
            if max_offset is not None and header.base_offset >= max_offset:
                break
            end = pos + header.size
        return end

    def batch_headers(self, start_offset: int | None = None) -> Iterator[BatchHeader]:
        """The header of each batch from the one holding `start_offset` (all by default), up to
        the size at the time of the call."""
        limit = self._size
        with self._pinned() as fd:
            if start_offset is None:
                position = 0
            else:
                found = self._translate_offset(fd, start_offset, limit)
                if found is None:
                    return
                position = found[0]
            for _, header in _scan_headers(fd, position, limit):
                yield header

    def _translate_offset(self, fd: int, offset: int, limit: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset is at or above `offset`
        (Kafka's translateOffset): from the index entry below it, scan forward."""
        # The index may have grown past the size this reader took before an append finished.
        _, position = self.index.lookup(offset, max_position=limit)
        for pos, header in _scan_headers(fd, position, limit):
            if header.last_offset >= offset:
                return pos, header
        return None

    # -- recovery and truncation -----------------------------------------------------------------

    def recover(self, max_message_bytes: int, leader_epoch_cache: LeaderEpochFileCache | None = None) -> int:
        """Check every batch from the start, rebuild the index, and cut the file at the first
        batch that is torn, corrupt (CRC, header, offsets going backwards) or larger than
        `max_message_bytes`. Returns the number of bytes cut. Newer leader epochs met on the way
        go to `leader_epoch_cache`, as Kafka's recovery does."""
        with self._pinned() as fd:
            return self._recover(fd, max_message_bytes, leader_epoch_cache)

    def _recover(self, fd: int, max_message_bytes: int, leader_epoch_cache: LeaderEpochFileCache | None) -> int:
        self.index.reset()
        size = os.fstat(fd).st_size
        valid = 0
        last_indexed = 0
        next_offset = self.base_offset
        max_timestamp = -1
        interval = self.config.index_interval_bytes
        try:
            for pos, header, buf, rel in _read_batches(fd, 0, size, max_message_bytes):
                record_batch.validate(buf, rel, header)
                if header.base_offset < next_offset or not self.can_convert_to_relative_offset(header.last_offset):
                    raise CorruptRecordError(
                        f"batch at offsets {header.base_offset}..{header.last_offset} does not follow offset "
                        f"{next_offset - 1} in a segment based at {self.base_offset}"
                    )
                if pos - last_indexed > interval and not self.index.is_full:
                    self.index.append(header.base_offset, pos)
                    last_indexed = pos
                epoch = header.partition_leader_epoch
                if leader_epoch_cache is not None and epoch >= 0 and epoch > leader_epoch_cache.latest_epoch():
                    leader_epoch_cache.assign(epoch, header.base_offset)
                next_offset = header.next_offset
                max_timestamp = max(max_timestamp, header.max_timestamp)
                valid = pos + header.size
        except (CorruptRecordError, UnsupportedCompressionError) as e:
            log.warning("Found invalid batches in log segment %s at byte %d: %s", self.log_path, valid, e)
        truncated = size - valid
        if truncated:
            os.ftruncate(fd, valid)
        self._size = valid
        self._next_offset = next_offset
        self._max_timestamp = max_timestamp
        self._bytes_since_last_index_entry = valid - last_indexed
        self.needs_recovery = False
        return truncated

    def truncate_to(self, offset: int) -> int:
        """Remove every batch whose last offset is at or above `offset` (a batch goes whole).
        Returns the number of bytes removed."""
        with self._pinned() as fd:
            found = self._translate_offset(fd, offset, self._size)
            if found is None:
                return 0
            position, header = found
            self.index.truncate_to(header.base_offset)
            os.ftruncate(fd, position)
        truncated = self._size - position
        self._size = position
        self._next_offset = header.base_offset if position else self.base_offset
        self._max_timestamp = -1 if position == 0 else None
        self._bytes_since_last_index_entry = position - self.index.last_entry[1]
        if position == 0:
            self.created_ms = _now_ms()
        return truncated

    # -- files -----------------------------------------------------------------------------------

    def flush(self) -> None:
        """fsync both files (reopening them if the cache closed them: an fsync covers whatever
        was written through any descriptor of the file)."""
        with self._pinned() as fd:
            os.fsync(fd)
        try:
            self.index.flush()
        except FileClosedError:
            raise SegmentClosedError(errno.EBADF, "the segment was closed", str(self.index.path)) from None

    def change_file_suffix(self, suffix: str) -> None:
        """Rename both files to `<name><suffix>` (Kafka marks segments `.deleted` before removing
        them); descriptors pinned meanwhile stay valid, and reopens use the new names."""
        log_path = self.log_path.with_name(log_file_name(self.base_offset) + suffix)
        self._file.rename(log_path)
        self.log_path = log_path
        self.index.rename_to(self.index.path.with_name(index_file_name(self.base_offset) + suffix))

    def close(self) -> None:
        """Idempotent. A read in flight keeps its descriptor until it is done; later ones raise
        SegmentClosedError."""
        self._file.close()
        self.index.close()

    def delete(self) -> None:
        self.close()
        self.log_path.unlink(missing_ok=True)
        self.index.path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"LogSegment(base_offset={self.base_offset}, size={self._size}, next_offset={self._next_offset})"


def _scan_headers(fd: int, position: int, limit: int) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each whole batch from `position` up to `limit`, reading headers a
    chunk at a time; stops before a batch that ends past `limit`."""
    buf = b""
    buf_start = position
    while position + HEADER_SIZE <= limit:
        rel = position - buf_start
        if rel + HEADER_SIZE > len(buf):
            buf = os.pread(fd, min(_SCAN_CHUNK, limit - position), position)
            buf_start, rel = position, 0
            if len(buf) < HEADER_SIZE:
                return
        header = record_batch.read_header(buf, rel)
        if position + header.size > limit:
            return
        yield position, header
        position += header.size


def _read_batches(
    fd: int, position: int, limit: int, max_batch_size: int
) -> Iterator[tuple[int, BatchHeader, bytes, int]]:
    """(position, header, buffer, position in buffer) of each batch, the whole batch in the
    buffer; CorruptRecordError at a torn or oversize batch."""
    buf = b""
    buf_start = position
    while position < limit:
        rel = position - buf_start
        if rel + HEADER_SIZE > len(buf):
            buf = os.pread(fd, min(_RECOVERY_CHUNK, limit - position), position)
            buf_start, rel = position, 0
        header = record_batch.read_header(buf, rel)
        if header.size > max_batch_size:
            raise CorruptRecordError(f"batch of {header.size} bytes exceeds the largest allowed, {max_batch_size}")
        if position + header.size > limit:
            raise CorruptRecordError(f"batch needs {header.size} bytes, {limit - position} are left")
        if rel + header.size > len(buf):
            buf = os.pread(fd, min(max(_RECOVERY_CHUNK, header.size), limit - position), position)
            buf_start, rel = position, 0
        yield position, header, buf, rel
        position += header.size
