"""Every partition log on this broker (Kafka's LogManager): which log dir holds which
`<topic>-<partition>` directory, loading them at start-up, placing new ones, deleting them, and
the per-log-dir files that say what survived a crash.

In each log dir:
- `.kafka_cleanshutdown`: written last by a clean shutdown; without it every log recovers from
  its recovery point.
- `recovery-point-offset-checkpoint`: per log, the offset below which everything was fsynced.
(The high watermarks' `replication-offset-checkpoint` belongs to the replica manager, as in Kafka.)

No threads here: the broker schedules flushes and retention. Every method is thread-safe.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from broker.log.checkpoint_file import read_offsets, write_offsets
from broker.log.leader_epoch_cache import LeaderEpochFileCache
from broker.log.log_config import LogConfig
from broker.log.unified_log import Log, LogClosedError
from minikafka_protocol.common import TopicPartition

log = logging.getLogger(__name__)


CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
RECOVERY_POINT_CHECKPOINT_FILE = "recovery-point-offset-checkpoint"
DELETE_DIR_SUFFIX = "-delete"


class DuplicateLogDirectoryError(RuntimeError):
    """The same partition in two log dirs: which copy is right cannot be told."""


def log_dir_name(tp: TopicPartition) -> str:
    return f"{tp[0]}-{tp[1]}"


def parse_log_dir_name(name: str) -> TopicPartition | None:
    """`<topic>-<partition>`; a topic may itself contain '-', so the partition follows the last."""
    topic, sep, partition = name.rpartition("-")
    if not sep or not topic or not partition.isdigit():
        return None
    return topic, int(partition)


class LogManager:
    def __init__(
        self,
        log_dirs: list[str],
        default_config: LogConfig,
        topic_configs: Mapping[str, LogConfig] | None = None,
    ) -> None:
        """Load every log in `log_dirs`. `topic_configs` are the topics' overrides, if known at
        start-up (as Kafka reads them from ZooKeeper before loading): recovery checks batches
        against a log's own settings."""
        self.log_dirs = [Path(d) for d in log_dirs]
        self.default_config = default_config
        self._lock = threading.RLock()
        self._checkpoint_lock = threading.Lock()
        self._logs: dict[TopicPartition, Log] = {}
        self._dir_of: dict[TopicPartition, Path] = {}
        self._shut_down = False
        # Leader epoch caches changed since checkpoint_leader_epochs last wrote them.
        self._epochs_lock = threading.Lock()
        self._unwritten_epochs: set[LeaderEpochFileCache] = set()
        for log_dir in self.log_dirs:
            log_dir.mkdir(parents=True, exist_ok=True)
        for log_dir in self.log_dirs:
            self._load_log_dir(log_dir, topic_configs or {})

    def _load_log_dir(self, log_dir: Path, topic_configs: Mapping[str, LogConfig]) -> None:
        clean_file = log_dir / CLEAN_SHUTDOWN_FILE
        clean = clean_file.exists()
        recovery_points = read_offsets(log_dir / RECOVERY_POINT_CHECKPOINT_FILE)
        started = time.monotonic()
        loaded = 0
        for path in sorted(log_dir.iterdir()):
            if not path.is_dir():
                continue
            if path.name.endswith(DELETE_DIR_SUFFIX):
                log.info("Removing %s, a log whose deletion was cut short", path)
                shutil.rmtree(path, ignore_errors=True)
                continue
            tp = parse_log_dir_name(path.name)
            if tp is None:
                log.warning("Skipping %s in log dir %s: not a <topic>-<partition> directory", path.name, log_dir)
                continue
            if tp in self._logs:
                raise DuplicateLogDirectoryError(
                    f"Duplicate log directories for {log_dir_name(tp)} are found in both {self._dir_of[tp]} "
                    f"and {log_dir}. It is likely because log directory failure happened while broker was "
                    f"replacing current replica with future replica. Recover broker from this failure by "
                    f"manually deleting one of the two directories for this partition."
                )
            self._logs[tp] = Log(
                path, topic_configs.get(tp[0], self.default_config),
                recovery_point=recovery_points.get(tp, 0), clean_shutdown=clean,
                write_epochs_later=self._write_epochs_later,
            )
            self._dir_of[tp] = log_dir
            loaded += 1
        # From here on a crash is not a clean shutdown, whatever the last one was.
        clean_file.unlink(missing_ok=True)
        log.info(
            "Loaded %d logs from %s in %.0f ms after %s shutdown", loaded, log_dir,
            (time.monotonic() - started) * 1000, "a clean" if clean else "an unclean",
        )

    # -- logs ------------------------------------------------------------------------------------

    def get_log(self, tp: TopicPartition) -> Log | None:
        with self._lock:
            return self._logs.get(tp)

    def all_logs(self) -> dict[TopicPartition, Log]:
        with self._lock:
            return dict(self._logs)

    def log_dir_of(self, tp: TopicPartition) -> Path | None:
        with self._lock:
            return self._dir_of.get(tp)

    def get_or_create_log(self, tp: TopicPartition, config: LogConfig | None = None) -> Log:
        """The partition's log, created in the log dir holding the fewest partitions if new. An
        existing log takes `config` if given (it was loaded before its topic's settings were known)."""
        with self._lock:
            self._check_running()
            existing = self._logs.get(tp)
            if existing is not None:
                if config is not None and config != existing.config:
                    existing.update_config(config)
                return existing
            if len(self.log_dirs) == 1:
                log_dir = self.log_dirs[0]
            else:
                counts = Counter(self._dir_of.values())
                log_dir = min(self.log_dirs, key=lambda d: counts[d])
            created = Log(log_dir / log_dir_name(tp), config or self.default_config,
                          write_epochs_later=self._write_epochs_later)
            self._logs[tp] = created
            self._dir_of[tp] = log_dir
            log.info("Created log for partition %s in %s", log_dir_name(tp), log_dir)
            return created

    def update_config(self, tp: TopicPartition, config: LogConfig) -> None:
        with self._lock:
            existing = self._logs.get(tp)
            if existing is not None:
                existing.update_config(config)

    def delete_log(self, tp: TopicPartition) -> bool:
        """Close the partition's log and remove its directory: renamed `<topic>-<partition>.<uuid>-delete`
        first, so that a crash midway leaves no directory that loads as the partition."""
        with self._lock:
            removed = self._logs.pop(tp, None)
            log_dir = self._dir_of.pop(tp, None)
        if removed is None or log_dir is None:
            return False
        removed.close()
        doomed = removed.dir.with_name(f"{removed.dir.name}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}")
        removed.dir.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        log.info("Deleted log for partition %s in %s", log_dir_name(tp), log_dir)
        # The deleted partition must not come back with a stale recovery point if it is recreated.
        self.checkpoint_recovery_points()
        return True

    # -- retention and flushing ------------------------------------------------------------------

    def cleanup_logs(self, high_watermarks: Callable[[TopicPartition], int | None], now_ms: int | None = None) -> int:
        """Retention over every log whose high watermark is known. Returns the segments deleted."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        deleted = 0
        for tp, partition_log in self.all_logs().items():
            high_watermark = high_watermarks(tp)
            if high_watermark is None:
                continue
            with contextlib.suppress(LogClosedError):  # deleted meanwhile
                deleted += partition_log.delete_old_segments(high_watermark, now)
        return deleted

    def flush(self) -> None:
        """fsync every log up to its end, then record the new recovery points."""
        for partition_log in self.all_logs().values():
            with contextlib.suppress(LogClosedError):  # deleted meanwhile
                partition_log.flush()
        self.checkpoint_recovery_points()

    def checkpoint_recovery_points(self) -> None:
        """Write each log dir's recovery-point-offset-checkpoint, after fsyncing the segments
        rolled since the last time. Kafka flushes a segment when it rolls, from a scheduler
        thread; here the periodic checkpoint does it, so appends never wait for an fsync and a
        crash recovers at most the active segments and those rolled since."""
        for partition_log in self.all_logs().values():
            with contextlib.suppress(LogClosedError):  # deleted meanwhile
                partition_log.flush(partition_log.active_segment.base_offset)
        with self._checkpoint_lock:
            with self._lock:
                by_dir: dict[Path, dict[TopicPartition, int]] = {d: {} for d in self.log_dirs}
                for tp, partition_log in self._logs.items():
                    by_dir[self._dir_of[tp]][tp] = partition_log.recovery_point
            for log_dir, offsets in by_dir.items():
                write_offsets(log_dir / RECOVERY_POINT_CHECKPOINT_FILE, offsets)

    def _write_epochs_later(self, cache: LeaderEpochFileCache) -> None:
        with self._epochs_lock:
            self._unwritten_epochs.add(cache)

    def checkpoint_leader_epochs(self) -> None:
        """Write the leader-epoch-checkpoint files changed since the last call. Kafka writes one
        as each new leader epoch is assigned, on the LeaderAndIsr path: a failover that moves
        thousands of leaders here would write thousands of files before the new leaders serve
        (about 0.3 ms each, a rename over the old file). The scheduler writes them a moment
        later instead; a crash in between loses only entries that recovery finds again in the
        batches, or that name an epoch with no batch, which no follower's truncation needs."""
        with self._epochs_lock:
            caches, self._unwritten_epochs = self._unwritten_epochs, set()
        for cache in caches:
            cache.flush()

    def shutdown(self) -> None:
        """Flush and close every log, checkpoint, and mark each log dir as cleanly shut down."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            logs = list(self._logs.values())
        for partition_log in logs:
            with contextlib.suppress(LogClosedError):  # deleted meanwhile
                partition_log.flush()
        self.checkpoint_recovery_points()
        self.checkpoint_leader_epochs()
        for partition_log in logs:
            partition_log.close()
        for log_dir in self.log_dirs:
            (log_dir / CLEAN_SHUTDOWN_FILE).touch()
        log.info("Shut down the log manager: %d logs flushed and closed", len(logs))

    def _check_running(self) -> None:
        if self._shut_down:
            raise LogClosedError("the log manager is shut down")
