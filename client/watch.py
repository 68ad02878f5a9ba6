"""`minikafka watch`: the four elections of a running cluster, live.

Three layers, as elsewhere in the client:

- Plain data and pure decisions. `ClusterSnapshot` is what one refresh saw. `remembered` carries
  over from the last snapshot what a refresh could not see (a group whose coordinator is moving, a
  controller nobody answered for), so that an election is told once, old leader to new, and not as
  a disappearance and an appearance. `diff_elections` names the elections between two snapshots,
  each with its cause; `Watch` keeps the known state, the bounded election log and when each value
  last changed.
- Rendering: `snapshot_json` and `render` (a rich renderable), pure given data.
- `SnapshotCollector`: one refresh over gRPC. Every broker is asked at once (DescribeCluster,
  Metadata, BrokerMetrics, ListGroups), then FindCoordinator and DescribeGroups for each group,
  with short timeouts, over one channel per broker kept across refreshes; ZooKeeper servers are
  asked `srvr`.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import grpc
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from broker.grpc_options import target
from client.admin import parse_bootstrap_servers
from client.cluster import ClusterMetadata
from client.group.wire import GroupClient, describe_members
from client.tooling.zookeeper import four_letter_word
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC, partition_for
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

NO_LEADER = -1
LOG_SIZE = 20
# A changed value is shown reversed for FRESH_S, then bold until FADE_S.
FRESH_S = 3.0
FADE_S = 10.0
# More partition leader elections than this in one topic in one refresh are told as one line.
FOLD_OVER = 3
MEMBER_ID = re.compile(r"^(.*)-([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- plain data -----------------------------------------------------------------------------------


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


class Election(Enum):
    CONTROLLER = "controller"
    PARTITION_LEADER = "partition leader"
    GROUP_COORDINATOR = "group coordinator"
    GROUP_LEADER = "group leader"
    ZOOKEEPER_LEADER = "zookeeper leader"


# What an event's epoch counts, in each election's words.
EPOCH_NAMES = {
    Election.CONTROLLER: "epoch",
    Election.PARTITION_LEADER: "leader epoch",
    Election.GROUP_COORDINATOR: "leader epoch",
    Election.GROUP_LEADER: "generation",
    Election.ZOOKEEPER_LEADER: "epoch",
}


@dataclass(frozen=True)
class ElectionEvent:
    at: float  # wall clock
    election: Election
    subject: str  # "cluster", a partition, a group, "ensemble"
    old: int | str | None  # a broker id, a member id, a server; None: none
    new: int | str | None
    epoch: int | None  # the new controller epoch, leader epoch, generation or ZooKeeper epoch
    why: str

    def to_json(self) -> dict[str, object]:
        return {"at": _iso(self.at), "election": self.election.value, "subject": self.subject, "old": self.old,
                "new": self.new, "epoch": self.epoch, "why": self.why}


# -- what is known ----------------------------------------------------------------------------------


def remembered(old: ClusterSnapshot, new: ClusterSnapshot) -> ClusterSnapshot:
    """`new`, with what it could not see carried over from `old` (marked stale where shown)."""
    changes: dict[str, Any] = {}
    if new.controller_id is None and old.controller_id is not None:
        changes.update(controller_id=old.controller_id, controller_epoch=old.controller_epoch)
    if new.partitions is None:
        changes["partitions"] = old.partitions
    if not new.cluster_id:
        changes["cluster_id"] = old.cluster_id
    old_brokers = {b.broker_id: b for b in old.brokers}
    if any(b.alive is None for b in new.brokers):
        changes["brokers"] = tuple(
            replace(b, alive=old_brokers[b.broker_id].alive) if b.alive is None and b.broker_id in old_brokers else b
            for b in new.brokers
        )
    old_groups = {g.group_id: g for g in old.groups}
    groups = []
    for g in new.groups:
        before = old_groups.get(g.group_id)
        if g.state is None and before is not None and before.state is not None:
            g = replace(before, coordinator=g.coordinator if g.coordinator >= 0 else before.coordinator,
                        offsets_partition=before.offsets_partition if g.offsets_partition is None
                        else g.offsets_partition, error=g.error, stale=True)
        groups.append(g)
    changes["groups"] = tuple(groups)
    old_servers = {z.address: z for z in old.zookeeper}
    servers = []
    for z in new.zookeeper:
        before = old_servers.get(z.address)
        if z.mode is None and before is not None and before.mode is not None:
            z = replace(before, error=z.error, stale=True)
        servers.append(z)
    changes["zookeeper"] = tuple(servers)
    return replace(new, **changes)


# -- the elections between two snapshots --------------------------------------------------------------


def diff_elections(old: ClusterSnapshot, new: ClusterSnapshot, now: float) -> list[ElectionEvent]:
    """The elections that happened between `old` and `new`, each with its cause. Only what both
    snapshots know is compared: a value nobody answered for is no election."""
    return [
        *_controller_elections(old, new, now),
        *_partition_leader_elections(old, new, now),
        *_coordinator_moves(old, new, now),
        *_group_leader_elections(old, new, now),
        *_zookeeper_elections(old, new, now),
    ]


def departure(broker_id: int, old: ClusterSnapshot, new: ClusterSnapshot) -> str | None:
    """How a broker left between two snapshots: "is gone" (no longer registered), "restarted"
    (registered again: a new broker epoch), or None if it is still there."""
    before, after = old.broker(broker_id), new.broker(broker_id)
    if after is None or after.alive is False:
        return "is gone"
    if before is not None and before.broker_epoch >= 0 and after.broker_epoch >= 0 \
            and before.broker_epoch != after.broker_epoch:
        return "restarted"
    return None


def _controller_elections(old: ClusterSnapshot, new: ClusterSnapshot, now: float) -> list[ElectionEvent]:
    was, now_id = old.controller_id, new.controller_id
    if was is None or now_id is None or (was, old.controller_epoch) == (now_id, new.controller_epoch):
        return []
    if was == now_id == NO_LEADER:
        return []
    if was == NO_LEADER:
        why = "there was no controller"
    elif was == now_id:
        gone = departure(was, old, new)
        why = f"broker {was} registered again and won" if gone == "restarted" else f"controller {was} re-elected"
    else:
        gone = departure(was, old, new)
        why = f"controller {was} {gone}" if gone else f"controller {was} resigned"
    return [ElectionEvent(now, Election.CONTROLLER, "cluster", _broker(was), _broker(now_id), new.controller_epoch,
                          why)]


def _partition_leader_elections(old: ClusterSnapshot, new: ClusterSnapshot, now: float) -> list[ElectionEvent]:
    if old.partitions is None or new.partitions is None:
        return []
    before = {(p.topic, p.partition): p for p in old.partitions}
    events = []
    for p in new.partitions:
        o = before.get((p.topic, p.partition))
        if o is None or o.leader == p.leader:
            continue
        events.append(ElectionEvent(now, Election.PARTITION_LEADER, p.name, _broker(o.leader), _broker(p.leader),
                                    p.leader_epoch, partition_election_cause(o, p, old, new)))
    return events


def partition_election_cause(o: PartitionState, p: PartitionState, old: ClusterSnapshot,
                             new: ClusterSnapshot) -> str:
    """Why a partition's leader changed from `o.leader` to `p.leader`."""
    gone = departure(o.leader, old, new) if o.leader != NO_LEADER else None
    if p.leader == NO_LEADER:
        return "went offline" + (f": leader {o.leader} {gone}" if gone else "")
    if o.leader == NO_LEADER:
        why = "back online"
    elif gone:
        why = f"leader {o.leader} {gone}"
    elif o.leader not in p.replicas:
        why = f"reassignment: {o.leader} is no longer a replica"
    elif o.leader not in p.isr:  # a controlled shutdown takes the broker out of the ISR, as in Kafka
        why = f"controlled shutdown of {o.leader}"
    elif p.leader == p.replicas[0]:
        why = f"preferred replica {p.leader} back"
    else:
        why = "controlled shutdown or reassignment"
    # Only an election forced by a lost leader can be unclean (preferred and controlled shutdown
    # elections choose from the ISR), and the ISR it chose from is the one seen last.
    if (gone or o.leader == NO_LEADER) and o.isr and p.leader not in o.isr:
        why += f"; unclean: {p.leader} was not in the ISR"
    return why


