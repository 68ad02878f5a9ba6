"""The fault schedule of a run, drawn from its seed: which fault, when, against which role, and
for how long. Pure: the same seed, duration and fault kinds give the same plan, so a seed that
found a bug reproduces it (the roles resolve to whoever holds them when the fault fires).

Fault kinds (`--faults`):
- kill: SIGKILL, restarted when its hold ends (a broker's session expires first if the hold is
  longer than the session timeout);
- pause: SIGSTOP, then SIGCONT: a zombie that wakes up believing what it believed;
- stop: a clean stop (SIGTERM: a broker's controlled shutdown, a member's LeaveGroup), restarted later;
- partition: a broker cut off the network (from ZooKeeper here; `docker network disconnect` in
  Docker), mended later;
- zookeeper: a ZooKeeper server killed (the quorum's leader), or two at once (no quorum).

Roles: the controller, the leader of one of the topic's partitions, the group's coordinator, the
consumer group's leader (a member process), and for zookeeper faults the quorum leader or two servers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FAULT_KINDS = ("kill", "pause", "stop", "partition", "zookeeper")

CONTROLLER = "controller"
LEADER = "leader"
COORDINATOR = "coordinator"
GROUP_LEADER = "group-leader"
ZK_LEADER = "zk-leader"
ZK_TWO = "zk-two"
BROKER_ROLES = (CONTROLLER, LEADER, COORDINATOR)

# Which roles each kind of fault may hit.
ROLES_BY_KIND: dict[str, tuple[str, ...]] = {
    "kill": (*BROKER_ROLES, GROUP_LEADER),
    "pause": (*BROKER_ROLES, GROUP_LEADER),
    "stop": (*BROKER_ROLES, GROUP_LEADER),
    "partition": BROKER_ROLES,
    "zookeeper": (ZK_LEADER, ZK_TWO),
}

# How long a fault lasts before it is mended, in seconds: short ones end before a session
# expires, long ones after.
HOLD_RANGE_S: dict[str, tuple[float, float]] = {
    "kill": (1.0, 8.0),
    "pause": (1.0, 10.0),
    "stop": (1.0, 5.0),
    "partition": (2.0, 10.0),
    "zookeeper": (2.0, 8.0),
}
OVERLAP_CHANCE = 0.25  # the next fault starts while this one holds
GAP_RANGE_S = (1.0, 4.0)  # quiet time between faults that do not overlap


@dataclass(frozen=True)
class PlannedFault:
    at_s: float  # from the start of the fault phase
    kind: str
    role: str
    hold_s: float
    partition: int = 0  # for the leader role: whose leader

    def describe(self) -> str:
        role = f"leader of partition {self.partition}" if self.role == LEADER else self.role
        return f"{self.kind} {role} at {self.at_s:.1f} s for {self.hold_s:.1f} s"


@dataclass(frozen=True)
class Schedule:
    seed: int
    faults: tuple[PlannedFault, ...]
    reader_start_s: float  # when the standalone consumer starts: during the first failover

    def kinds(self) -> set[str]:
        return {f.kind for f in self.faults}


def fault_combinations(kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every (kind, role) the kinds allow, in a fixed order."""
    return [(kind, role) for kind in kinds for role in ROLES_BY_KIND[kind]]


def validate_kinds(kinds: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise ValueError(f"--faults takes a comma-separated list of {', '.join(FAULT_KINDS)}, not {','.join(kinds)!r}")
    return tuple(dict.fromkeys(kinds))


def draw_schedule(seed: int, duration_s: float, kinds: tuple[str, ...], partitions: int,
                  first: tuple[str, str] | None = None) -> Schedule:
    """Faults starting within `duration_s`, the first one `first` if given (a suite uses it to
    cover every kind and role), later ones drawn; sometimes two overlap."""
    rng = random.Random(seed)
    combinations = fault_combinations(validate_kinds(kinds))
    faults: list[PlannedFault] = []
    at = rng.uniform(1.0, 3.0)
    while at < duration_s:
        kind, role = first if first is not None and not faults else rng.choice(combinations)
        low, high = HOLD_RANGE_S[kind]
        hold = round(rng.uniform(low, high), 1)
        faults.append(PlannedFault(round(at, 1), kind, role, hold, rng.randrange(partitions)))
        if rng.random() < OVERLAP_CHANCE:
            at += rng.uniform(0.5, hold)
        else:
            at += hold + rng.uniform(*GAP_RANGE_S)
    if not faults:  # a duration too short for the first start: one fault at once
        kind, role = first or rng.choice(combinations)
        faults.append(PlannedFault(0.0, kind, role, round(rng.uniform(*HOLD_RANGE_S[kind]), 1)))
    head = faults[0]
    reader_start = round(rng.uniform(head.at_s, head.at_s + head.hold_s + 3.0), 1)
    return Schedule(seed, tuple(faults), reader_start)


def overlapping(faults: tuple[PlannedFault, ...]) -> int:
    """How many faults start while an earlier one still holds."""
    count = 0
    for i, fault in enumerate(faults):
        if any(f.at_s <= fault.at_s < f.at_s + f.hold_s for f in faults[:i]):
            count += 1
    return count
