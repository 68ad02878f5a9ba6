"""The broker's metadata cache, fed only by the controller's UpdateMetadata requests.

Readers take an immutable snapshot; the one writer (the UpdateMetadata handler) swaps in a new
one, so no reader ever sees half an update.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import NamedTuple

from broker.api.futures import answer_once
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.security import endpoint_address


@dataclass(frozen=True)
class BrokerEndpoint:
    broker_id: int
    host: str
    port: int
    rack: str | None = None
    broker_epoch: int = -1
    endpoints: tuple[str, ...] = ()

    def on_listener(self, listener_name: str) -> BrokerEndpoint | None:
        """This broker as a caller on `listener_name` reaches it (Kafka answers Metadata with each
        broker's endpoint on the listener the request came in on); None when it has no such
        listener. One that registered no endpoints at all is taken as it is."""
        if not self.endpoints:
            return self
        found = endpoint_address(self.endpoints, listener_name)
        return None if found is None else replace(self, host=found[0], port=found[1])


class PartitionInfo(NamedTuple):
    """A partition's state as the controller last sent it. A named tuple rather than a
    dataclass: a broker builds one per partition from every UpdateMetadata and LeaderAndIsr,
    fifty thousand at a controller failover, and a tuple is several times cheaper to build."""

    topic: str
    partition: int
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    replicas: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()
    zk_version: int = -1
    controller_epoch: int = 0


@dataclass(frozen=True)
class MetadataSnapshot:
    controller_id: int = -1
    controller_epoch: int = 0
    brokers: dict[int, BrokerEndpoint] = field(default_factory=dict)
    partitions: dict[TopicPartition, PartitionInfo] = field(default_factory=dict)

    @cached_property
    def by_topic(self) -> dict[str, list[PartitionInfo]]:
        """Each topic's partitions in order; built once per snapshot, on first use, so that a
        metadata request for one topic does not sort every partition of the cluster."""
        by_topic: dict[str, list[PartitionInfo]] = {}
        for (topic, _), info in sorted(self.partitions.items()):
            by_topic.setdefault(topic, []).append(info)
        return by_topic

    def partitions_of(self, topic: str) -> list[PartitionInfo]:
        return self.by_topic.get(topic, [])


class MetadataCache:
    def __init__(self) -> None:
        self._snapshot = MetadataSnapshot()
        self._lock = threading.Lock()  # the snapshot's replacement and the waiters
        # when(): each condition still unmet, with the future it completes.
        self._waiters: list[tuple[Callable[[MetadataSnapshot], bool], Future[bool]]] = []

    def snapshot(self) -> MetadataSnapshot:
        return self._snapshot

    def update(
        self,
        controller_id: int,
        controller_epoch: int,
        live_brokers: list[BrokerEndpoint],
        partition_states: list[PartitionInfo],
        deleted: list[TopicPartition],
    ) -> None:
        current = self._snapshot
        partitions = dict(current.partitions)
        for tp in deleted:
            partitions.pop(tp, None)
        for info in partition_states:
            partitions[(info.topic, info.partition)] = info
        brokers = {b.broker_id: b for b in live_brokers} if live_brokers else current.brokers
        if set(brokers) != set(current.brokers):
            # Offline replicas follow from the live brokers: when those change, recompute them all
            # (once per distinct replica list: a cluster has few), and rebuild only the partitions
            # whose offline replicas changed. A new controller's first request does this for
            # every partition.
            live = set(brokers)
            offline_of: dict[tuple[int, ...], tuple[int, ...]] = {}
            for tp, info in list(partitions.items()):
                offline = offline_of.get(info.replicas)
                if offline is None:
                    offline = offline_of[info.replicas] = tuple(r for r in info.replicas if r not in live)
                if offline != info.offline_replicas:
                    partitions[tp] = PartitionInfo(
                        info.topic, info.partition, info.leader, info.leader_epoch, info.isr, info.replicas,
                        offline, info.zk_version, info.controller_epoch,
                    )
        with self._lock:
            self._snapshot = snapshot = MetadataSnapshot(controller_id, controller_epoch, brokers, partitions)
            met = [future for condition, future in self._waiters if not future.done() and condition(snapshot)]
            self._waiters = [(c, f) for c, f in self._waiters if not f.done() and f not in met]
        for future in met:
            answer_once(future, True)

    def when(self, condition: Callable[[MetadataSnapshot], bool]) -> Future[bool]:
        """A future answered True once `condition(snapshot)` holds (at once if it does now), for
        a request that waits for the controller's news without holding a thread. Whoever waits
        may answer it False first (a timeout); the cache then forgets it at its next update."""
        future: Future[bool] = Future()
        with self._lock:
            if not condition(self._snapshot):
                self._waiters.append((condition, future))
                return future
        future.set_result(True)
        return future

