"""The elections between two snapshots of `minikafka watch`, and the view's state over time.

`remembered` carries over from the last snapshot what a refresh could not see (a group whose
coordinator is moving, a controller nobody answered for), so that an election is told once, old
leader to new, and not as a disappearance and an appearance. `diff_elections` names the elections
between two snapshots (controller, partition leaders, group coordinators, group leaders, the
ZooKeeper leader), each with its cause; `Watch` keeps the known state, the bounded election log
and when each value last changed.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from client.watch.snapshot import (
    NO_LEADER,
    ClusterSnapshot,
    GroupState,
    PartitionState,
    ZooKeeperServerState,
    iso_time,
    known_broker,
    short_member_id,
    shown_partitions,
)
from minikafka_protocol.group import OFFSETS_TOPIC

LOG_SIZE = 20
# A changed value is shown reversed for FRESH_S, then bold until FADE_S.
FRESH_S = 3.0
FADE_S = 10.0
# More partition leader elections than this in one topic in one refresh are told as one line.
FOLD_OVER = 3


class Election(Enum):
    CONTROLLER = "controller"
    PARTITION_LEADER = "partition leader"
    GROUP_COORDINATOR = "group coordinator"
    GROUP_LEADER = "group leader"
    ZOOKEEPER_LEADER = "zookeeper leader"


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
        return {"at": iso_time(self.at), "election": self.election.value, "subject": self.subject, "old": self.old,
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
    return [ElectionEvent(now, Election.CONTROLLER, "cluster", known_broker(was), known_broker(now_id),
                          new.controller_epoch, why)]


def _partition_leader_elections(old: ClusterSnapshot, new: ClusterSnapshot, now: float) -> list[ElectionEvent]:
    if old.partitions is None or new.partitions is None:
        return []
    before = {(p.topic, p.partition): p for p in old.partitions}
    events = []
    for p in new.partitions:
        o = before.get((p.topic, p.partition))
        if o is None or o.leader == p.leader:
            continue
        events.append(ElectionEvent(now, Election.PARTITION_LEADER, p.name, known_broker(o.leader),
                                    known_broker(p.leader), p.leader_epoch, partition_election_cause(o, p, old, new)))
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
    olds = sorted({shown_side(e.old) for e in elections})
    news = sorted({shown_side(e.new) for e in elections})
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


def _leader_epoch(snapshot: ClusterSnapshot, topic: str, partition: int | None) -> int | None:
    return next((p.leader_epoch for p in snapshot.partitions or ()
                 if p.topic == topic and p.partition == partition), None)


def shown_side(value: object) -> str:
    """One side of an election (a broker, a member, a server), as the view shows it."""
    if value is None:
        return "none"
    return short_member_id(value) if isinstance(value, str) else str(value)