def _coordinator_moves(old: ClusterSnapshot, new: ClusterSnapshot, now: float) -> list[ElectionEvent]:
    before = {g.group_id: g for g in old.groups}
    events = []
    for g in new.groups:
        o = before.get(g.group_id)
        if o is None or o.coordinator < 0 or g.coordinator < 0 or o.coordinator == g.coordinator:
            continue
        partition = g.offsets_partition if g.offsets_partition is not None else o.offsets_partition
        where = f"{OFFSETS_TOPIC}-{partition}" if partition is not None else OFFSETS_TOPIC
        gone = departure(o.coordinator, old, new)
        why = f"leader of {where} moved" + (f": broker {o.coordinator} {gone}" if gone else "")
        epoch = _leader_epoch(new, OFFSETS_TOPIC, partition)
        events.append(ElectionEvent(now, Election.GROUP_COORDINATOR, g.group_id, o.coordinator, g.coordinator,
                                    epoch, why))
    return events


def _group_leader_elections(old: ClusterSnapshot, new: ClusterSnapshot, now: float) -> list[ElectionEvent]:
    before = {g.group_id: g for g in old.groups}
    events = []
    for g in new.groups:
        if g.state is None:
            continue
        o = before.get(g.group_id)
        if o is None:
            if g.leader:
                why = "a new group" if g.generation <= 1 else "first seen"
                events.append(ElectionEvent(now, Election.GROUP_LEADER, g.group_id, None, g.leader, g.generation,
                                            why))
            continue
        if o.state is None or (o.generation, o.leader) == (g.generation, g.leader):
            continue
        events.append(ElectionEvent(now, Election.GROUP_LEADER, g.group_id, o.leader or None, g.leader or None,
                                    g.generation, group_election_cause(o, g)))
    return events


