"""acks=all writes waiting for the ISR (Kafka's DelayedProduce in the produce purgatory): one
thread completes each write's future once every partition's high watermark passes it, its
partition fails, its timeout passes or the broker stops. Nobody else holds a thread meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from broker.data_changes import DataChanges
from broker.partition import Partition
from broker.replica_results import ProduceResult
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)

# The partition, the offset its high watermark must reach, and its min.insync.replicas.
Waiting = dict[TopicPartition, tuple[Partition, int, int]]


@dataclass
class _DelayedProduce:
    waiting: Waiting
    results: dict[TopicPartition, ProduceResult]
    deadline: float
    timeout_ms: int
    future: Future[dict[TopicPartition, ProduceResult]]


class DelayedProducePurgatory:
    def __init__(self, broker_id: int, changes: DataChanges,
                 not_leader: Callable[[TopicPartition, Errors], ProduceResult]) -> None:
        self._changes = changes
        self._not_leader = not_leader
        self._pending: list[_DelayedProduce] = []
        self._started = False
        self._thread = threading.Thread(target=self._run, name=f"delayed-produce-{broker_id}", daemon=True)

    def start(self) -> None:
        with self._changes.condition:
            self._start()

    def _start(self) -> None:
        """Started by start() or by the first delayed produce (a replica manager in a unit test
        runs no other thread), once; called with the changes' condition held."""
        if not self._started:
            self._started = True
            self._thread.start()

    def add(self, waiting: Waiting, results: dict[TopicPartition, ProduceResult],
            timeout_ms: int) -> Future[dict[TopicPartition, ProduceResult]]:
        """The future of `results`, each waiting partition's settled when its write is replicated."""
        done: Future[dict[TopicPartition, ProduceResult]] = Future()
        deadline = time.monotonic() + timeout_ms / 1000
        with self._changes.condition:
            if self._changes.stopped.is_set():  # the thread may be gone: nobody would complete it
                self._timed_out(waiting, results, timeout_ms)
                done.set_result(results)
                return done
            self._pending.append(_DelayedProduce(waiting, results, deadline, timeout_ms, done))
            self._start()
        self._changes.notify(())  # wakes the thread; no partition changed
        return done

    def _replication_done(self, waiting: Waiting, results: dict[TopicPartition, ProduceResult]) -> None:
        """Settle each waiting partition whose high watermark passed its write (or that failed)."""
        for tp, (partition, required, min_isr) in list(waiting.items()):
            outcome = partition.acks_all_result(required, min_isr)
            if outcome is None:
                continue
            del waiting[tp]
            if outcome is not Errors.NONE:
                results[tp] = self._not_leader(tp, outcome)

    @staticmethod
    def _timed_out(waiting: Waiting, results: dict[TopicPartition, ProduceResult], timeout_ms: int) -> None:
        for tp in waiting:
            results[tp] = ProduceResult(Errors.REQUEST_TIMED_OUT, f"not replicated to the ISR within {timeout_ms} ms")

    def _run(self) -> None:
        changes = self._changes
        while True:
            with changes.condition:
                seen = changes.version
                pending, self._pending = self._pending, []
            stopped = changes.stopped.is_set()
            now = time.monotonic()
            keep: list[_DelayedProduce] = []
            for delayed in pending:
                self._replication_done(delayed.waiting, delayed.results)
                if delayed.waiting and now < delayed.deadline and not stopped:
                    keep.append(delayed)
                    continue
                self._timed_out(delayed.waiting, delayed.results, delayed.timeout_ms)
                delayed.future.set_result(delayed.results)  # a failing callback is logged by Future
            with changes.condition:
                self._pending[:0] = keep
                if stopped and not self._pending:
                    return
                next_deadline = min((d.deadline for d in self._pending), default=now + 1)
                if changes.version == seen and not changes.stopped.is_set():
                    changes.condition.wait(max(0.0, next_deadline - now))
