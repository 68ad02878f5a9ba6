"""`SnapshotCollector`: one refresh of `minikafka watch` over gRPC. Every broker is asked at once
(DescribeCluster, Metadata, BrokerMetrics, ListGroups), then FindCoordinator and DescribeGroups
for each group, with short timeouts, over one channel per broker kept across refreshes; ZooKeeper
servers are asked `srvr`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc

from broker.grpc_options import target
from client.admin import parse_bootstrap_servers
from client.cluster import ClusterMetadata
from client.group.wire import GroupClient, describe_members
from client.security import PLAINTEXT, ClientSecurity
from client.tooling.zookeeper import four_letter_word
from client.watch.snapshot import (
    BrokerCounters,
    BrokerState,
    ClusterSnapshot,
    GroupMember,
    GroupState,
    PartitionState,
    ZooKeeperServerState,
)
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC, partition_for
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

# -- ZooKeeper's own election --------------------------------------------------------------------------


def parse_zookeeper_connect(value: str) -> list[str]:
    """The servers of a zookeeper.connect string (a chroot suffix is ignored): HOST:PORT each."""
    servers = value.split("/", 1)[0]
    try:
        return parse_bootstrap_servers(servers)
    except Exception as e:
        raise ValueError(str(e).replace("--bootstrap-server", "--zookeeper").replace("bootstrap server",
                                                                                        "ZooKeeper server")) from None


def parse_srvr(answer: str) -> tuple[str | None, int | None]:
    """Mode and zxid from a `srvr` answer; (None, None) from a server not serving requests."""
    fields = dict(line.split(":", 1) for line in answer.splitlines() if ":" in line)
    mode = fields.get("Mode", "").strip() or None
    zxid = fields.get("Zxid", "").strip()
    return mode, int(zxid, 16) if zxid.lower().startswith("0x") else None


def zookeeper_server_state(address: str, timeout_s: float) -> ZooKeeperServerState:
    host, _, port = address.rpartition(":")
    try:
        answer = four_letter_word(host.strip("[]"), int(port), "srvr", timeout=timeout_s)
    except OSError as e:
        return ZooKeeperServerState(address, None, error=f"unreachable ({e.strerror or type(e).__name__})")
    mode, zxid = parse_srvr(answer)
    if mode is None:
        return ZooKeeperServerState(address, None, error=answer.strip().splitlines()[0] if answer.strip()
                                    else "no answer to srvr")
    return ZooKeeperServerState(address, mode, zxid)


# -- the collector ------------------------------------------------------------------------------------


@dataclass
class _Answers:
    """One broker's answers in one refresh; None where it did not answer."""

    describe: kafka_pb2.DescribeClusterResponse | None = None
    metadata: kafka_pb2.MetadataResponse | None = None
    metrics: kafka_pb2.BrokerMetricsResponse | None = None
    groups: kafka_pb2.ListGroupsResponse | None = None

    @property
    def reachable(self) -> bool:
        return any(a is not None for a in (self.describe, self.metadata, self.metrics, self.groups))


@dataclass
class _Broker:
    host: str
    port: int
    broker_epoch: int = -1

    @property
    def address(self) -> str:
        return target(self.host, self.port)


def _result(future: grpc.Future | None) -> Any:
    """A call's answer, or None if it failed (the broker is down, slow or does not have the API)."""
    if future is None:
        return None
    try:
        return future.result()
    except (grpc.RpcError, grpc.FutureCancelledError):
        return None