def group_election_cause(o: GroupState, g: GroupState) -> str:
    """Why a group has a new generation (and maybe a new leader)."""
    old_ids = [m.member_id for m in o.members]
    new_ids = [m.member_id for m in g.members]
    if o.leader and o.leader not in new_ids:
        why = f"leader {short_member_id(o.leader)} left or died"
        return why + ("; the group is empty" if not new_ids else "")
    joined = [short_member_id(m) for m in new_ids if m not in old_ids]
    left = [short_member_id(m) for m in old_ids if m not in new_ids]
    details = [f"{', '.join(joined)} joined"] if joined else []
    details += [f"{', '.join(left)} left"] if left else []
    if not details and o.coordinator >= 0 and g.coordinator >= 0 and o.coordinator != g.coordinator:
        details = [f"the members rejoined at coordinator {g.coordinator}"]
    return "rebalance" + (f": {'; '.join(details)}" if details else "")


def zookeeper_leader(snapshot: ClusterSnapshot) -> ZooKeeperServerState | None:
    """The ensemble's leader (or the standalone server), as seen now if any is, else as last seen."""
    leaders = [z for z in snapshot.zookeeper if z.mode in ("leader", "standalone")]
    fresh = [z for z in leaders if not z.stale]
    return (fresh or leaders or [None])[0]


def _zookeeper_elections(old: ClusterSnapshot, new: ClusterSnapshot, now: float) -> list[ElectionEvent]:
    o, z = zookeeper_leader(old), zookeeper_leader(new)
    if o is None or z is None or z.stale or (o.address, o.epoch) == (z.address, z.epoch):
        return []
    if o.address == z.address:
        if o.epoch is None or z.epoch is None or z.epoch <= o.epoch:
            return []
        why = f"{o.address} re-elected"
    else:
        was = next((s for s in new.zookeeper if s.address == o.address), None)
        why = f"leader {o.address} is gone" if was is None or was.stale or was.mode is None \
            else f"leader {o.address} lost its quorum"
    return [ElectionEvent(now, Election.ZOOKEEPER_LEADER, "ensemble", o.address, z.address, z.epoch, why)]


def fold_partition_elections(events: Sequence[ElectionEvent], shown: Callable[[str, int], bool]
                             ) -> list[ElectionEvent]:
    """The events for the log: the partition leader elections of a topic's partitions that are not
    shown (the folded internal topic) told as one line, and those of a topic with more than
    FOLD_OVER of them in one refresh too."""
    keyed: list[tuple[ElectionEvent, tuple[str, bool] | None]] = []
    buckets: dict[tuple[str, bool], list[ElectionEvent]] = {}
    for e in events:
        key = None
        if e.election is Election.PARTITION_LEADER:
            topic, _, partition = e.subject.rpartition("-")
            key = (topic, shown(topic, int(partition)))
            buckets.setdefault(key, []).append(e)
        keyed.append((e, key))
    folded = {key: _folded(key[0], elections, key[1]) for key, elections in buckets.items()
              if not key[1] or len(elections) > FOLD_OVER}
    result = []
    told: set[tuple[str, bool]] = set()
    for e, key in keyed:
        if key is None or key not in folded:
            result.append(e)
        elif key not in told:
            told.add(key)
            result.append(folded[key])
    return result


