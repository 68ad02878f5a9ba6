"""A process-wide cache of open file descriptors for the segments' `.log` and `.index` files.

Kafka keeps every segment's files open for the segment's lifetime (a FileChannel per log file, a
memory map per index) and asks operators for an open-file limit of 100,000 or more. We cannot
count on that: where the limit cannot be raised (20,000 on the machines we run on), a broker with
tens of thousands of partitions would run out of descriptors, and then fail to accept sockets or
reach ZooKeeper as well. So a segment holds `CachedFile` handles, a path and how to open it, and
takes the descriptor from the cache for one operation at a time:

- `handle.acquire()` / `handle.release()` (or `with handle.pinned() as fd`) pin the descriptor,
  opening the file again if it was closed meanwhile. A hit costs a lock and a dict move, no
  system call.
- When more than `capacity` descriptors are open, the least recently used ones that nobody has
  pinned are closed. A pinned descriptor is never closed, so the cache may go over its capacity
  for as long as that many operations are in flight at once.
- `handle.close()` closes the descriptor at once, or when its last user unpins it, and from then
  on pinning raises FileClosedError: a read racing a delete fails cleanly instead of reading
  from whatever file reused the descriptor's number.
- `handle.rename(path)` renames the file and makes later reopens use the new name.

Reopening uses the flags the file was first opened with, less O_CREAT, O_EXCL and O_TRUNC: a file
that disappeared is an error rather than a new empty file. Writers should use os.pwrite at an
offset they track themselves rather than O_APPEND, whose position follows the file and not the
writer. An fsync on a descriptor opened again after an eviction still syncs what was written
through the closed one (it syncs the file, not the descriptor). A file replaced on disk under an
evicted handle is seen anew on the next reopen (a file held open is not); only tests do that.

Handles rather than bare paths are the keys: two owners of one path (a log reopened after a
simulated crash) do not share a descriptor, and a handle closed by its owner cannot be brought
back by another thread's late reopen.

`default_cache()` is the process's cache: a quarter of the soft RLIMIT_NOFILE (at least 64, at
most 10,000), read when it is first used, so that the rest stays for sockets, ZooKeeper and
whatever else the process opens.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import threading
from collections import OrderedDict
from collections.abc import Iterator

MIN_DEFAULT_CAPACITY = 64
MAX_DEFAULT_CAPACITY = 10_000
# Flags that make sense for the first open only.
_FIRST_OPEN_ONLY = os.O_CREAT | os.O_EXCL | os.O_TRUNC


class FileClosedError(OSError):
    """A pin of a file whose handle was closed (its owner closed or deleted it)."""


class FileCache:
    """A thread-safe LRU of open descriptors, over the handles it gave out."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a file cache needs a capacity of at least 1, not {capacity}")
        self._capacity = capacity
        self._lock = threading.Lock()
        # Handles whose descriptor is open, least recently used first (pinned ones included).
        self._lru: OrderedDict[CachedFile, None] = OrderedDict()
        self.hits = 0
        self.opens = 0
        self.evictions = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def set_capacity(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"a file cache needs a capacity of at least 1, not {capacity}")
        with self._lock:
            self._capacity = capacity
            evicted = self._evict_locked()
        _close_all(evicted)

    @property
    def open_count(self) -> int:
        """Descriptors open now, pinned or not (closed ones waiting for their users included)."""
        return len(self._lru)

    def open(self, path: str | os.PathLike[str], flags: int = os.O_RDWR | os.O_CREAT, mode: int = 0o644) -> CachedFile:
        """A handle on `path`, opened now (so that O_CREAT creates it and a missing file fails
        here) and placed as the most recently used."""
        handle = CachedFile(self, os.fspath(path), flags, mode)
        fd = self._os_open(handle.path, flags, mode)
        with self._lock:
            handle._fd = fd
            self._lru[handle] = None
            self.opens += 1
            evicted = self._evict_locked()
        _close_all(evicted)
        return handle

    def evict_all(self) -> int:
        """Close every descriptor nobody has pinned; returns how many."""
        with self._lock:
            evicted = self._evict_locked(target=0)
        _close_all(evicted)
        return len(evicted)

    def _os_open(self, path: str, flags: int, mode: int) -> int:
        try:
            return os.open(path, flags, mode)
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE):
                raise
        # Out of descriptors (the capacity is too large for what else the process holds open):
        # give back half of the unpinned ones and try once more.
        with self._lock:
            evicted = self._evict_locked(target=len(self._lru) // 2)
        _close_all(evicted)
        return os.open(path, flags, mode)

    def _evict_locked(self, target: int | None = None) -> list[int]:
        """Take the least recently used unpinned descriptors out until at most `target` (the
        capacity by default) are open; the caller closes them once it has let go of the lock."""
        excess = len(self._lru) - (self._capacity if target is None else target)
        if excess <= 0:
            return []
        victims = []
        for handle in self._lru:
            if handle._users == 0:
                victims.append(handle)
                if len(victims) == excess:
                    break
        fds = []
        for handle in victims:
            del self._lru[handle]
            fds.append(handle._fd)
            handle._fd = -1
        self.evictions += len(fds)
        return fds

    def __repr__(self) -> str:
        return (
            f"FileCache(capacity={self._capacity}, open={len(self._lru)}, hits={self.hits}, "
            f"opens={self.opens}, evictions={self.evictions})"
        )


class CachedFile:
    """One file's descriptor as the cache lends it. Owners pin it per operation."""

    __slots__ = ("_cache", "_closed", "_fd", "_flags", "_mode", "_reopen_lock", "_users", "path")

    def __init__(self, cache: FileCache, path: str, flags: int, mode: int) -> None:
        self._cache = cache
        self.path = path
        self._flags = flags & ~_FIRST_OPEN_ONLY
        self._mode = mode
        self._fd = -1
        self._users = 0
        self._closed = False
        # Serialises reopening with renaming, so a reopen never looks for the old name.
        self._reopen_lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_open(self) -> bool:
        """Whether a descriptor is open now (it may be evicted at any time unless pinned)."""
        return self._fd >= 0

    def acquire(self) -> int:
        """Pin the descriptor, opening the file again if it was evicted; every acquire needs a
        release. FileClosedError once the handle is closed."""
        cache = self._cache
        with cache._lock:
            if self._closed:
                raise FileClosedError(errno.EBADF, "the file was closed", self.path)
            fd = self._fd
            if fd >= 0:
                self._users += 1
                cache._lru.move_to_end(self)
                cache.hits += 1
                return fd
        return self._reopen()

    def release(self) -> None:
        cache = self._cache
        evicted: list[int] = []
        with cache._lock:
            self._users -= 1
            if self._users:
                return
            if self._closed:
                if self._fd >= 0:
                    del cache._lru[self]
                    evicted.append(self._fd)
                    self._fd = -1
            elif len(cache._lru) > cache._capacity:
                evicted = cache._evict_locked()
        _close_all(evicted)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[int]:
        fd = self.acquire()
        try:
            yield fd
        finally:
            self.release()

    def _reopen(self) -> int:
        cache = self._cache
        with self._reopen_lock:
            with cache._lock:
                if self._closed:
                    raise FileClosedError(errno.EBADF, "the file was closed", self.path)
                if self._fd >= 0:  # another thread opened it meanwhile
                    self._users += 1
                    cache._lru.move_to_end(self)
                    cache.hits += 1
                    return self._fd
            try:
                fd = cache._os_open(self.path, self._flags, self._mode)
            except FileNotFoundError:
                with cache._lock:
                    if self._closed:  # closed and deleted meanwhile
                        raise FileClosedError(errno.EBADF, "the file was closed", self.path) from None
                raise
            evicted: list[int] = []
            with cache._lock:
                if self._closed:
                    closed = True
                else:
                    closed = False
                    self._fd = fd
                    self._users += 1
                    cache._lru[self] = None
                    cache.opens += 1
                    evicted = cache._evict_locked()
            if closed:
                os.close(fd)
                raise FileClosedError(errno.EBADF, "the file was closed", self.path)
            _close_all(evicted)
            return fd

    def rename(self, path: str | os.PathLike[str]) -> None:
        """os.rename the file to `path`; an open descriptor stays valid, and a reopen finds the
        file under its new name."""
        new_path = os.fspath(path)
        with self._reopen_lock:
            os.rename(self.path, new_path)
            self.path = new_path

    def close(self) -> None:
        """Close the descriptor now, or when its last user releases it; pins fail from now on."""
        cache = self._cache
        fd = -1
        with cache._lock:
            if self._closed:
                return
            self._closed = True
            if self._users == 0 and self._fd >= 0:
                del cache._lru[self]
                fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd {self._fd}" if self._fd >= 0 else "evicted"
        return f"CachedFile({self.path!r}, {state}, {self._users} users)"


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def default_capacity() -> int:
    """A quarter of the process's soft open-file limit, between 64 and 10,000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CAPACITY
    return max(MIN_DEFAULT_CAPACITY, min(MAX_DEFAULT_CAPACITY, soft // 4))


_default: FileCache | None = None
_default_lock = threading.Lock()


def default_cache() -> FileCache:
    """The process's cache, sized by default_capacity() when first asked for (after the broker
    has had its chance to raise the limit)."""
    global _default
    cache = _default
    if cache is None:
        with _default_lock:
            if _default is None:
                _default = FileCache(default_capacity())
            cache = _default
    return cache


def set_default_cache(cache: FileCache | None) -> FileCache | None:
    """Replace the process's cache (for tests; None: a new one at the next use). Handles taken
    from the previous one stay with it. Returns the previous one."""
    global _default
    with _default_lock:
        previous, _default = _default, cache
    return previous
