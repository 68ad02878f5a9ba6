"""The leader's ISR upkeep (Kafka's maybeShrinkIsr, run every half replica.lag.time.max.ms, and
maybeExpandIsr, run when a follower catches up): the one writer of this broker's ISR changes to
ZooKeeper, all of a pass's changes written together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from broker.clock import now_ms
from broker.metadata_cache import PartitionInfo
from broker.partition import Partition, caught_up_ms
from minikafka_protocol.common import TopicPartition

log = logging.getLogger(__name__)
state_change_log = logging.getLogger("broker.state.change")

# Conditional ISR writes: each (state it was decided over, new ISR) -> its new zk version, or None if refused.
WriteIsr = Callable[[list[tuple[PartitionInfo, tuple[int, ...]]]], list[int | None]]


@dataclass(frozen=True)
class IsrChange:
    """A leader's decision to change a partition's ISR, made over `state`, not yet written."""

    partition: Partition
    state: PartitionInfo
    new_isr: tuple[int, ...]
    joining: tuple[int, ...]
    leaving: tuple[int, ...]


@dataclass
class ReplicaManagerCounters:
    """Kafka's IsrShrinksPerSec and IsrExpandsPerSec, and the records follower truncations
    discarded, as running totals."""

    isr_shrinks: int = 0
    isr_expands: int = 0
    records_truncated: int = 0
    acknowledged_records_truncated: int = 0
    failed_isr_updates: int = 0
    truncations: list[str] = field(default_factory=list)


class IsrManager:
    def __init__(
        self, prefix: str, led_partitions: Callable[[], list[Partition]], write_isr: WriteIsr | None,
        counters: ReplicaManagerCounters, notify: Callable[[Iterable[TopicPartition]], None],
        replica_lag_time_max_ms: int,
    ) -> None:
        self.prefix = prefix
        self._led_partitions = led_partitions
        self._write_isr = write_isr
        self.counters = counters
        self._notify = notify
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self._check = threading.Event()
        self._stopped = threading.Event()

    def start(self, name: str) -> None:
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self._check.set()

    def check_soon(self) -> None:
        """A follower caught up, or leadership changed: look at the ISRs now, not at the next tick."""
        self._check.set()

    def _run(self) -> None:
        interval = self.replica_lag_time_max_ms / 2000
        while not self._stopped.is_set():
            self._check.wait(interval)
            self._check.clear()
            if self._stopped.is_set():
                return
            if self._write_isr is None:
                continue
            try:
                self.change_isrs(self._led_partitions(), now_ms())
            except Exception:
                log.exception("%s Failed to update the ISRs of the partitions it leads", self.prefix)

    def change_isrs(self, leaders: list[Partition], now: int) -> None:
        """Decide each leader's ISR change, write them all at once (a restarted follower catches
        up on thousands of partitions together: one write after another took minutes), then keep
        and log those written."""
        changes = [change for partition in leaders if (change := self._isr_change(partition, now))]
        if not changes:
            return
        assert self._write_isr is not None
        versions = self._write_isr([(change.state, change.new_isr) for change in changes])
        kept = []
        for change, zk_version in zip(changes, versions, strict=True):
            if zk_version is None or not change.partition.update_isr(change.new_isr, zk_version, change.state):
                self.counters.failed_isr_updates += 1
                log.info(
                    "%s Cached zkVersion %d of partition %s not equal to that in zookeeper, skip updating ISR",
                    self.prefix, change.state.zk_version, change.partition.name,
                )
                continue
            self._log_isr_change(change, now)
            kept.append((change.partition.topic, change.partition.partition))
        if kept:
            self._notify(kept)

    def _isr_change(self, partition: Partition, now: int) -> IsrChange | None:
        joining = partition.expansion_candidates()
        leaving = partition.out_of_sync_replicas(now, self.replica_lag_time_max_ms)
        if not joining and not leaving:
            return None
        with partition.lock:
            state = partition.state
            if state is None or not partition.is_leader:
                return None
            new_isr = tuple(r for r in state.isr if r not in leaving) + tuple(r for r in joining if r not in state.isr)
            if not leaving:
                for r in joining:
                    # Kafka logs the follower's and the leader's log end offsets on expansion.
                    follower = partition.followers[r]
                    state_change_log.debug("%s %s: follower %d caught up at offset %d", self.prefix, partition.name,
                                           r, follower.log_end_offset)
        return IsrChange(partition, state, new_isr, tuple(joining), tuple(leaving))

    def _log_isr_change(self, change: IsrChange, now: int) -> None:
        partition, old_isr = change.partition, ",".join(map(str, change.state.isr))
        if change.leaving:
            self.counters.isr_shrinks += 1
            lags = ", ".join(
                f"{r} (last caught up {now - caught_up_ms(partition.followers[r])} ms ago, "
                f"log end offset {partition.followers[r].log_end_offset})" for r in change.leaving
            )
            state_change_log.info(
                "%s Shrinking ISR of partition %s from %s to %s. Out of sync replicas: %s. High watermark %d",
                self.prefix, partition.name, old_isr, ",".join(map(str, change.new_isr)), lags,
                partition.high_watermark,
            )
        if change.joining:
            self.counters.isr_expands += 1
            state_change_log.info(
                "%s Expanding ISR of partition %s from %s to %s. High watermark %d",
                self.prefix, partition.name, old_isr, ",".join(map(str, change.new_isr)), partition.high_watermark,
            )