def _folded(topic: str, elections: Sequence[ElectionEvent], shown: bool) -> ElectionEvent:
    olds = sorted({_shown(e.old) for e in elections})
    news = sorted({_shown(e.new) for e in elections})
    whys = Counter(e.why for e in elections)
    return ElectionEvent(
        elections[0].at, Election.PARTITION_LEADER,
        f"{topic} ({len(elections)} partitions{'' if shown else ' not shown'})",
        ",".join(olds), ",".join(news), None, "; ".join(why for why, _ in whys.most_common()),
    )


# -- the view's state over time -------------------------------------------------------------------------

Cell = tuple[object, ...]


def cells(snapshot: ClusterSnapshot) -> dict[Cell, object]:
    """Every value the view highlights when it changes, by where it is shown."""
    values: dict[Cell, object] = {("controller",): (snapshot.controller_id, snapshot.controller_epoch)}
    for b in snapshot.brokers:
        values[("broker", b.broker_id)] = (b.alive, b.reachable)
    for p in snapshot.partitions or ():
        values[("partition", p.topic, p.partition, "leader")] = p.leader
        values[("partition", p.topic, p.partition, "leader_epoch")] = p.leader_epoch
        values[("partition", p.topic, p.partition, "isr")] = p.isr
        values[("partition", p.topic, p.partition, "replicas")] = p.replicas
    for g in snapshot.groups:
        values[("group", g.group_id, "coordinator")] = g.coordinator
        values[("group", g.group_id, "state")] = g.state
        values[("group", g.group_id, "generation")] = g.generation
        values[("group", g.group_id, "leader")] = g.leader
        for m in g.members:
            values[("group", g.group_id, "member", m.member_id)] = m.assignment
    for z in snapshot.zookeeper:
        values[("zookeeper", z.address)] = (z.mode, z.epoch)
    return values


class Watch:
    """The view's state, fed one snapshot a refresh by the one thread that refreshes: what is
    known, the election log (newest last, bounded) and when each shown value last changed."""

    def __init__(self, log_size: int = LOG_SIZE, show_internal: bool = False) -> None:
        self.known: ClusterSnapshot | None = None
        self.log: deque[ElectionEvent] = deque(maxlen=log_size)
        self.changed: dict[Cell, float] = {}
        self.show_internal = show_internal

    def observe(self, snapshot: ClusterSnapshot, now: float) -> list[ElectionEvent]:
        """Take a refresh in; the elections it shows (all of them, unfolded)."""
        if self.known is None:
            self.known = snapshot
            return []
        known = remembered(self.known, snapshot)
        events = diff_elections(self.known, known, now)
        before, after = cells(self.known), cells(known)
        for cell, value in after.items():
            if cell not in before or before[cell] != value:  # new ones too: a new member, topic or group
                self.changed[cell] = now
        self.changed = {c: t for c, t in self.changed.items() if c in after and now - t < FADE_S}
        self.known = known
        shown = shown_partitions(known, self.show_internal)
        self.log.extend(fold_partition_elections(events, lambda t, p: (t, p) in shown))
        return events


# -- rendering ------------------------------------------------------------------------------------


def shown_partitions(snapshot: ClusterSnapshot, show_internal: bool) -> set[tuple[str, int]]:
    """The partitions the view lists: __consumer_offsets is folded to the partitions that coordinate
    a known group and those offline, unless show_internal."""
    coordinating = {g.offsets_partition for g in snapshot.groups}
    return {(p.topic, p.partition) for p in snapshot.partitions or ()
            if show_internal or p.topic != OFFSETS_TOPIC or p.partition in coordinating or p.leader == NO_LEADER}


