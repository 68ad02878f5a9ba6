"""The rich rendering of `minikafka watch`: `render` (the live view of a snapshot, with the
election log and the values that changed highlighted), `snapshot_json`, and `run`, the refresh
loop (the live view, or one JSON object a line).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from client.watch.collector import SnapshotCollector
from client.watch.elections import (
    FADE_S,
    FRESH_S,
    Cell,
    Election,
    ElectionEvent,
    Watch,
    shown_side,
)
from client.watch.snapshot import (
    NO_LEADER,
    ClusterSnapshot,
    PartitionState,
    iso_time,
    known_broker,
    short_member_id,
    shown_partitions,
)
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.group import OFFSETS_TOPIC

# What an event's epoch counts, in each election's words.
EPOCH_NAMES = {
    Election.CONTROLLER: "epoch",
    Election.PARTITION_LEADER: "leader epoch",
    Election.GROUP_COORDINATOR: "leader epoch",
    Election.GROUP_LEADER: "generation",
    Election.ZOOKEEPER_LEADER: "epoch",
}


# -- rendering ------------------------------------------------------------------------------------


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
        "taken_at": iso_time(snapshot.taken_at),
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
            log.add_row(_clock(e.at), e.election.value, e.subject, f"{shown_side(e.old)} → {shown_side(e.new)}",
                        epoch, e.why, style=style)
        parts.append(log if events else Text("Elections: none seen yet", style="dim"))

    groups = _table("GROUP", "COORDINATOR", "STATE", "GENERATION", "LEADER", "MEMBER", "CLIENT", "ASSIGNMENT")
    for g in snapshot.groups:
        dim = "dim" if g.stale else ""
        where = f" ({OFFSETS_TOPIC}-{g.offsets_partition})" if g.offsets_partition is not None else ""
        head = [g.group_id, styled(f"{known_broker(g.coordinator) or 'none'}{where}",
                                   ("group", g.group_id, "coordinator"), dim),
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
                           styled(known_broker(p.leader) or "none", (*key, "leader"), "red" if p.leader < 0 else ""),
                           styled(p.leader_epoch, (*key, "leader_epoch")), styled(_ids(p.replicas), (*key, "replicas")),
                           styled(_ids(p.isr), (*key, "isr"), "yellow" if len(p.isr) < len(p.replicas) else ""),
                           Text(_ids(p.offline_replicas) or "-", style="red" if p.offline_replicas else ""))
    parts.append(partitions if snapshot.partitions else Text("Partitions: none", style="dim"))
    if folded:
        parts.append(Text(f"{OFFSETS_TOPIC}: {folded} partitions that coordinate no known group not shown "
                          "(--internal shows them)", style="dim"))
    return Group(*parts)


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


def _none_if_negative(value: int | None) -> int | None:
    return None if value is None or value < 0 else value


def _ids(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _listed(names: Sequence[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%H:%M:%S")


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
