"""What fetches and acks=all writes wait for: every append, high watermark move and leadership
change bumps one version and wakes the requests waiting for one (Kafka's purgatories, reduced to
one condition), with a log of which partitions changed, which fetch sessions read."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from minikafka_protocol.common import TopicPartition

# Changes kept for fetch sessions to catch up on; one that falls further behind reads every partition.
CHANGE_LOG_SIZE = 20000


class DataChanges:
    def __init__(self, log_size: int | None = None) -> None:
        self.condition = threading.Condition()
        self.version = 0
        # (data version, the partitions that changed, or None for any).
        self._log: deque[tuple[int, tuple[TopicPartition, ...] | None]] = deque(maxlen=log_size or CHANGE_LOG_SIZE)
        self.stopped = threading.Event()

    def notify(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Records appended, a high watermark or log start moved, a replica's state changed: in
        the partitions `tps`, or anywhere when None."""
        with self.condition:
            self.version += 1
            self._log.append((self.version, None if tps is None else tuple(tps)))
            self.condition.notify_all()

    def since(self, seen: int) -> tuple[int, set[TopicPartition] | None]:
        """The current version and the partitions changed since version `seen`; None when that is
        no longer known, or anything may have changed."""
        with self.condition:
            version = self.version
            if seen >= version:
                return version, set()
            if not self._log or self._log[0][0] > seen + 1:
                return version, None
            changed: set[TopicPartition] = set()
            for at, tps in reversed(self._log):
                if at <= seen:
                    break
                if tps is None:
                    return version, None
                changed.update(tps)
            return version, changed

    def wait(self, seen: int, timeout_s: float) -> None:
        """Wait until something changed since version `seen`, the timeout, or the broker stops."""
        with self.condition:
            self.condition.wait_for(lambda: self.version != seen or self.stopped.is_set(), timeout_s)

    def stop(self) -> None:
        self.stopped.set()
        self.notify()