def status_lines(snapshot: ClusterSnapshot) -> list[str]:
    """One line for each thing that is wrong or unknown; none when all is well."""
    lines = []
    if snapshot.controller_id is None:
        lines.append("controller unknown: no broker answered DescribeCluster")
    elif snapshot.controller_id == NO_LEADER:
        lines.append("no controller")
    for b in snapshot.brokers:
        if not b.reachable:
            lines.append(f"broker {b.broker_id} unreachable" + (", not registered" if b.alive is False else ""))
        elif b.alive is False:
            lines.append(f"broker {b.broker_id} is not registered in ZooKeeper")
    if snapshot.partitions is None:
        lines.append("partitions unknown: no broker answered Metadata")
    else:
        offline = [p.name for p in snapshot.partitions if p.leader == NO_LEADER]
        if offline:
            lines.append(f"{len(offline)} partitions offline: " + _listed(offline))
    for g in snapshot.groups:
        if g.error:
            lines.append(f"group {g.group_id}: {g.error}")
    for z in snapshot.zookeeper:
        if z.error:
            lines.append(f"zookeeper {z.address}: {z.error}")
    return lines


def snapshot_json(snapshot: ClusterSnapshot, show_internal: bool = False,
                  events: Iterable[ElectionEvent] = ()) -> dict[str, object]:
    shown = shown_partitions(snapshot, show_internal)
    partitions = sorted(snapshot.partitions or (), key=_partition_order)
    return {
        "taken_at": _iso(snapshot.taken_at),
        "cluster_id": snapshot.cluster_id or None,
        "controller": {"id": _none_if_negative(snapshot.controller_id), "epoch": snapshot.controller_epoch},
        "brokers": [
            {"id": b.broker_id, "host": b.host or None, "port": b.port or None,
             "broker_epoch": _none_if_negative(b.broker_epoch),
             "alive": b.alive, "reachable": b.reachable, "controller": b.broker_id == snapshot.controller_id,
             "metrics": None if b.counters is None else {
                 "leader_count": b.counters.leader_count, "partition_count": b.counters.partition_count,
                 "under_replicated_partitions": b.counters.under_replicated_partitions,
                 "offline_partitions_count": b.counters.offline_partitions_count,
                 "num_groups": b.counters.num_groups}}
            for b in snapshot.brokers
        ],
        "partitions": None if snapshot.partitions is None else [
            {"topic": p.topic, "partition": p.partition, "leader": _none_if_negative(p.leader),
             "leader_epoch": p.leader_epoch, "replicas": list(p.replicas), "isr": list(p.isr),
             "offline_replicas": list(p.offline_replicas)}
            for p in partitions if (p.topic, p.partition) in shown
        ],
        "internal_partitions_folded": sum(1 for p in partitions if (p.topic, p.partition) not in shown),
        "groups": [
            {"group": g.group_id, "coordinator": _none_if_negative(g.coordinator),
             "offsets_partition": g.offsets_partition, "state": g.state, "protocol_type": g.protocol_type or None,
             "assignor": g.assignor or None, "generation": g.generation if g.state is not None else None,
             "leader": g.leader or None, "error": g.error, "stale": g.stale,
             "members": [
                 {"member_id": m.member_id, "client_id": m.client_id, "host": m.host,
                  "group_instance_id": m.group_instance_id, "leader": m.member_id == g.leader,
                  "assignment": [[tp.topic, tp.partition] for tp in m.assignment]}
                 for m in g.members
             ]}
            for g in snapshot.groups
        ],
        "zookeeper": [
            {"server": z.address, "mode": z.mode, "epoch": z.epoch,
             "zxid": None if z.zxid is None else f"0x{z.zxid:x}", "error": z.error, "stale": z.stale}
            for z in snapshot.zookeeper
        ],
        "status": status_lines(snapshot),
        "events": [e.to_json() for e in events],
    }