class SnapshotCollector:
    """Fills a ClusterSnapshot over gRPC, every broker asked at once with a short timeout, over one
    channel per broker (ClusterMetadata's) kept across refreshes. It remembers every broker and
    group it has seen, so that one that stops answering is shown as such rather than forgotten:
    a group is dropped once its coordinator describes it as Dead."""

    def __init__(self, bootstrap_servers: str, zookeeper: Sequence[str] = (), timeout_s: float = 1.0,
                 security: ClientSecurity = PLAINTEXT) -> None:
        self._bootstrap = parse_bootstrap_servers(bootstrap_servers)
        self._cluster = ClusterMetadata(bootstrap_servers, request_timeout_ms=int(timeout_s * 1000),
                                        security=security)
        self._group_client = GroupClient(self._cluster)
        self._admin_stubs: dict[str, kafka_pb2_grpc.AdminStub] = {}
        self._timeout_s = timeout_s
        self._zookeeper = list(zookeeper)
        self._zk_pool = ThreadPoolExecutor(max_workers=len(self._zookeeper), thread_name_prefix="watch-zookeeper") \
            if self._zookeeper else None
        self._brokers: dict[int, _Broker] = {}
        self._group_ids: set[str] = set()
        self._next = 0

    def close(self) -> None:
        if self._zk_pool is not None:
            self._zk_pool.shutdown(wait=False, cancel_futures=True)
        self._cluster.close()

    def _admin(self, address: str) -> kafka_pb2_grpc.AdminStub:
        stub = self._admin_stubs.get(address)
        if stub is None:
            stub = self._admin_stubs[address] = kafka_pb2_grpc.AdminStub(self._cluster.channel(address))
        return stub

    def collect(self) -> ClusterSnapshot:
        taken_at = time.time()
        zookeeper = [self._zk_pool.submit(zookeeper_server_state, a, self._timeout_s) for a in self._zookeeper] \
            if self._zk_pool is not None else []
        answers: dict[str, _Answers] = {}
        # The known brokers (the bootstrap servers at first), then those their answers named, and
        # the bootstrap servers if none answered. A few rounds at most: each asks only new addresses.
        pending = [b.address for b in self._brokers.values()] or list(self._bootstrap)
        for _ in range(3):
            answers.update(self._ask(pending))
            self._learn(answers)
            pending = [b.address for b in self._brokers.values()]
            if not any(a.reachable for a in answers.values()):
                pending += self._bootstrap
            pending = [a for a in dict.fromkeys(pending) if a not in answers]
            if not pending:
                break
        described = _best_description(answers.values())
        registered = None if described is None else {b.broker_id: b for b in described.brokers}
        metadata = [a.metadata for a in answers.values() if a.metadata is not None]
        cached = {b.broker_id for m in metadata for b in m.brokers}
        by_address = {b.address: broker_id for broker_id, b in self._brokers.items()}
        reachable = {by_address[a] for a, got in answers.items() if got.reachable and a in by_address}
        brokers = []
        for broker_id, b in sorted(self._brokers.items()):
            alive = broker_id in registered if registered is not None else broker_id in cached if metadata else None
            got = answers.get(b.address)
            metrics = got.metrics if got is not None else None
            counters = None if metrics is None or metrics.broker_id != broker_id else BrokerCounters(
                metrics.leader_count, metrics.partition_count, metrics.under_replicated_partitions,
                metrics.offline_partitions_count, metrics.num_groups)
            brokers.append(BrokerState(broker_id, b.host, b.port, b.broker_epoch, alive,
                                       broker_id in reachable, counters))
        controller_id = described.controller_id if described is not None else None
        partitions = _merged_partitions(metadata, controller_id) if metadata else None
        # A replica on a broker never seen up (down since before the watch began), without an address.
        unseen = {r for p in partitions or () for r in p.replicas} - set(self._brokers)
        brokers += [BrokerState(r, "", 0, -1, False if registered is not None else None, False) for r in unseen]
        brokers.sort(key=lambda b: b.broker_id)
        groups = self._groups(answers, partitions)
        return ClusterSnapshot(
            taken_at=taken_at,
            cluster_id=described.cluster_id if described is not None else metadata[0].cluster_id if metadata else "",
            controller_id=controller_id,
            controller_epoch=described.controller_epoch if described is not None else None,
            brokers=tuple(brokers),
            partitions=partitions,
            groups=groups,
            zookeeper=tuple(f.result() for f in zookeeper),
        )

    def _ask(self, addresses: Sequence[str]) -> dict[str, _Answers]:
        """DescribeCluster, Metadata, BrokerMetrics and ListGroups to each address, all at once."""
        t = self._timeout_s
        calls = {}
        for address in addresses:
            admin, group = self._admin(address), self._group_client.stub(address)
            calls[address] = (
                admin.DescribeCluster.future(kafka_pb2.DescribeClusterRequest(), timeout=t),
                admin.Metadata.future(kafka_pb2.MetadataRequest(), timeout=t),
                admin.BrokerMetrics.future(kafka_pb2.BrokerMetricsRequest(), timeout=t),
                group.ListGroups.future(kafka_pb2.ListGroupsRequest(), timeout=t),
            )
        answers = {}
        for address, futures in calls.items():
            describe, metadata, metrics, groups = (_result(f) for f in futures)
            answers[address] = _Answers(
                describe if describe is not None and describe.error_code == Errors.NONE.code else None,
                metadata, metrics, groups)
        return answers

    def _learn(self, answers: Mapping[str, _Answers]) -> None:
        """Remember the brokers the answers name: registered ones (DescribeCluster, with their broker
        epoch) first, then those in a metadata cache."""
        described = _best_description(answers.values())
        for b in described.brokers if described is not None else ():
            known = self._brokers.get(b.broker_id)
            if known is None or (known.host, known.port, known.broker_epoch) != (b.host, b.port, b.broker_epoch):
                self._brokers[b.broker_id] = _Broker(b.host, b.port, b.broker_epoch)
        for got in answers.values():
            for b in got.metadata.brokers if got.metadata is not None else ():
                if b.broker_id not in self._brokers:
                    self._brokers[b.broker_id] = _Broker(b.host, b.port, b.broker_epoch)

    def _groups(self, answers: Mapping[str, _Answers], partitions: tuple[PartitionState, ...] | None
                ) -> tuple[GroupState, ...]:
        """Every group listed now or seen before: its coordinator (FindCoordinator to any broker
        that answers) and its description (DescribeGroups to the coordinator, one call per
        coordinator for all its groups)."""
        listed: dict[str, str] = {}  # group -> the address that listed it: its coordinator
        for address, got in answers.items():
            for g in got.groups.groups if got.groups is not None else ():
                listed[g.group_id] = address
        self._group_ids |= set(listed)
        group_ids = sorted(self._group_ids)
        live = [a for a, got in answers.items() if got.reachable]
        if not group_ids or not live:
            return tuple(GroupState(g, -1, None, None, error="no broker answered") for g in group_ids)
        t = self._timeout_s
        finds = {}
        for group_id in group_ids:
            self._next = (self._next + 1) % len(live)
            finds[group_id] = self._group_client.stub(live[self._next]).FindCoordinator.future(
                kafka_pb2.FindCoordinatorRequest(key=group_id), timeout=t)
        offsets_partitions = sum(1 for p in partitions or () if p.topic == OFFSETS_TOPIC)
        coordinators: dict[str, tuple[int, int | None, str | None]] = {}
        for group_id, future in finds.items():
            found = _result(future)
            partition = partition_for(group_id, offsets_partitions) if offsets_partitions else None
            if found is not None and found.error_code == Errors.NONE.code:
                coordinators[group_id] = (found.node_id, found.partition, target(found.host, found.port))
            else:
                coordinators[group_id] = (-1, partition, listed.get(group_id))
        by_address: dict[str, list[str]] = {}
        for group_id, (_, _, address) in coordinators.items():
            if address is not None:
                by_address.setdefault(address, []).append(group_id)
        describes = {address: self._group_client.stub(address).DescribeGroups.future(
            kafka_pb2.DescribeGroupsRequest(groups=ids), timeout=t) for address, ids in by_address.items()}
        described: dict[str, kafka_pb2.DescribedGroup] = {}
        failures: dict[str, str] = {}
        for address, future in describes.items():
            response = _result(future)
            if response is None:
                for group_id in by_address[address]:
                    failures[group_id] = f"DescribeGroups to {address} got no answer"
                continue
            for g in response.groups:
                if g.error_code == Errors.NONE.code:
                    described[g.group_id] = g
                else:
                    failures[g.group_id] = f"DescribeGroups: {Errors.for_code(g.error_code).name}"
        groups = []
        for group_id in group_ids:
            coordinator, partition, _ = coordinators[group_id]
            g = described.get(group_id)
            if g is None:
                error = failures.get(group_id) or "no coordinator found"
                groups.append(GroupState(group_id, coordinator, partition, None, error=error))
                continue
            if g.group_state == "Dead":  # it no longer exists
                self._group_ids.discard(group_id)
                continue
            members = tuple(GroupMember(m.member_id, m.client_id, m.host, m.group_instance_id, tuple(m.assignment))
                            for m in describe_members(g))
            groups.append(GroupState(group_id, g.coordinator_id, partition, g.group_state, g.protocol_type,
                                     g.protocol_data, g.generation_id, g.leader, members))
        return tuple(groups)


def _best_description(answers: Iterable[_Answers]) -> kafka_pb2.DescribeClusterResponse | None:
    """Of the brokers' DescribeCluster answers (each read from ZooKeeper), the newest."""
    described = [a.describe for a in answers if a.describe is not None]
    return max(described, key=lambda d: (d.controller_epoch, d.controller_id >= 0), default=None)


def _merged_partitions(answers: Sequence[kafka_pb2.MetadataResponse], controller_id: int | None
                       ) -> tuple[PartitionState, ...]:
    """Every partition of every broker's metadata cache, each as the cache with the highest
    leader epoch has it (a broker may lag behind the controller's UpdateMetadata); on a tie, the
    controller's own cache."""
    ranked = sorted(answers, key=lambda m: m.responding_broker_id == controller_id, reverse=True)
    merged: dict[tuple[str, int], PartitionState] = {}
    for m in ranked:
        for topic in m.topics:
            for p in topic.partitions:
                known = merged.get((topic.name, p.partition))
                if known is None or p.leader_epoch > known.leader_epoch:
                    merged[(topic.name, p.partition)] = PartitionState(
                        topic.name, p.partition, p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr),
                        tuple(p.offline_replicas))
    return tuple(merged[k] for k in sorted(merged))
