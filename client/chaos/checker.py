"""The checker: what Kafka promises, tested over a run's history and the brokers' final logs.
Pure: it takes plain data (the events, the records each replica holds) and gives a verdict per
invariant with the evidence, so a violation can be planted in a unit test.

The invariants, in Kafka's terms:
- acked-not-lost: a record acknowledged with acks=all (min.insync.replicas=2) is in the final log
  of its partition, at the offset it was acknowledged with.
- acked-consumed: every acknowledged record is read by the consumer group and by the standalone
  consumer (at least once).
- no-duplicates: the idempotent producer's retries write each record once (each number once in
  the log).
- replicas-identical: below the high watermark every in-sync replica holds the same records with
  the same leader epochs (KIP-101 truncation, no divergence).
- one-controller-per-epoch: at most one broker was elected controller in any controller epoch,
  and elections' epochs only grow.
- leader-epochs-grow: along every replica's log the leader epoch stamped on the batches never
  decreases (no write accepted from a fenced leader).
- one-owner-per-generation: no partition was assigned to two members in one generation, and no
  member returned records of a partition it did not own at the time.
- assignment-covers-partitions: every Stable generation's assignment, as its coordinator
  described it, covers every partition of the topic.
- converged: within the bound after the heal every partition has a leader and its whole ISR,
  the group is Stable with every member, and every acknowledged record was consumed.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from client.chaos import history as h
from client.chaos.history import Event

EVIDENCE_SHOWN = 5  # lines of evidence per invariant; the count says how many there were


@dataclass(frozen=True)
class LogRecord:
    offset: int
    leader_epoch: int
    n: int | None  # the workload's number, None for a value that is not one


@dataclass(frozen=True)
class ControllerElection:
    at: str  # the broker log's time stamp
    broker: int
    epoch: int


@dataclass
class FinalState:
    """What the cluster holds once healed: per partition, each replica's records and the leader's
    high watermark; the controller elections the brokers logged; the liveness measures."""

    partitions: int
    logs: dict[int, dict[int, list[LogRecord]]]  # partition -> broker -> records
    high_watermarks: dict[int, int]
    leaders: dict[int, int]  # partition -> leader after the heal, -1 for none
    isr: dict[int, tuple[int, ...]] = field(default_factory=dict)
    controller_elections: list[ControllerElection] = field(default_factory=list)
    converged_s: float | None = 0.0  # heal to everything whole and consumed; None: not within the bound
    bound_s: float = 0.0
    not_converged: list[str] = field(default_factory=list)  # what was still missing at the bound


@dataclass(frozen=True)
class Verdict:
    invariant: str
    held: bool
    summary: str
    evidence: tuple[str, ...] = ()
    count: int = 0  # how many violations (the evidence shows the first few)


def _verdict(invariant: str, problems: Sequence[str], held_summary: str) -> Verdict:
    if not problems:
        return Verdict(invariant, True, held_summary)
    return Verdict(invariant, False, f"{len(problems)} violation(s)", tuple(problems[:EVIDENCE_SHOWN]), len(problems))


def acked(events: Iterable[Event]) -> dict[int, tuple[int, int]]:
    """Acknowledged numbers: n -> (partition, offset)."""
    return {e["n"]: (e["partition"], e["offset"]) for e in events if e["type"] == h.ACK}


def leader_log(state: FinalState, partition: int) -> list[LogRecord]:
    """The partition's log as its leader holds it (the longest replica if it has no leader)."""
    replicas = state.logs.get(partition, {})
    leader = state.leaders.get(partition, -1)
    if leader in replicas:
        return replicas[leader]
    return max(replicas.values(), key=len, default=[])


