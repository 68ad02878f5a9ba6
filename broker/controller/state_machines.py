"""The controller's partition and replica state machines: Kafka's states and legal transitions.

Table-driven, as in Kafka (each state lists the states it may be entered from) and h11: the
tables are data, a check raises on an illegal move, and nothing here touches ZooKeeper.
Sources: PartitionStateMachine.scala and ReplicaStateMachine.scala (ZooKeeper mode).
"""

from __future__ import annotations

from enum import Enum


class PartitionState(Enum):
    # Declared in the order of Kafka's state bytes (0..3).
    NEW_PARTITION = "NewPartition"
    ONLINE_PARTITION = "OnlinePartition"
    OFFLINE_PARTITION = "OfflinePartition"
    NON_EXISTENT_PARTITION = "NonExistentPartition"

    def __str__(self) -> str:
        return self.value


class ReplicaState(Enum):
    # Declared in the order of Kafka's state bytes (1..7).
    NEW_REPLICA = "NewReplica"
    ONLINE_REPLICA = "OnlineReplica"
    OFFLINE_REPLICA = "OfflineReplica"
    REPLICA_DELETION_STARTED = "ReplicaDeletionStarted"
    REPLICA_DELETION_SUCCESSFUL = "ReplicaDeletionSuccessful"
    REPLICA_DELETION_INELIGIBLE = "ReplicaDeletionIneligible"
    NON_EXISTENT_REPLICA = "NonExistentReplica"

    def __str__(self) -> str:
        return self.value


_P = PartitionState
PARTITION_VALID_PREVIOUS_STATES: dict[PartitionState, frozenset[PartitionState]] = {
    # A topic (or a partition added to it) has been created: replicas assigned, no leader yet.
    _P.NEW_PARTITION: frozenset({_P.NON_EXISTENT_PARTITION}),
    # Online -> Online is a re-election (preferred replica, reassignment, controlled shutdown).
    _P.ONLINE_PARTITION: frozenset({_P.NEW_PARTITION, _P.ONLINE_PARTITION, _P.OFFLINE_PARTITION}),
    _P.OFFLINE_PARTITION: frozenset({_P.NEW_PARTITION, _P.ONLINE_PARTITION, _P.OFFLINE_PARTITION}),
    # Only an offline partition may be deleted: topic deletion takes partitions offline first.
    _P.NON_EXISTENT_PARTITION: frozenset({_P.OFFLINE_PARTITION}),
}

_R = ReplicaState
REPLICA_VALID_PREVIOUS_STATES: dict[ReplicaState, frozenset[ReplicaState]] = {
    _R.NEW_REPLICA: frozenset({_R.NON_EXISTENT_REPLICA}),
    # From Ineligible: back Online when its broker returns, Offline when the topic's deletion is retried.
    _R.ONLINE_REPLICA: frozenset(
        {_R.NEW_REPLICA, _R.ONLINE_REPLICA, _R.OFFLINE_REPLICA, _R.REPLICA_DELETION_INELIGIBLE}
    ),
    _R.OFFLINE_REPLICA: frozenset(
        {_R.NEW_REPLICA, _R.ONLINE_REPLICA, _R.OFFLINE_REPLICA, _R.REPLICA_DELETION_INELIGIBLE}
    ),
    # Deletion starts only once the replica is offline (StopReplica with delete).
    _R.REPLICA_DELETION_STARTED: frozenset({_R.OFFLINE_REPLICA}),
    _R.REPLICA_DELETION_SUCCESSFUL: frozenset({_R.REPLICA_DELETION_STARTED}),
    _R.REPLICA_DELETION_INELIGIBLE: frozenset({_R.OFFLINE_REPLICA, _R.REPLICA_DELETION_STARTED}),
    _R.NON_EXISTENT_REPLICA: frozenset({_R.REPLICA_DELETION_SUCCESSFUL}),
}
del _P, _R


class IllegalStateChange(Exception):
    """A transition the tables forbid (Kafka logs an IllegalStateException and skips the change)."""

    def __init__(self, message: str, current: PartitionState | ReplicaState, target: PartitionState | ReplicaState):
        super().__init__(message)
        self.current = current
        self.target = target


def _listed(states: frozenset[PartitionState] | frozenset[ReplicaState]) -> str:
    # In declaration order (Kafka's state bytes), which is the order Kafka's Set literals print in.
    return ",".join(str(s) for s in sorted(states, key=lambda s: list(type(s)).index(s)))


def check_partition_transition(current: PartitionState, target: PartitionState, partition: str) -> None:
    """Raise IllegalStateChange unless `partition` may move from `current` to `target`."""
    valid = PARTITION_VALID_PREVIOUS_STATES[target]
    if current not in valid:
        # PartitionStateMachine.logInvalidTransition's words.
        raise IllegalStateChange(
            f"Partition {partition} should be in one of {_listed(valid)} states before moving to {target} state. "
            f"Instead it is in {current} state",
            current,
            target,
        )


def check_replica_transition(current: ReplicaState, target: ReplicaState, replica: str) -> None:
    """Raise IllegalStateChange unless `replica` may move from `current` to `target`."""
    valid = REPLICA_VALID_PREVIOUS_STATES[target]
    if current not in valid:
        # ReplicaStateMachine.logInvalidTransition's words.
        raise IllegalStateChange(
            f"Replica {replica} should be in the {_listed(valid)} states before moving to {target} state. "
            f"Instead it is in {current} state",
            current,
            target,
        )
