"""The controller's partition and replica state machines: Kafka's legal transitions, and nothing else."""

from __future__ import annotations

import itertools

import pytest

from broker.controller.state_machines import (
    PARTITION_VALID_PREVIOUS_STATES,
    REPLICA_VALID_PREVIOUS_STATES,
    IllegalStateChange,
    PartitionState,
    ReplicaState,
    check_partition_transition,
    check_replica_transition,
)

P = PartitionState
R = ReplicaState

LEGAL_PARTITION_TRANSITIONS = {
    (P.NON_EXISTENT_PARTITION, P.NEW_PARTITION),
    (P.NEW_PARTITION, P.ONLINE_PARTITION),
    (P.ONLINE_PARTITION, P.ONLINE_PARTITION),
    (P.OFFLINE_PARTITION, P.ONLINE_PARTITION),
    (P.NEW_PARTITION, P.OFFLINE_PARTITION),
    (P.ONLINE_PARTITION, P.OFFLINE_PARTITION),
    (P.OFFLINE_PARTITION, P.OFFLINE_PARTITION),
    (P.OFFLINE_PARTITION, P.NON_EXISTENT_PARTITION),
}

LEGAL_REPLICA_TRANSITIONS = {
    (R.NON_EXISTENT_REPLICA, R.NEW_REPLICA),
    (R.NEW_REPLICA, R.ONLINE_REPLICA),
    (R.ONLINE_REPLICA, R.ONLINE_REPLICA),
    (R.OFFLINE_REPLICA, R.ONLINE_REPLICA),
    (R.REPLICA_DELETION_INELIGIBLE, R.ONLINE_REPLICA),
    (R.NEW_REPLICA, R.OFFLINE_REPLICA),
    (R.ONLINE_REPLICA, R.OFFLINE_REPLICA),
    (R.OFFLINE_REPLICA, R.OFFLINE_REPLICA),
    (R.REPLICA_DELETION_INELIGIBLE, R.OFFLINE_REPLICA),
    (R.OFFLINE_REPLICA, R.REPLICA_DELETION_STARTED),
    (R.REPLICA_DELETION_STARTED, R.REPLICA_DELETION_SUCCESSFUL),
    (R.OFFLINE_REPLICA, R.REPLICA_DELETION_INELIGIBLE),
    (R.REPLICA_DELETION_STARTED, R.REPLICA_DELETION_INELIGIBLE),
    (R.REPLICA_DELETION_SUCCESSFUL, R.NON_EXISTENT_REPLICA),
}


def test_state_values_are_kafkas_names() -> None:
    assert [s.value for s in P] == ["NewPartition", "OnlinePartition", "OfflinePartition", "NonExistentPartition"]
    assert [s.value for s in R] == [
        "NewReplica",
        "OnlineReplica",
        "OfflineReplica",
        "ReplicaDeletionStarted",
        "ReplicaDeletionSuccessful",
        "ReplicaDeletionIneligible",
        "NonExistentReplica",
    ]


def test_the_tables_hold_exactly_kafkas_partition_and_replica_transitions() -> None:
    partition_table = {(prev, target) for target, prevs in PARTITION_VALID_PREVIOUS_STATES.items() for prev in prevs}
    replica_table = {(prev, target) for target, prevs in REPLICA_VALID_PREVIOUS_STATES.items() for prev in prevs}
    assert partition_table == LEGAL_PARTITION_TRANSITIONS
    assert replica_table == LEGAL_REPLICA_TRANSITIONS
    assert set(PARTITION_VALID_PREVIOUS_STATES) == set(P)
    assert set(REPLICA_VALID_PREVIOUS_STATES) == set(R)


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL_PARTITION_TRANSITIONS, key=str))
def test_every_legal_partition_transition_is_accepted(current: PartitionState, target: PartitionState) -> None:
    check_partition_transition(current, target, "t-0")


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL_REPLICA_TRANSITIONS, key=str))
def test_every_legal_replica_transition_is_accepted(current: ReplicaState, target: ReplicaState) -> None:
    check_replica_transition(current, target, "[Topic=t,Partition=0,Replica=1]")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (P.NON_EXISTENT_PARTITION, P.ONLINE_PARTITION),  # a leader needs a partition created first
        (P.NON_EXISTENT_PARTITION, P.OFFLINE_PARTITION),
        (P.ONLINE_PARTITION, P.NEW_PARTITION),
        (P.NEW_PARTITION, P.NEW_PARTITION),
        (P.ONLINE_PARTITION, P.NON_EXISTENT_PARTITION),  # deletion goes through Offline
        (P.NEW_PARTITION, P.NON_EXISTENT_PARTITION),
    ],
)
def test_illegal_partition_transitions_are_refused(current: PartitionState, target: PartitionState) -> None:
    with pytest.raises(IllegalStateChange) as refused:
        check_partition_transition(current, target, "t-0")
    assert (refused.value.current, refused.value.target) == (current, target)


def test_every_partition_transition_outside_the_table_is_refused() -> None:
    for current, target in itertools.product(P, P):
        if (current, target) not in LEGAL_PARTITION_TRANSITIONS:
            with pytest.raises(IllegalStateChange):
                check_partition_transition(current, target, "t-0")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (R.NON_EXISTENT_REPLICA, R.ONLINE_REPLICA),
        (R.ONLINE_REPLICA, R.REPLICA_DELETION_STARTED),  # deletion starts from Offline only
        (R.NEW_REPLICA, R.REPLICA_DELETION_STARTED),
        (R.OFFLINE_REPLICA, R.NON_EXISTENT_REPLICA),  # ...and must succeed before the replica is gone
        (R.REPLICA_DELETION_STARTED, R.NON_EXISTENT_REPLICA),
        (R.REPLICA_DELETION_SUCCESSFUL, R.ONLINE_REPLICA),
        (R.REPLICA_DELETION_STARTED, R.ONLINE_REPLICA),
        (R.NEW_REPLICA, R.NEW_REPLICA),
    ],
)
def test_illegal_replica_transitions_are_refused(current: ReplicaState, target: ReplicaState) -> None:
    with pytest.raises(IllegalStateChange):
        check_replica_transition(current, target, "[Topic=t,Partition=0,Replica=1]")


def test_every_replica_transition_outside_the_table_is_refused() -> None:
    for current, target in itertools.product(R, R):
        if (current, target) not in LEGAL_REPLICA_TRANSITIONS:
            with pytest.raises(IllegalStateChange):
                check_replica_transition(current, target, "[Topic=t,Partition=0,Replica=1]")


def test_refusals_are_worded_as_kafkas_state_change_log_words_them() -> None:
    with pytest.raises(IllegalStateChange) as partition_refused:
        check_partition_transition(P.NON_EXISTENT_PARTITION, P.ONLINE_PARTITION, "t-0")
    assert str(partition_refused.value) == (
        "Partition t-0 should be in one of NewPartition,OnlinePartition,OfflinePartition states before moving to "
        "OnlinePartition state. Instead it is in NonExistentPartition state"
    )
    with pytest.raises(IllegalStateChange) as replica_refused:
        check_replica_transition(R.ONLINE_REPLICA, R.REPLICA_DELETION_INELIGIBLE, "[Topic=t,Partition=0,Replica=1]")
    assert str(replica_refused.value) == (
        "Replica [Topic=t,Partition=0,Replica=1] should be in the OfflineReplica,ReplicaDeletionStarted states "
        "before moving to ReplicaDeletionIneligible state. Instead it is in OnlineReplica state"
    )