def check_acked_not_lost(events: list[Event], state: FinalState) -> Verdict:
    by_offset = {p: {r.offset: r.n for r in leader_log(state, p)} for p in range(state.partitions)}
    problems = []
    acks = acked(events)
    for n, (partition, offset) in sorted(acks.items()):
        found = by_offset.get(partition, {}).get(offset, "missing")
        if found != n:
            where = "nothing" if found == "missing" else f"record {found}"
            problems.append(f"record {n} acknowledged at {partition}@{offset}, the final log holds {where} there")
    return _verdict("acked-not-lost", problems, f"{len(acks)} acknowledged records all in the final logs")


def consumed_by(events: Iterable[Event], source_prefix: str) -> set[int]:
    return {r[2] for e in events if e["type"] == h.POLL and e["source"].startswith(source_prefix)
            for r in e["records"] if r[2] is not None}


def check_acked_consumed(events: list[Event], state: FinalState) -> Verdict:
    acks = acked(events)
    problems = []
    for who, prefix in (("the group", "member-"), ("the standalone consumer", "reader")):
        missing = sorted(set(acks) - consumed_by(events, prefix))
        if missing:
            problems.append(f"{who} never read {len(missing)} acknowledged record(s): "
                            + ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else ""))
    return _verdict("acked-consumed", problems, f"the group and the standalone consumer read all {len(acks)}")


def check_no_duplicates(events: list[Event], state: FinalState) -> Verdict:
    counts: Counter[int] = Counter()
    where: dict[int, list[str]] = defaultdict(list)
    for p in range(state.partitions):
        for r in leader_log(state, p):
            if r.n is not None:
                counts[r.n] += 1
                where[r.n].append(f"{p}@{r.offset}")
    problems = [f"record {n} is in the log {c} times: {', '.join(where[n])}"
                for n, c in sorted(counts.items()) if c > 1]
    return _verdict("no-duplicates", problems, f"{len(counts)} records, each once")


def check_replicas_identical(events: list[Event], state: FinalState) -> Verdict:
    """Kafka's promise is for the ISR: a replica out of it may still hold a divergent tail that it
    truncates when it next fetches (KIP-101); `converged` says whether every replica got back in."""
    problems = []
    compared = 0
    for p in range(state.partitions):
        hw = state.high_watermarks.get(p, 0)
        reference = [r for r in leader_log(state, p) if r.offset < hw]
        for broker, records in sorted(state.logs.get(p, {}).items()):
            if broker not in state.isr.get(p, ()):
                continue
            below = [r for r in records if r.offset < hw]
            compared += 1
            if len(below) < len(reference):
                problems.append(f"partition {p}: in-sync replica {broker} holds {len(below)} records below the "
                                f"high watermark {hw}, the leader {len(reference)}")
            for mine, theirs in zip(below, reference, strict=False):
                if mine != theirs:
                    problems.append(f"partition {p}: replica {broker} diverges at offset {mine.offset}: {mine} "
                                    f"where the leader has {theirs}")
                    break
    return _verdict("replicas-identical", problems, f"{compared} in-sync replicas identical below the high watermark")


def check_one_controller_per_epoch(events: list[Event], state: FinalState) -> Verdict:
    problems = []
    winners: dict[int, set[int]] = defaultdict(set)
    for e in state.controller_elections:
        winners[e.epoch].add(e.broker)
    for epoch, brokers in sorted(winners.items()):
        if len(brokers) > 1:
            problems.append(f"epoch {epoch} was won by brokers {', '.join(map(str, sorted(brokers)))}")
    in_time = sorted(state.controller_elections, key=lambda e: e.at)
    for before, after in itertools.pairwise(in_time):
        if after.epoch <= before.epoch:
            problems.append(f"broker {after.broker} was elected with epoch {after.epoch} at {after.at}, after "
                            f"broker {before.broker} with epoch {before.epoch} at {before.at}")
    seen: dict[int, int] = {}
    last_epoch = -1
    for e in events:
        if e["type"] != h.OBSERVED or e.get("epoch") is None or e.get("controller", -1) < 0:
            continue
        epoch, controller = e["epoch"], e["controller"]
        if seen.setdefault(epoch, controller) != controller:
            problems.append(f"ZooKeeper named controllers {seen[epoch]} and {controller} in epoch {epoch}")
        if epoch < last_epoch:
            problems.append(f"the controller epoch went back from {last_epoch} to {epoch}")
        last_epoch = max(last_epoch, epoch)
    epochs = sorted(winners)
    span = f"epochs {epochs[0]}-{epochs[-1]}" if epochs else "no election logged"
    return _verdict("one-controller-per-epoch", problems, f"{len(state.controller_elections)} elections, {span}")


