"""What one refresh of `minikafka watch` saw (`ClusterSnapshot`: brokers, partitions, groups,
ZooKeeper servers), as plain data, and what the view lists of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.grpc_options import target
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.group import OFFSETS_TOPIC

NO_LEADER = -1
MEMBER_ID = re.compile(r"^(.*)-([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class BrokerCounters:
    """A few of the broker's metrics (Admin.BrokerMetrics), by Kafka's names."""

    leader_count: int
    partition_count: int
    under_replicated_partitions: int
    offline_partitions_count: int  # reported by the active controller only, as in Kafka
    num_groups: int


@dataclass(frozen=True)
class BrokerState:
    broker_id: int
    host: str
    port: int
    broker_epoch: int  # the czxid of its registration (-1: unknown); a new one means it registered again
    alive: bool | None  # registered in ZooKeeper (/brokers/ids); None: nobody could say
    reachable: bool  # answered this refresh
    counters: BrokerCounters | None = None

    @property
    def address(self) -> str:
        return target(self.host, self.port) if self.host else "-"


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int  # -1: offline
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    group_instance_id: str | None
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class GroupState:
    group_id: str
    coordinator: int  # -1: none found
    offsets_partition: int | None  # the __consumer_offsets partition whose leader coordinates the group
    state: str | None  # Empty, PreparingRebalance, CompletingRebalance, Stable; None: not described
    protocol_type: str = ""
    assignor: str = ""
    generation: int = -1
    leader: str = ""  # the group leader's member id
    members: tuple[GroupMember, ...] = ()
    error: str | None = None  # why it could not be described
    stale: bool = False  # its description is an earlier refresh's


@dataclass(frozen=True)
class ZooKeeperServerState:
    address: str
    mode: str | None  # leader, follower, observer, standalone; None: not serving or unreachable
    zxid: int | None = None
    error: str | None = None
    stale: bool = False  # mode and zxid are an earlier refresh's

    @property
    def epoch(self) -> int | None:
        """The ensemble's epoch: the high 32 bits of a zxid, one more after each ZooKeeper leader election."""
        return None if self.zxid is None else self.zxid >> 32


@dataclass(frozen=True)
class ClusterSnapshot:
    """What one refresh saw. None marks what nobody answered for."""

    taken_at: float  # wall clock
    cluster_id: str
    controller_id: int | None  # -1: no controller
    controller_epoch: int | None
    brokers: tuple[BrokerState, ...]
    partitions: tuple[PartitionState, ...] | None
    groups: tuple[GroupState, ...] = ()
    zookeeper: tuple[ZooKeeperServerState, ...] = ()

    def broker(self, broker_id: int) -> BrokerState | None:
        return next((b for b in self.brokers if b.broker_id == broker_id), None)


def shown_partitions(snapshot: ClusterSnapshot, show_internal: bool) -> set[tuple[str, int]]:
    """The partitions the view lists: __consumer_offsets is folded to the partitions that coordinate
    a known group and those offline, unless show_internal."""
    coordinating = {g.offsets_partition for g in snapshot.groups}
    return {(p.topic, p.partition) for p in snapshot.partitions or ()
            if show_internal or p.topic != OFFSETS_TOPIC or p.partition in coordinating or p.leader == NO_LEADER}


def short_member_id(member_id: str) -> str:
    """A member id, `<client id or group instance id>-<uuid>` as the coordinator makes them, with
    only the uuid's first 8 digits."""
    match = MEMBER_ID.match(member_id)
    return f"{match[1]}-{match[2]}" if match else member_id


def known_broker(broker_id: int | None) -> int | None:
    """A broker id, None for none (-1) or unknown."""
    return None if broker_id is None or broker_id < 0 else broker_id


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
