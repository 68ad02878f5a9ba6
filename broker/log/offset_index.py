"""A segment's sparse offset index (Kafka's OffsetIndex), file `<baseOffset:020d>.index`.

Each 8-byte entry maps an offset to the file position of the batch holding it: relative offset
(offset - base offset, int32 big-endian) then position (int32). Entries are sparse (one every
index.interval.bytes of log) and strictly increasing, so a lookup finds the nearest batch at or
before an offset and the segment scans forward from there.

Kafka memory-maps a preallocated file; here the entries live in a list and each append writes
its 8 bytes at the end of the file, which is therefore always exactly the valid entries. The
file's descriptor comes from the file cache (broker.log.file_cache) for each write, truncation or
fsync, and is not held in between: lookups never touch the file. Kafka
indexes each batch by its last offset (a legacy of compressed wrapper messages); v2 batches
carry their base offset in the header, so we index by base offset and a lookup lands on the
batch itself instead of the one before it.
"""

from __future__ import annotations

import bisect
import os
import struct
from pathlib import Path

from broker.log.file_cache import FileCache, default_cache

ENTRY = struct.Struct(">ii")
ENTRY_SIZE = ENTRY.size  # 8
_INT32_MAX = (1 << 31) - 1


class InvalidOffsetError(ValueError):
    """An append that would break the index's order or overflow it (Kafka's InvalidOffsetException)."""


class CorruptIndexError(ValueError):
    """An index file whose entries do not make sense (Kafka's CorruptIndexException)."""


def index_file_name(base_offset: int) -> str:
    return f"{base_offset:020d}.index"


class OffsetIndex:
    """Not thread-safe for writers (the segment's owner serialises them); `lookup` may run
    alongside one writer: the entry list is only appended to or replaced, never edited."""

    def __init__(self, path: Path, base_offset: int, max_index_size: int, *, cache: FileCache | None = None) -> None:
        """Opens the file, creating it if absent; `cache` is the process's file cache by default."""
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_size // ENTRY_SIZE)
        self._file = (cache if cache is not None else default_cache()).open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with self._file.pinned() as fd:
                data = _read_all(fd)
                valid = len(data) - len(data) % ENTRY_SIZE
                if valid != len(data):
                    os.ftruncate(fd, valid)  # a torn last entry
        except BaseException:
            self._file.close()
            raise
        # (absolute offset, position) pairs, ascending.
        self._entries: list[tuple[int, int]] = [
            (base_offset + relative, position) for relative, position in ENTRY.iter_unpack(data[:valid])
        ]

    # -- reading ---------------------------------------------------------------------------------

    def lookup(self, offset: int, max_position: int | None = None) -> tuple[int, int]:
        """The largest entry at or below `offset` (and, if given, below `max_position`), or
        (base_offset, 0) when there is none."""
        entries = self._entries
        i = bisect.bisect_right(entries, offset, key=_offset_of)
        if max_position is not None:
            while i and entries[i - 1][1] >= max_position:
                i -= 1
        return entries[i - 1] if i else (self.base_offset, 0)

    def floor_position(self, position: int) -> int:
        """The largest indexed position at or below `position` (0 when there is none): a batch
        boundary near it."""
        entries = self._entries
        i = bisect.bisect_right(entries, position, key=_position_of)
        return entries[i - 1][1] if i else 0

    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    @property
    def last_entry(self) -> tuple[int, int]:
        entries = self._entries
        return entries[-1] if entries else (self.base_offset, 0)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def is_full(self) -> bool:
        return len(self._entries) >= self.max_entries

    def sanity_check(self, log_size: int) -> None:
        """Kafka checks an index against its segment on load; a bad one is rebuilt from the log."""
        previous = self.base_offset - 1
        for offset, position in self._entries:
            if offset <= previous:
                raise CorruptIndexError(f"index {self.path}: offset {offset} after {previous}")
            if not 0 <= position < log_size:
                raise CorruptIndexError(f"index {self.path}: position {position} outside a {log_size}-byte log")
            previous = offset

    # -- writing ---------------------------------------------------------------------------------

    def append(self, offset: int, position: int) -> None:
        entries = self._entries
        if entries and offset <= entries[-1][0]:
            raise InvalidOffsetError(f"offset {offset} is not above the last indexed offset {entries[-1][0]}")
        if self.is_full:
            raise InvalidOffsetError(f"index {self.path} is full ({self.max_entries} entries)")
        relative = offset - self.base_offset
        if not 0 <= relative <= _INT32_MAX:
            raise InvalidOffsetError(f"offset {offset} is not relative to base offset {self.base_offset}")
        # At the end of the valid entries, which is where the file ends.
        entry = ENTRY.pack(relative, position)
        fd = self._file.acquire()
        try:
            if os.pwrite(fd, entry, len(entries) * ENTRY_SIZE) != ENTRY_SIZE:
                raise OSError(f"short write to index {self.path}")
        finally:
            self._file.release()
        entries.append((offset, position))

    def truncate_to(self, offset: int) -> None:
        """Drop every entry at or above `offset`."""
        keep = bisect.bisect_left(self._entries, offset, key=_offset_of)
        if keep < len(self._entries):
            with self._file.pinned() as fd:
                os.ftruncate(fd, keep * ENTRY_SIZE)
            self._entries = self._entries[:keep]

    def reset(self) -> None:
        with self._file.pinned() as fd:
            os.ftruncate(fd, 0)
        self._entries = []

    def flush(self) -> None:
        with self._file.pinned() as fd:
            os.fsync(fd)

    def rename_to(self, path: Path) -> None:
        self._file.rename(path)
        self.path = path

    def close(self) -> None:
        """Idempotent; any later file operation raises FileClosedError (an OSError)."""
        self._file.close()

    def delete(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def _offset_of(entry: tuple[int, int]) -> int:
    return entry[0]


def _position_of(entry: tuple[int, int]) -> int:
    return entry[1]


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, position = [], 0
    while position < size:
        chunk = os.pread(fd, size - position, position)
        if not chunk:
            break
        chunks.append(chunk)
        position += len(chunk)
    return b"".join(chunks)
