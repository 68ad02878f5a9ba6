"""The broker's replicas: which partitions it leads or follows, as the controller told it.

LeaderAndIsr and StopReplica requests are checked here, as Kafka's ReplicaManager does: a
request from a controller older than the newest one seen is refused (STALE_CONTROLLER_EPOCH),
one meant for an earlier incarnation of this broker too (STALE_BROKER_EPOCH), and a partition
state whose leader epoch is not newer than the one the broker holds is ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from broker.errors import Errors
from broker.metadata_cache import PartitionInfo, TopicPartition

log = logging.getLogger(__name__)


class ReplicaManager:
    def __init__(
        self,
        broker_id: int,
        broker_epoch: Callable[[], int],
        live_brokers: Callable[[], set[int]] = set,
        write_isr: Callable[[PartitionInfo, tuple[int, ...]], int | None] | None = None,
    ) -> None:
        self.broker_id = broker_id
        self._broker_epoch = broker_epoch
        self._live_brokers = live_brokers
        self._write_isr = write_isr
        self._isr_check = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # requests from the controller arrive on gRPC threads
        self.controller_epoch = 0
        self._partitions: dict[TopicPartition, PartitionInfo] = {}
        self.prefix = f"[Broker id={broker_id}]"

    def partitions(self) -> dict[TopicPartition, PartitionInfo]:
        with self._lock:
            return dict(self._partitions)

    def leader_partitions(self) -> list[TopicPartition]:
        with self._lock:
            return sorted(tp for tp, p in self._partitions.items() if p.leader == self.broker_id)

    def accept_controller_request(
        self, kind: str, controller_id: int, controller_epoch: int, broker_epoch: int
    ) -> Errors:
        with self._lock:
            return self.check_controller(kind, controller_id, controller_epoch, broker_epoch)

    def check_controller(self, kind: str, controller_id: int, controller_epoch: int, broker_epoch: int) -> Errors:
        """The request-level checks shared by the controller's requests; call with the lock held."""
        if controller_epoch < self.controller_epoch:
            log.warning(
                "%s Ignoring %s request from controller %d with controller epoch %d since it is older "
                "than the latest known controller epoch %d",
                self.prefix, kind, controller_id, controller_epoch, self.controller_epoch,
            )
            return Errors.STALE_CONTROLLER_EPOCH
        if broker_epoch != -1 and broker_epoch < self._broker_epoch():
            log.warning(
                "%s Ignoring %s request from controller %d: broker epoch %d is older than the current %d",
                self.prefix, kind, controller_id, broker_epoch, self._broker_epoch(),
            )
            return Errors.STALE_BROKER_EPOCH
        self.controller_epoch = controller_epoch
        return Errors.NONE

    def become_leader_or_follower(
        self, controller_id: int, controller_epoch: int, broker_epoch: int, states: list[PartitionInfo]
    ) -> tuple[Errors, dict[TopicPartition, Errors]]:
        with self._lock:
            error = self.check_controller("LeaderAndIsr", controller_id, controller_epoch, broker_epoch)
            if error is not Errors.NONE:
                return error, {}
            results: dict[TopicPartition, Errors] = {}
            for state in states:
                tp = (state.topic, state.partition)
                if self.broker_id not in state.replicas:
                    results[tp] = Errors.UNKNOWN_TOPIC_OR_PARTITION
                    continue
                current = self._partitions.get(tp)
                if current is not None and state.leader_epoch <= current.leader_epoch:
                    log.info(
                        "%s Ignoring LeaderAndIsr request from controller %d with correlation epoch %d for "
                        "partition %s-%d since its associated leader epoch %d is not higher than the current "
                        "leader epoch %d",
                        self.prefix, controller_id, controller_epoch, state.topic, state.partition,
                        state.leader_epoch, current.leader_epoch,
                    )
                    results[tp] = Errors.STALE_CONTROLLER_EPOCH
                    continue
                self._partitions[tp] = state
                previous = current.leader_epoch if current else -1
                if state.leader == self.broker_id:
                    log.info(
                        "%s Leader %s-%d starts at leader epoch %d with ISR %s. Previous leader epoch was %d.",
                        self.prefix, state.topic, state.partition, state.leader_epoch, list(state.isr), previous,
                    )
                else:
                    log.info(
                        "%s Follower %s-%d starts at leader epoch %d following leader %d. "
                        "Previous leader epoch was %d.",
                        self.prefix, state.topic, state.partition, state.leader_epoch, state.leader, previous,
                    )
                results[tp] = Errors.NONE
            return Errors.NONE, results

    def stop_replicas(
        self, controller_id: int, controller_epoch: int, broker_epoch: int,
        partitions: list[tuple[str, int, int, bool]],
    ) -> tuple[Errors, dict[TopicPartition, Errors]]:
        """(topic, partition, leader epoch, delete) each; -2 as leader epoch means deletion."""
        with self._lock:
            error = self.check_controller("StopReplica", controller_id, controller_epoch, broker_epoch)
            if error is not Errors.NONE:
                return error, {}
            results = {}
            for topic, partition, leader_epoch, delete in partitions:
                tp = (topic, partition)
                current = self._partitions.get(tp)
                if current is not None and 0 <= leader_epoch < current.leader_epoch:
                    results[tp] = Errors.FENCED_LEADER_EPOCH
                    continue
                if delete:
                    self._partitions.pop(tp, None)
                elif current is not None:
                    # Stopped but kept: it no longer leads or follows anyone.
                    self._partitions[tp] = current._replace(leader=-1)
                log.info("%s Stopped replica %s-%d (delete: %s)", self.prefix, topic, partition, delete)
                results[tp] = Errors.NONE
            return Errors.NONE, results

    # -- ISR upkeep by the leader ------------------------------------------------------------

    def request_isr_check(self) -> None:
        self._isr_check.set()

    def start_isr_upkeep(self) -> None:
        threading.Thread(target=self._isr_upkeep, name=f"isr-upkeep-{self.broker_id}", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()
        self._isr_check.set()

    def _isr_upkeep(self) -> None:
        """The one writer of this broker's ISR changes. A follower joins the ISR once it has
        caught up with the leader; the logs hold no records yet, so a live follower has
        caught up as soon as it is back."""
        while not self._stopped.is_set():
            self._isr_check.wait(1.0)
            self._isr_check.clear()
            if self._stopped.is_set() or self._write_isr is None:
                return
            live = self._live_brokers()
            for partition in self.partitions().values():
                if partition.leader != self.broker_id:
                    continue
                joining = [r for r in partition.replicas if r in live and r not in partition.isr]
                if not joining:
                    continue
                new_isr = partition.isr + tuple(joining)
                try:
                    zk_version = self._write_isr(partition, new_isr)
                except Exception:
                    log.exception("%s Failed to expand the ISR of %s-%d", self.prefix, partition.topic,
                                  partition.partition)
                    continue
                tp = (partition.topic, partition.partition)
                if zk_version is None:
                    log.info(
                        "%s Cached zkVersion %d of partition %s-%d not equal to that in zookeeper, skip updating ISR",
                        self.prefix, partition.zk_version, partition.topic, partition.partition,
                    )
                    continue
                with self._lock:
                    current = self._partitions.get(tp)
                    if current is not None and current.leader_epoch == partition.leader_epoch:
                        self._partitions[tp] = current._replace(isr=new_isr, zk_version=zk_version)
                log.info(
                    "%s ISR updated for partition %s-%d: expanding ISR from %s to %s",
                    self.prefix, partition.topic, partition.partition,
                    ",".join(map(str, partition.isr)), ",".join(map(str, new_isr)),
                )