def check_leader_epochs_grow(events: list[Event], state: FinalState) -> Verdict:
    problems = []
    for p in range(state.partitions):
        for broker, records in sorted(state.logs.get(p, {}).items()):
            for before, after in itertools.pairwise(records):
                if after.leader_epoch < before.leader_epoch:
                    problems.append(f"partition {p} on broker {broker}: leader epoch {after.leader_epoch} at offset "
                                    f"{after.offset} after {before.leader_epoch} at offset {before.offset}")
                    break
    return _verdict("leader-epochs-grow", problems, "leader epochs never decrease along any replica's log")


def check_one_owner_per_generation(events: list[Event], state: FinalState) -> Verdict:
    problems = []
    owners: dict[tuple[int, int], str] = {}
    owned: dict[str, set[int]] = defaultdict(set)  # consumer -> partitions it holds now
    generations = set()
    for e in events:
        kind = e["type"]
        if kind == h.ASSIGNED:
            generations.add(e["generation"])
            owned[e["consumer"]] = set(e["partitions"])
            owner = f"{e['consumer']} ({e['member_id']})"
            for partition in e["partitions"]:
                other = owners.setdefault((e["generation"], partition), owner)
                if other != owner:
                    problems.append(f"partition {partition} assigned to {other} and {owner} in generation "
                                    f"{e['generation']}")
        elif kind in (h.REVOKED, h.LOST):
            owned[e["consumer"]] -= set(e["partitions"])
        elif kind == h.POLL and e["source"].startswith("member-"):
            strays = sorted({r[0] for r in e["records"]} - owned[e["consumer"]])
            if strays:
                problems.append(f"{e['consumer']} returned records of partition(s) {strays} it did not own")
    return _verdict("one-owner-per-generation", problems, f"{len(generations)} generations, one owner each")


def check_assignment_covers_partitions(events: list[Event], state: FinalState) -> Verdict:
    problems = []
    checked = set()
    for e in events:
        if e["type"] != h.OBSERVED or e.get("group_state") != "Stable" or not e.get("assignment"):
            continue
        generation = e["generation"]
        if generation in checked:
            continue
        checked.add(generation)
        covered = {p for partitions in e["assignment"].values() for p in partitions}
        missing = sorted(set(range(state.partitions)) - covered)
        if missing:
            problems.append(f"generation {generation} leaves partition(s) {missing} unassigned: {e['assignment']}")
    return _verdict("assignment-covers-partitions", problems, f"{len(checked)} Stable generations seen, all covering")


def check_converged(events: list[Event], state: FinalState) -> Verdict:
    """Liveness: within the bound after the heal every partition has a leader and its whole ISR,
    the group is Stable with every member, and every acknowledged record was read."""
    problems = []
    if state.converged_s is None:
        problems = [f"{missing} {state.bound_s:.0f} s after the heal" for missing in state.not_converged] \
            or [f"not converged within {state.bound_s:.0f} s of the heal"]
    took = "" if state.converged_s is None else f" in {state.converged_s:.1f} s"
    return _verdict("converged", problems, f"converged{took} (bound {state.bound_s:.0f} s)")


CHECKS = (
    check_acked_not_lost, check_acked_consumed, check_no_duplicates, check_replicas_identical,
    check_one_controller_per_epoch, check_leader_epochs_grow, check_one_owner_per_generation,
    check_assignment_covers_partitions, check_converged,
)


def check(events: list[Event], state: FinalState) -> list[Verdict]:
    return [c(events, state) for c in CHECKS]
