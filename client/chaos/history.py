"""The history of a run: every send, acknowledgement, error, poll, commit, assignment,
revocation and fault, each with the time it happened (time.monotonic(), one clock for every
process on the machine), written as JSON lines.

Each process writes its own file (the runner its producer's and the faults, each group member
its own); `read_history` merges them in time order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

Event = dict[str, Any]

# The kinds of event, and who writes them.
SEND = "send"  # producer: n
ACK = "ack"  # producer: n, partition, offset
SEND_ERROR = "send-error"  # producer: n, error
POLL = "poll"  # a consumer: consumer, records [[partition, offset, n], ...]
COMMIT = "commit"  # a group member: consumer, generation, offsets {partition: offset}
COMMIT_ERROR = "commit-error"  # a group member: consumer, generation, error
ASSIGNED = "assigned"  # a group member: consumer, member_id, generation, leader, partitions
REVOKED = "revoked"  # a group member: consumer, generation, partitions
LOST = "lost"  # a group member: consumer, partitions (the generation was reset)
FAULT = "fault"  # runner: fault, kind, target, role
HEAL = "heal"  # runner: what was mended
RESTART = "restart"  # runner: a broker that had stopped by itself, started again (target, why)
PHASE = "phase"  # runner: name (faults, heal, converged)
OBSERVED = "observed"  # runner: controller, epoch, seen in ZooKeeper


class HistoryWriter:
    """Appends events to one JSON-lines file; safe to call from several threads."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = Path(path)
        self.source = source
        self._lock = threading.Lock()
        self._file: IO[str] = open(self.path, "a", buffering=1)  # noqa: SIM115 - closed by close()

    def record(self, event_type: str, /, **fields: Any) -> Event:
        event = {"t": time.monotonic(), "type": event_type, "source": self.source, **fields}
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
        return event

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_events(path: Path) -> Iterator[Event]:
    """The events of one file; a last line cut short by a killed writer is skipped."""
    with open(path) as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def read_history(paths: Iterable[Path]) -> list[Event]:
    """Every event of every file, in time order."""
    events = [e for p in paths if Path(p).exists() for e in read_events(Path(p))]
    events.sort(key=lambda e: e["t"])
    return events
