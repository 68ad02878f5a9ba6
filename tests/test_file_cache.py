"""The file descriptor cache: LRU eviction of unpinned descriptors only, deferred close, reopen
after eviction and rename, and many threads at once."""

from __future__ import annotations

import os
import random
import resource
import threading
from pathlib import Path

import pytest

from broker.log import file_cache
from broker.log.file_cache import FileCache, FileClosedError


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def make_files(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"f{i}"
        path.write_bytes(f"file {i}".encode())
        paths.append(path)
    return paths


def test_lru_eviction_closes_the_least_recently_used(tmp_path: Path) -> None:
    cache = FileCache(3)
    handles = [cache.open(p, os.O_RDONLY) for p in make_files(tmp_path, 3)]
    assert cache.open_count == 3
    with handles[0].pinned():  # now the most recently used
        pass
    fourth = cache.open(tmp_path / "new", os.O_RDWR | os.O_CREAT)
    assert cache.open_count == 3
    assert [h.is_open for h in handles] == [True, False, True]
    assert fourth.is_open and cache.evictions == 1


def test_eviction_never_closes_a_pinned_descriptor(tmp_path: Path) -> None:
    cache = FileCache(2)
    paths = make_files(tmp_path, 5)
    handles = [cache.open(p, os.O_RDONLY) for p in paths]
    fd0 = handles[0].acquire()
    fd1 = handles[1].acquire()
    try:
        # Both the least recently used and pinned: the cache goes over its capacity instead.
        for h in handles[2:]:
            with h.pinned() as fd:
                assert os.pread(fd, 100, 0).startswith(b"file")
        assert handles[0].is_open and handles[1].is_open
        assert is_open(fd0) and os.pread(fd0, 100, 0) == b"file 0"
        assert os.pread(fd1, 100, 0) == b"file 1"
        assert cache.open_count <= 3
    finally:
        handles[0].release()
        handles[1].release()
    # Unpinned, the excess goes.
    assert cache.open_count <= 2


def test_close_while_pinned_waits_for_the_last_user(tmp_path: Path) -> None:
    cache = FileCache(4)
    (path,) = make_files(tmp_path, 1)
    handle = cache.open(path, os.O_RDONLY)
    first = handle.acquire()
    second = handle.acquire()
    handle.close()
    handle.close()  # idempotent
    with pytest.raises(FileClosedError):
        handle.acquire()
    handle.release()
    assert is_open(first) and os.pread(second, 100, 0) == b"file 0"
    handle.release()
    assert not is_open(first)
    assert cache.open_count == 0
    with pytest.raises(FileClosedError), handle.pinned():
        pass


def test_close_of_an_evicted_handle_makes_reopening_fail(tmp_path: Path) -> None:
    cache = FileCache(1)
    a, b = make_files(tmp_path, 2)
    handle = cache.open(a, os.O_RDONLY)
    cache.open(b, os.O_RDONLY)
    assert not handle.is_open
    handle.close()
    with pytest.raises(FileClosedError):
        handle.acquire()


def test_reopen_after_eviction_sees_the_same_file(tmp_path: Path) -> None:
    cache = FileCache(2)
    handles = [cache.open(tmp_path / f"w{i}", os.O_RDWR | os.O_CREAT) for i in range(6)]
    for i, h in enumerate(handles):
        with h.pinned() as fd:
            os.pwrite(fd, f"written {i}".encode(), 0)
    assert cache.open_count == 2
    for i, h in enumerate(handles):
        with h.pinned() as fd:
            assert os.pread(fd, 100, 0) == f"written {i}".encode()
            os.ftruncate(fd, 7)  # truncation and fsync through a reopened descriptor
            os.fsync(fd)
    for i in range(6):
        assert (tmp_path / f"w{i}").read_bytes() == b"written"
    assert cache.evictions >= 10


def test_reopen_does_not_create_a_deleted_file(tmp_path: Path) -> None:
    cache = FileCache(1)
    path = tmp_path / "gone"
    handle = cache.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    cache.open(tmp_path / "other", os.O_RDWR | os.O_CREAT)
    path.unlink()
    with pytest.raises(FileNotFoundError):
        handle.acquire()
    assert not path.exists()


def test_rename_then_reopen_uses_the_new_name(tmp_path: Path) -> None:
    cache = FileCache(1)
    (path,) = make_files(tmp_path, 1)
    handle = cache.open(path, os.O_RDONLY)
    handle.rename(tmp_path / "renamed")
    assert handle.path == str(tmp_path / "renamed") and not path.exists()
    cache.open(tmp_path / "other", os.O_RDWR | os.O_CREAT)  # evicts it
    with handle.pinned() as fd:
        assert os.pread(fd, 100, 0) == b"file 0"


def test_evict_all_and_set_capacity(tmp_path: Path) -> None:
    cache = FileCache(10)
    handles = [cache.open(p, os.O_RDONLY) for p in make_files(tmp_path, 6)]
    cache.set_capacity(4)
    assert cache.open_count == 4
    with handles[5].pinned():
        assert cache.evict_all() == 3
        assert cache.open_count == 1
    with pytest.raises(ValueError):
        FileCache(0)


def test_many_threads_keep_within_capacity_and_read_their_files(tmp_path: Path) -> None:
    capacity = 8
    cache = FileCache(capacity)
    paths = make_files(tmp_path, 40)
    handles = [cache.open(p, os.O_RDWR) for p in paths]
    baseline = open_fds()
    errors: list[BaseException] = []
    peak = 0
    threads_n = 6
    closed = set(random.Random(99).sample(range(len(handles)), 10))

    def worker(seed: int) -> None:
        nonlocal peak
        rng = random.Random(seed)
        try:
            for _ in range(3000):
                i = rng.randrange(len(handles))
                try:
                    with handles[i].pinned() as fd:
                        assert os.pread(fd, 100, 0) == f"file {i}".encode()
                        peak = max(peak, cache.open_count)
                except FileClosedError:
                    assert i in closed
        except BaseException as e:  # reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads_n)]
    for t in threads:
        t.start()
    for i in closed:  # closes racing the readers
        handles[i].close()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    # Over capacity only by what is pinned at once: at most one per thread.
    assert peak <= capacity + threads_n
    assert cache.open_count <= capacity
    assert open_fds() <= baseline
    assert cache.hits > 0 and cache.evictions > 0


def test_default_capacity_is_a_quarter_of_the_soft_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def limit(soft: int) -> None:
        monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, resource.RLIM_INFINITY))

    limit(20_000)
    assert file_cache.default_capacity() == 5_000
    limit(100)
    assert file_cache.default_capacity() == 64
    limit(1 << 20)
    assert file_cache.default_capacity() == 10_000
    limit(resource.RLIM_INFINITY)
    assert file_cache.default_capacity() == 10_000


def test_default_cache_is_created_once_and_replaceable() -> None:
    cache = file_cache.default_cache()
    assert file_cache.default_cache() is cache
    assert cache.capacity == file_cache.default_capacity()
    mine = FileCache(8)
    previous = file_cache.set_default_cache(mine)
    try:
        assert previous is cache and file_cache.default_cache() is mine
    finally:
        file_cache.set_default_cache(previous)
