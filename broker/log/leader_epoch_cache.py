"""Where each leader epoch begins in a replica's log (Kafka's LeaderEpochFileCache), kept in the
`leader-epoch-checkpoint` file.

Followers ask the leader for the end of an epoch (OffsetsForLeaderEpoch, KIP-101) and truncate
to it instead of to their high watermark, which could lose or diverge acknowledged writes.

The rules are those of Kafka 2.0 (KIP-101, KIP-279): an assignment for an epoch older than the
latest, or one starting before the latest entry, is logged and ignored; an end offset asked for
an epoch older than the first entry is undefined. Kafka 2.1 and later instead truncate the
entries an out-of-order assignment conflicts with, and answer an epoch older than the first with
the first entry's start offset.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from broker.log.checkpoint_file import CheckpointFile, CorruptCheckpointError

log = logging.getLogger(__name__)

LEADER_EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint"
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochFileCache:
    """Thread-safe: the log's writer assigns and truncates while request threads look up."""

    def __init__(self, path: Path, write_later: Callable[[LeaderEpochFileCache], None] | None = None) -> None:
        """`write_later`: changes are not written at once; this is called with the cache (once
        until its next `flush`), and its caller flushes the cache soon after."""
        self.checkpoint = CheckpointFile(path)
        self._lock = threading.RLock()
        self._write_later = write_later
        self._unwritten = False
        self._closed = False
        self._epochs: list[EpochEntry] = []
        for line in self.checkpoint.read():
            parts = line.split()
            try:
                epoch, start_offset = int(parts[0]), int(parts[1])
                if len(parts) != 2:
                    raise ValueError
            except (ValueError, IndexError):
                raise CorruptCheckpointError(f"checkpoint {path}: malformed line {line!r}") from None
            self._epochs.append(EpochEntry(epoch, start_offset))

    @property
    def path(self) -> Path:
        return self.checkpoint.path

    # -- reading ---------------------------------------------------------------------------------

    def entries(self) -> list[EpochEntry]:
        with self._lock:
            return list(self._epochs)

    def latest_entry(self) -> EpochEntry | None:
        with self._lock:
            return self._epochs[-1] if self._epochs else None

    def earliest_entry(self) -> EpochEntry | None:
        with self._lock:
            return self._epochs[0] if self._epochs else None

    def latest_epoch(self) -> int:
        """The latest epoch, UNDEFINED_EPOCH (-1) when there is none."""
        with self._lock:
            return self._epochs[-1].epoch if self._epochs else UNDEFINED_EPOCH

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetsForLeaderEpoch: the largest known epoch at or below the
        requested one, and the start offset of the epoch after it, or `log_end_offset` when the
        requested epoch is the latest. (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET) when the epoch is
        undefined, newer than every known epoch, or older than the first: the follower then
        falls back to its high watermark."""
        with self._lock:
            epochs = self._epochs
            if requested_epoch == UNDEFINED_EPOCH or not epochs:
                return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
            if requested_epoch == epochs[-1].epoch:
                return requested_epoch, log_end_offset
            if requested_epoch < epochs[0].epoch or requested_epoch > epochs[-1].epoch:
                return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
            floor = epochs[0]
            for entry in epochs[1:]:
                if entry.epoch > requested_epoch:
                    return floor.epoch, entry.start_offset
                floor = entry
            raise AssertionError("unreachable: the latest epoch is above the requested one")

    def epoch_for_offset(self, offset: int) -> int | None:
        """The epoch of the leader that wrote `offset`, None if it precedes every entry."""
        with self._lock:
            found = None
            for entry in self._epochs:
                if entry.start_offset > offset:
                    break
                found = entry.epoch
            return found

    # -- changing --------------------------------------------------------------------------------

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that `epoch` starts at `start_offset`. Only a newer epoch starting no earlier
        than the latest entry is added; the same epoch again is a no-op, and anything else means
        batches arrived out of order: logged and ignored."""
        if epoch < 0 or start_offset < 0:
            raise ValueError(f"invalid leader epoch entry: epoch {epoch} at offset {start_offset}")
        with self._lock:
            latest = self._epochs[-1] if self._epochs else None
            if latest is None or (epoch > latest.epoch and start_offset >= latest.start_offset):
                self._epochs.append(EpochEntry(epoch, start_offset))
                self._write()
                log.debug("%s: leader epoch %d starts at offset %d", self.path, epoch, start_offset)
            elif epoch < latest.epoch:
                log.warning(
                    "%s: ignored epoch %d at offset %d, older than the latest epoch %d at offset %d: batches "
                    "arrived out of order", self.path, epoch, start_offset, latest.epoch, latest.start_offset,
                )
            elif epoch > latest.epoch:
                log.warning(
                    "%s: ignored epoch %d at offset %d, before the start offset %d of the latest epoch %d: batches "
                    "arrived out of order", self.path, epoch, start_offset, latest.start_offset, latest.epoch,
                )

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop the entries starting at or after `end_offset` (the log was truncated there)."""
        with self._lock:
            if end_offset >= 0 and self._epochs and self._epochs[-1].start_offset >= end_offset:
                removed = [e for e in self._epochs if e.start_offset >= end_offset]
                self._epochs = [e for e in self._epochs if e.start_offset < end_offset]
                self._write()
                log.info("%s: removed %s after the log was truncated to offset %d", self.path, removed, end_offset)

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at `start_offset`: drop the entries wholly before it and move the
        one holding it up to start there."""
        with self._lock:
            before = [e for e in self._epochs if e.start_offset <= start_offset]
            if not before:
                return
            after = [e for e in self._epochs if e.start_offset > start_offset]
            epochs = [EpochEntry(before[-1].epoch, start_offset), *after]
            if epochs != self._epochs:
                self._epochs = epochs
                self._write()
                log.info("%s: the log starts at offset %d; epochs now %s", self.path, start_offset, epochs)

    def clear(self) -> None:
        with self._lock:
            if self._epochs:
                self._epochs = []
                self._write()

    def flush(self) -> None:
        """Write the checkpoint if a change has waited for it since the last flush."""
        with self._lock:
            if self._unwritten and not self._closed:
                self._unwritten = False
                self._write_now()

    def close(self) -> None:
        """The log is closed or deleted: nothing is written any more (its directory may be gone,
        or hold a new log of the same partition)."""
        with self._lock:
            self._closed = True

    def _write(self) -> None:
        if self._write_later is None:
            self._write_now()
        elif not self._unwritten:
            self._unwritten = True
            self._write_later(self)

    def _write_now(self) -> None:
        # Not fsynced (as Kafka since 3.7, KAFKA-15046): a leader change writes one file per
        # partition, thousands at a failover, and recovery after a machine crash rebuilds the
        # entries from the epochs stamped on the batches.
        self.checkpoint.write([f"{e.epoch} {e.start_offset}" for e in self._epochs], sync=False)
