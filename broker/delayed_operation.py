"""Kafka's DelayedOperation and DelayedOperationPurgatory: a request that cannot be answered yet
(an acks=all write short of the ISR, a fetch short of min_bytes) parks here with its future. One
thread per purgatory tries the parked operations again whenever the data changes (DataChanges)
and expires them at their deadlines; nobody else holds a thread meanwhile.

Kafka keys its purgatories' watchers by partition; here every change wakes the purgatory and it
tries every parked operation, which costs little at this cluster's sizes and cannot miss a key."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Generic, TypeVar

from broker.data_changes import DataChanges

log = logging.getLogger(__name__)

R = TypeVar("R")


class DelayedOperation(ABC, Generic[R]):
    """A parked request: `try_complete` answers `future` and returns True once it can, or when
    `expired` (its deadline passed or the broker stops) with whatever it has then."""

    def __init__(self, timeout_ms: int) -> None:
        self.deadline = time.monotonic() + timeout_ms / 1000
        self.future: Future[R] = Future()

    @abstractmethod
    def try_complete(self, expired: bool) -> bool: ...


class DelayedOperationPurgatory:
    def __init__(self, name: str, changes: DataChanges) -> None:
        self._changes = changes
        self._pending: list[DelayedOperation] = []
        self._added = False
        self._started = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        with self._changes.condition:
            self._start()

    def _start(self) -> None:
        """Started by start() or by the first parked operation (a replica manager in a unit test
        runs no other thread), once; called with the changes' condition held."""
        if not self._started:
            self._started = True
            self._thread.start()

    def try_complete_else_watch(self, operation: DelayedOperation[R]) -> Future[R]:
        """Kafka's tryCompleteElseWatch: `operation`'s future, answered now if it can be, else
        parked until it can be or expires."""
        if self._attempt(operation, expired=time.monotonic() >= operation.deadline):
            return operation.future
        with self._changes.condition:
            if self._changes.stopped.is_set():  # the thread may be gone: nobody would complete it
                stopped = True
            else:
                stopped = False
                self._pending.append(operation)
                self._added = True
                self._start()
                self._changes.condition.notify_all()
        if stopped:
            self._attempt(operation, expired=True)
        return operation.future

    @staticmethod
    def _attempt(operation: DelayedOperation, expired: bool) -> bool:
        try:
            return operation.try_complete(expired)
        except Exception as e:  # one operation's failure is its caller's, not the purgatory's
            log.exception("Error completing a delayed operation")
            if not operation.future.done():
                operation.future.set_exception(e)
            return True

    def _run(self) -> None:
        changes = self._changes
        while True:
            with changes.condition:
                seen = changes.version
                pending, self._pending, self._added = self._pending, [], False
            stopped = changes.stopped.is_set()
            now = time.monotonic()
            keep = [op for op in pending if not self._attempt(op, expired=stopped or now >= op.deadline)]
            with changes.condition:
                self._pending[:0] = keep
                if stopped and not self._pending:
                    return
                next_deadline = min((op.deadline for op in self._pending), default=now + 1)
                while changes.version == seen and not self._added and not changes.stopped.is_set():
                    remaining = next_deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    changes.condition.wait(remaining)

    def pending_count(self) -> int:
        with self._changes.condition:
            return len(self._pending)