def render(snapshot: ClusterSnapshot, *, now: float, events: Sequence[ElectionEvent] | None = None,
           changed: Mapping[Cell, float] | None = None, show_internal: bool = False,
           interval_s: float | None = None) -> RenderableType:
    """The view of a snapshot: controller, brokers, ZooKeeper, groups, partitions, and the
    election log when `events` is given. Values changed at `changed[cell]` are highlighted,
    fading over FADE_S."""
    changed = changed or {}

    def styled(value: object, cell: Cell, style: str = "") -> Text:
        at = changed.get(cell)
        if at is not None and now - at < FRESH_S:
            style = "bold reverse"
        elif at is not None and now - at < FADE_S:
            style = "bold"
        return Text(str(value), style=style)

    parts: list[RenderableType] = []
    header = Text()
    header.append("minikafka watch", style="bold")
    if snapshot.cluster_id:
        header.append(f"  cluster {snapshot.cluster_id}")
    header.append(f"  {_clock(snapshot.taken_at)}")
    if interval_s is not None:
        header.append(f"  every {interval_s:g} s, Ctrl-C quits", style="dim")
    parts.append(header)
    controller = Text("Controller: ", style="bold")
    if snapshot.controller_id is None:
        controller.append("unknown", style="yellow")
    elif snapshot.controller_id == NO_LEADER:
        controller.append_text(styled(f"none (last epoch {snapshot.controller_epoch})", ("controller",), "red"))
    else:
        controller.append_text(styled(f"broker {snapshot.controller_id} (epoch {snapshot.controller_epoch})",
                                      ("controller",)))
    parts.append(controller)
    problems = status_lines(snapshot)
    parts.append(Text("Status: " + ("; ".join(problems) if problems else "ok"),
                      style="yellow" if problems else "green"))

    brokers = _table("BROKER", "ADDRESS", "STATE", "CONTROLLER", "LEADERS", "PARTITIONS", "UNDER-REPLICATED",
                     "GROUPS")
    for b in snapshot.brokers:
        state, style = (("up", "green") if b.reachable and b.alive is not False else
                        ("not registered", "yellow") if b.reachable else
                        ("down", "red") if b.alive is False else ("unreachable", "red"))
        c = b.counters
        brokers.add_row(str(b.broker_id), b.address, styled(state, ("broker", b.broker_id), style),
                        "*" if b.broker_id == snapshot.controller_id else "",
                        *(("-",) * 4 if c is None else (str(c.leader_count), str(c.partition_count),
                                                         str(c.under_replicated_partitions), str(c.num_groups))))
    parts.append(brokers)

    if snapshot.zookeeper:
        servers = _table("ZOOKEEPER", "MODE", "EPOCH")
        for z in snapshot.zookeeper:
            mode = f"unreachable (was {z.mode})" if z.stale else z.mode or "unreachable"
            servers.add_row(z.address, styled(mode, ("zookeeper", z.address), "dim" if z.stale else ""),
                            _dash(z.epoch))
        parts.append(servers)

    if events is not None:
        log = _table("TIME", "ELECTION", "SUBJECT", "OLD → NEW", "EPOCH", "WHY", title="Elections")
        for e in events:
            style = "bold reverse" if now - e.at < FRESH_S else "bold" if now - e.at < FADE_S else ""
            epoch = "" if e.epoch is None else f"{EPOCH_NAMES[e.election]} {e.epoch}"
            log.add_row(_clock(e.at), e.election.value, e.subject, f"{_shown(e.old)} → {_shown(e.new)}", epoch, e.why,
                        style=style)
        parts.append(log if events else Text("Elections: none seen yet", style="dim"))

    groups = _table("GROUP", "COORDINATOR", "STATE", "GENERATION", "LEADER", "MEMBER", "CLIENT", "ASSIGNMENT")
    for g in snapshot.groups:
        dim = "dim" if g.stale else ""
        where = f" ({OFFSETS_TOPIC}-{g.offsets_partition})" if g.offsets_partition is not None else ""
        head = [g.group_id, styled(f"{_broker(g.coordinator) or 'none'}{where}", ("group", g.group_id, "coordinator"),
                                   dim),
                styled(g.state or "unknown", ("group", g.group_id, "state"), dim),
                styled(_dash(g.generation if g.state is not None else None), ("group", g.group_id, "generation"), dim),
                styled(short_member_id(g.leader) or "-", ("group", g.group_id, "leader"), dim)]
        if not g.members:
            groups.add_row(*head, "-", "-", "-")
        for i, m in enumerate(g.members):
            groups.add_row(*(head if i == 0 else [""] * len(head)),
                           short_member_id(m.member_id) + (" *" if m.member_id == g.leader else ""), m.client_id,
                           styled(_assignment(m.assignment), ("group", g.group_id, "member", m.member_id), dim))
    parts.append(groups if snapshot.groups else Text("Groups: none", style="dim"))

    shown = shown_partitions(snapshot, show_internal)
    partitions = _table("TOPIC", "PARTITION", "LEADER", "LEADER EPOCH", "REPLICAS", "ISR", "OFFLINE")
    folded = 0
    for p in sorted(snapshot.partitions or (), key=_partition_order):
        if (p.topic, p.partition) not in shown:
            folded += 1
            continue
        key = ("partition", p.topic, p.partition)
        partitions.add_row(p.topic, str(p.partition),
                           styled(_broker(p.leader) or "none", (*key, "leader"), "red" if p.leader < 0 else ""),
                           styled(p.leader_epoch, (*key, "leader_epoch")), styled(_ids(p.replicas), (*key, "replicas")),
                           styled(_ids(p.isr), (*key, "isr"), "yellow" if len(p.isr) < len(p.replicas) else ""),
                           Text(_ids(p.offline_replicas) or "-", style="red" if p.offline_replicas else ""))
    parts.append(partitions if snapshot.partitions else Text("Partitions: none", style="dim"))
    if folded:
        parts.append(Text(f"{OFFSETS_TOPIC}: {folded} partitions that coordinate no known group not shown "
                          "(--internal shows them)", style="dim"))
    return Group(*parts)


