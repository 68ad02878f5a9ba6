"""One segment of a partition's log (Kafka's LogSegment): `<baseOffset:020d>.log`, the record
batches exactly as they were stamped, and `<baseOffset:020d>.index`, their sparse offset index.

Appends come from one writer at a time (the Log holds its lock); reads may run alongside it and
never block on it: a read pins the file descriptor, looks at the size once, and reads with
os.pread up to that size, so it sees whole batches or nothing of an append in progress.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from broker.log import record_batch
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
# Bytes read at a time when recovery checks every batch's CRC.
_RECOVERY_CHUNK = 1 << 20


class SegmentClosedError(OSError):
    """A read of a segment that was closed or deleted meanwhile (by truncation or retention)."""


def log_file_name(base_offset: int) -> str:
    return f"{base_offset:020d}{LOG_SUFFIX}"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _PinnedFd:
    """A file descriptor that readers pin while they use it. Closing defers the os.close until
    the last reader is done, so a read racing a delete fails cleanly instead of reading from
    whatever file reused the descriptor's number."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self._users = 0
        self._closing = False

    @contextlib.contextmanager
    def pinned(self) -> Iterator[int]:
        with self._lock:
            if self._closing:
                raise SegmentClosedError("the segment was closed")
            self._users += 1
        try:
            yield self.fd
        finally:
            with self._lock:
                self._users -= 1
                if self._closing and self._users == 0:
                    os.close(self.fd)

    def close(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
            if self._users == 0:
                os.close(self.fd)


class LogSegment:
    def __init__(self, dir: Path, base_offset: int, config: LogConfig, created_ms: int | None = None) -> None:
        """Opens the segment's files, creating them if absent. An existing segment is trusted as
        far as a clean shutdown allows: its next offset comes from the batches after the last
        index entry. `needs_recovery` says whether that tail or the index did not add up."""
        self.dir = dir
        self.base_offset = base_offset
        self.config = config
        self.created_ms = _now_ms() if created_ms is None else created_ms
        self.log_path = dir / log_file_name(base_offset)
        index_path = dir / index_file_name(base_offset)
        index_existed = index_path.exists()
        self._file = _PinnedFd(os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644))
        self.index = OffsetIndex(index_path, base_offset, config.segment_index_bytes)
        self._size = os.fstat(self._file.fd).st_size
        self._next_offset = base_offset
        self._max_timestamp: int | None = -1 if self._size == 0 else None  # None: not read yet
        self._bytes_since_last_index_entry = 0
        self.needs_recovery = False
        if self._size:
            self._load_tail(index_existed)

    def _load_tail(self, index_existed: bool) -> None:
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
            for pos, header in _scan_headers(self._file.fd, position, self._size):
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
            with self._file.pinned() as fd:
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
        with self._file.pinned() as fd:
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
        fd = self._file.fd
        view = memoryview(batch_bytes)
        written = os.write(fd, view)
        while written < len(view):
            written += os.write(fd, view[written:])
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
        with self._file.pinned() as fd:
            found = self._translate_offset(fd, start_offset, limit)
            if found is None:
                return b""
            position, first = found
            if max_offset is not None and first.base_offset >= max_offset:
                return b""
            data = os.pread(fd, max(min(max_bytes, limit - position), first.size), position)
        # Cut after the last whole batch below max_offset. Walking every header of a large read
        # costs more than the read: start from the last indexed batch boundary that is known to
        # be in the data and below max_offset, and walk from there.
        boundary = self.index.floor_position(position + len(data))
        if max_offset is not None:
            boundary = min(boundary, self.index.lookup(max_offset, max_position=limit)[1])
        end = max(boundary - position, 0)
        for pos, header in record_batch.batches(data, end):
            if max_offset is not None and header.base_offset >= max_offset:
                break
            end = pos + header.size
        return data if end == len(data) else data[:end]

    def batch_headers(self, start_offset: int | None = None) -> Iterator[BatchHeader]:
        """The header of each batch from the one holding `start_offset` (all by default), up to
        the size at the time of the call."""
        limit = self._size
        with self._file.pinned() as fd:
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
        self.index.reset()
        fd = self._file.fd
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
        found = self._translate_offset(self._file.fd, offset, self._size)
        if found is None:
            return 0
        position, header = found
        self.index.truncate_to(header.base_offset)
        os.ftruncate(self._file.fd, position)
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
        with self._file.pinned() as fd:
            os.fsync(fd)
        self.index.flush()

    def change_file_suffix(self, suffix: str) -> None:
        """Rename both files to `<name><suffix>` (Kafka marks segments `.deleted` before removing
        them); open descriptors stay valid."""
        log_path = self.log_path.with_name(log_file_name(self.base_offset) + suffix)
        os.rename(self.log_path, log_path)
        self.log_path = log_path
        self.index.rename_to(self.index.path.with_name(index_file_name(self.base_offset) + suffix))

    def close(self) -> None:
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
