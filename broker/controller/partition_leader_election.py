"""Partition leader election: Kafka's rules, as pure functions over plain values.

Kafka's controller keeps these apart from ZooKeeper and the request batches
(PartitionLeaderElectionAlgorithms in PartitionStateMachine.scala, Election.scala and
LeaderAndIsr.scala); so do we. The caller reads the partition state, calls one of these,
and writes the LeaderAndIsr it gets back with a conditional update on `zk_version`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

NO_LEADER = -1
INITIAL_LEADER_EPOCH = 0
# The version a freshly created partition state znode has (Kafka's initialZKVersion / InitialPartitionEpoch).
INITIAL_ZK_VERSION = 0


@dataclass(frozen=True)
class LeaderAndIsr:
    """The content of /brokers/topics/<t>/partitions/<p>/state, plus the znode's version."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    # The partition epoch: the znode's version, against which the next update is made conditional.
    zk_version: int = -1

    def __post_init__(self) -> None:
        # Accept any sequence for the ISR but keep it immutable, so equality and hashing stay sound.
        object.__setattr__(self, "isr", tuple(self.isr))

    def new_leader_and_isr(self, leader: int, isr: Sequence[int]) -> LeaderAndIsr:
        # Every change of leader or ISR bumps the leader epoch; zk_version changes only when the write lands.
        return LeaderAndIsr(leader, self.leader_epoch + 1, tuple(isr), self.zk_version)

    def new_leader(self, leader: int) -> LeaderAndIsr:
        return self.new_leader_and_isr(leader, self.isr)

    def new_epoch(self) -> LeaderAndIsr:
        return self.new_leader_and_isr(self.leader, self.isr)

    @property
    def leader_opt(self) -> int | None:
        return None if self.leader == NO_LEADER else self.leader


# PartitionLeaderElectionAlgorithms. Replicas are scanned in assignment order, never ISR order:
# the assignment's order is the preference order, its head the preferred replica.


def offline_partition_leader_election(
    assignment: Sequence[int], isr: Sequence[int], live: Collection[int], unclean_enabled: bool
) -> int | None:
    """First live ISR member; failing that, and only if unclean election is enabled, first live replica."""
    leader = _first(assignment, lambda r: r in live and r in isr)
    if leader is None and unclean_enabled:
        # An unclean choice: the new leader may lack acknowledged writes (Kafka marks UncleanLeaderElectionsPerSec).
        leader = _first(assignment, lambda r: r in live)
    return leader


def reassign_partition_leader_election(
    reassignment: Sequence[int], isr: Sequence[int], live: Collection[int]
) -> int | None:
    """First replica of the target assignment that is live and in the ISR; never unclean."""
    return _first(reassignment, lambda r: r in live and r in isr)


def preferred_replica_partition_leader_election(
    assignment: Sequence[int], isr: Sequence[int], live: Collection[int]
) -> int | None:
    """The preferred replica (head of the assignment) if it is live and in the ISR; nobody else."""
    if assignment and assignment[0] in live and assignment[0] in isr:
        return assignment[0]
    return None


def controlled_shutdown_partition_leader_election(
    assignment: Sequence[int], isr: Sequence[int], live: Collection[int], shutting_down: Collection[int]
) -> int | None:
    """First replica that is live, in the ISR and not shutting down."""
    return _first(assignment, lambda r: r in live and r in isr and r not in shutting_down)


def _first(replicas: Sequence[int], accept: Callable[[int], bool]) -> int | None:
    return next((r for r in replicas if accept(r)), None)


@dataclass(frozen=True)
class ElectionResult:
    """Election.scala's ElectionResult: the state to write, and the replicas to tell about it."""

    leader_and_isr: LeaderAndIsr | None  # None: no replica could lead
    # The brokers to send LeaderAndIsr to. Kafka's name, but not always only live ones: see leader_for_reassign.
    live_replicas: tuple[int, ...]
    unclean: bool = False  # leader chosen from outside the ISR


# Election.scala: the new LeaderAndIsr for each kind of election.