def short_member_id(member_id: str) -> str:
    """A member id, `<client id or group instance id>-<uuid>` as the coordinator makes them, with
    only the uuid's first 8 digits."""
    match = MEMBER_ID.match(member_id)
    return f"{match[1]}-{match[2]}" if match else member_id


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold", title=title, title_justify="left",
                  title_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=column not in ("WHY", "ASSIGNMENT"))
    return table


def _partition_order(p: PartitionState) -> tuple[bool, str, int]:
    return p.topic.startswith("__"), p.topic, p.partition


def _assignment(partitions: Sequence[TopicPartition]) -> str:
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{t}:{_ids(sorted(ps))}" for t, ps in sorted(by_topic.items())) or "-"


def _leader_epoch(snapshot: ClusterSnapshot, topic: str, partition: int | None) -> int | None:
    return next((p.leader_epoch for p in snapshot.partitions or ()
                 if p.topic == topic and p.partition == partition), None)


def _broker(broker_id: int | None) -> int | None:
    return None if broker_id is None or broker_id < 0 else broker_id


def _none_if_negative(value: int | None) -> int | None:
    return None if value is None or value < 0 else value


def _shown(value: object) -> str:
    if value is None:
        return "none"
    return short_member_id(value) if isinstance(value, str) else str(value)


def _ids(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _listed(names: Sequence[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

    def __init__(self, bootstrap_servers: str, zookeeper: Sequence[str] = (), timeout_s: float = 1.0) -> None:
        self._bootstrap = parse_bootstrap_servers(bootstrap_servers)
        self._cluster = ClusterMetadata(bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
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


# -- running it ------------------------------------------------------------------------------------


def print_snapshot(snapshot: ClusterSnapshot, output: str, show_internal: bool, console: Console) -> None:
    """One snapshot, as text or JSON (`--once`)."""
    if output == "json":
        print(json.dumps(snapshot_json(snapshot, show_internal), indent=2), file=console.file, flush=True)
    else:
        console.print(render(snapshot, now=time.time(), show_internal=show_internal))


def run(collector: SnapshotCollector, interval_s: float, output: str, show_internal: bool,
        console: Console) -> None:
    """Refresh every `interval_s` until interrupted: the live view, or with JSON one object a line
    for each refresh, with the elections it revealed."""
    watch = Watch(show_internal=show_internal)
    live = Live(console=console, auto_refresh=False) if output == "text" else None
    with live if live is not None else contextlib.nullcontext():
        while True:
            started = time.monotonic()
            snapshot = collector.collect()
            now = time.time()
            events = watch.observe(snapshot, now)
            known = watch.known or snapshot
            if live is not None:
                live.update(render(known, now=now, events=list(watch.log), changed=watch.changed,
                                   show_internal=show_internal, interval_s=interval_s), refresh=True)
            else:
                print(json.dumps(snapshot_json(known, show_internal, events)), file=console.file, flush=True)
            time.sleep(max(0.0, started + interval_s - time.monotonic()))
