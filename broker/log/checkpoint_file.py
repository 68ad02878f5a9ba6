"""Kafka's checkpoint files (CheckpointFile, OffsetCheckpointFile): a version line, a count line,
then one entry a line; written to a temporary file, fsynced and renamed, so a crash leaves the old
file or the new one, never half of one. replication-offset-checkpoint and
recovery-point-offset-checkpoint hold "<topic> <partition> <offset>" entries."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from minikafka_protocol.common import TopicPartition

log = logging.getLogger(__name__)



class CorruptCheckpointError(ValueError):
    """A checkpoint file that does not parse; its message names the file and the line."""


class CheckpointFile:
    """Kafka's checkpoint text format: the version, the count of entries, then one entry a line.
    Written whole to `<name>.tmp`, fsynced and renamed over the file, so a reader sees the old
    contents or the new, never a mix."""

    def __init__(self, path: Path, version: int = 0) -> None:
        self.path = path
        self.version = version

    def write(self, lines: Sequence[str], sync: bool = True) -> None:
        """`sync=False` skips the fsyncs: the rename still leaves a whole file after a process
        crash, and only a machine crash can lose the new contents."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = "".join(f"{line}\n" for line in (str(self.version), str(len(lines)), *lines)).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if sync:
            _fsync_dir(self.path.parent)

    def read(self) -> list[str]:
        """The entry lines; none when the file does not exist."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        lines = text.splitlines()
        if len(lines) < 2:
            raise CorruptCheckpointError(f"checkpoint {self.path}: no version and count lines")
        if lines[0].strip() != str(self.version):
            raise CorruptCheckpointError(f"checkpoint {self.path}: unknown version {lines[0]!r}")
        try:
            count = int(lines[1])
        except ValueError:
            raise CorruptCheckpointError(f"checkpoint {self.path}: malformed count {lines[1]!r}") from None
        entries = [line for line in lines[2:] if line.strip()]
        if len(entries) != count:
            raise CorruptCheckpointError(f"checkpoint {self.path}: {len(entries)} entries, the count says {count}")
        return entries


def _fsync_dir(path: Path) -> None:
    # The rename is durable once the directory is.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_offsets(path: Path) -> dict[TopicPartition, int]:
    """A checkpoint of `<topic> <partition> <offset>` lines; an unreadable one counts as empty
    (a recovery that starts earlier, a high watermark that starts lower: safe, only slower)."""
    try:
        offsets = {}
        for line in CheckpointFile(path).read():
            topic, partition, offset = line.rsplit(" ", 2)
            offsets[(topic, int(partition))] = int(offset)
        return offsets
    except (CorruptCheckpointError, ValueError) as e:
        log.warning("Ignoring checkpoint %s: %s", path, e)
        return {}


def write_offsets(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    CheckpointFile(path).write([f"{t} {p} {o}" for (t, p), o in sorted(offsets.items())])