def leader_for_offline(
    assignment: Sequence[int], current: LeaderAndIsr, live: Collection[int], unclean_enabled: bool
) -> ElectionResult:
    """Elect a leader for a partition whose leader is gone (OfflinePartitionLeaderElectionStrategy).

    `live` is the live brokers *without* those shutting down (Kafka's isReplicaOnline).
    New ISR, as Kafka's source has it: if the leader came from the ISR, the old ISR filtered to
    live brokers, in ISR order (so dead and shutting-down members drop out here, not later);
    after an unclean choice, the leader alone. Kafka 3.2+ also marks an unclean leader
    RECOVERING; `unclean` carries that fact for the caller.
    """
    live_replicas = tuple(r for r in assignment if r in live)
    # Kafka passes liveReplicas (assignment members that are live) as the live set.
    leader = offline_partition_leader_election(assignment, current.isr, live_replicas, unclean_enabled)
    if leader is None:
        return ElectionResult(None, live_replicas)
    clean = leader in current.isr
    # The ISR is filtered against live brokers, not against the assignment: Kafka checks each ISR member.
    new_isr = [r for r in current.isr if r in live] if clean else [leader]
    return ElectionResult(current.new_leader_and_isr(leader, new_isr), live_replicas, unclean=not clean)


def leader_for_reassign(reassignment: Sequence[int], current: LeaderAndIsr, live: Collection[int]) -> ElectionResult:
    """Elect a leader among the target replicas of a reassignment; the ISR is left as it is.

    Kafka's source returns the whole target replica list as the result's replicas, not only its
    live members: they are the brokers LeaderAndIsr goes to, and the controller's channel
    manager skips any that are offline. We follow it.
    """
    live_replicas = [r for r in reassignment if r in live]
    leader = reassign_partition_leader_election(reassignment, current.isr, live_replicas)
    new_state = None if leader is None else current.new_leader(leader)
    return ElectionResult(new_state, tuple(reassignment))


def leader_for_preferred(assignment: Sequence[int], current: LeaderAndIsr, live: Collection[int]) -> ElectionResult:
    """Move leadership back to the preferred replica; the ISR is left as it is.

    As for reassignment, Kafka's result carries the whole assignment, live or not.
    """
    live_replicas = [r for r in assignment if r in live]
    leader = preferred_replica_partition_leader_election(assignment, current.isr, live_replicas)
    new_state = None if leader is None else current.new_leader(leader)
    return ElectionResult(new_state, tuple(assignment))


def leader_for_controlled_shutdown(
    assignment: Sequence[int], current: LeaderAndIsr, live: Collection[int], shutting_down: Collection[int]
) -> ElectionResult:
    """Move leadership off brokers that are shutting down.

    `live` includes the shutting-down brokers (Kafka's includeShuttingDownBrokers = true): they
    still serve until they stop, and must hear about the change. New ISR: the old one minus the
    shutting-down brokers, in ISR order; members that are dead are not removed here.
    """
    live_or_shutting_down = tuple(r for r in assignment if r in live)
    leader = controlled_shutdown_partition_leader_election(
        assignment, current.isr, live_or_shutting_down, shutting_down
    )
    if leader is None:
        return ElectionResult(None, live_or_shutting_down)
    new_isr = [r for r in current.isr if r not in shutting_down]
    return ElectionResult(current.new_leader_and_isr(leader, new_isr), live_or_shutting_down)


def initial_leader_and_isr(assignment: Sequence[int], live: Collection[int]) -> LeaderAndIsr | None:
    """The first state of a new partition (PartitionStateMachine.initializeLeaderAndIsrForPartitions).

    Leader: the first live replica of the assignment; ISR: every live replica, in assignment
    order; leader epoch 0 and the version the state znode will have once created. None when no
    assigned replica is alive: Kafka then leaves the partition in NewPartition.
    """
    live_replicas = tuple(r for r in assignment if r in live)
    if not live_replicas:
        return None
    return LeaderAndIsr(live_replicas[0], INITIAL_LEADER_EPOCH, live_replicas, INITIAL_ZK_VERSION)


def remove_replica_from_isr(current: LeaderAndIsr, replica: int) -> LeaderAndIsr:
    """A replica went offline (ReplicaStateMachine.doRemoveReplicasFromIsr).

    As in Kafka, only a partition whose ISR holds the replica is touched; its state is rewritten
    with leader_epoch + 1 even when the replica is the last ISR member, which stays in the ISR
    (an empty ISR would lose track of who has the data) while the partition loses its leader if
    it was that replica. A replica outside the ISR changes nothing, even if it is named leader.
    """
    if replica not in current.isr:
        return current
    leader = NO_LEADER if replica == current.leader else current.leader
    isr = current.isr if len(current.isr) == 1 else [r for r in current.isr if r != replica]
    return current.new_leader_and_isr(leader, isr)
