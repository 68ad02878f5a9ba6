"""Kafka's rack-unaware replica assignment: Kafka's known assignments, spread and errors."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from broker.replica_assignment import (
    ASSIGNMENT_MAX_BYTES,
    InvalidPartitions,
    InvalidReplicationFactor,
    assign_replicas_to_brokers,
    assignment_bytes,
)


def test_five_brokers_ten_partitions_rf3_from_index_0_match_kafkas_admin_test() -> None:
    # AdminRackAwareTest.testReplicaAssignment; also the table in AdminUtils' own documentation.
    assert assign_replicas_to_brokers([0, 1, 2, 3, 4], 10, 3, fixed_start_index=0) == {
        0: [0, 1, 2],
        1: [1, 2, 3],
        2: [2, 3, 4],
        3: [3, 4, 0],
        4: [4, 0, 1],
        5: [0, 2, 3],
        6: [1, 3, 4],
        7: [2, 4, 0],
        8: [3, 0, 1],
        9: [4, 1, 2],
    }


def test_brokers_are_assigned_in_id_order_whatever_order_they_are_given_in() -> None:
    # Kafka sorts the broker metadata by id before assigning.
    assert assign_replicas_to_brokers([4, 2, 0, 3, 1], 10, 3, fixed_start_index=0) == assign_replicas_to_brokers(
        [0, 1, 2, 3, 4], 10, 3, fixed_start_index=0
    )


def test_broker_ids_are_used_not_their_positions() -> None:
    assert assign_replicas_to_brokers([10, 20, 30], 3, 2, fixed_start_index=0) == {
        0: [10, 20],
        1: [20, 30],
        2: [30, 10],
    }


def test_added_partitions_on_all_servers_match_kafkas_add_partitions_test() -> None:
    # AddPartitionsTest.testReplicaPlacementAllServers: partition 0 is [2, 3, 0, 1] on brokers 0..3, grown to 7
    # partitions; the start index is partition 0's leader's index, numbering continues from 1.
    added = assign_replicas_to_brokers([0, 1, 2, 3], 6, 4, fixed_start_index=2, start_partition_id=1)
    expected_leaders = {1: 3, 2: 0, 3: 1, 4: 2, 5: 3, 6: 0}
    assert {p: replicas[0] for p, replicas in added.items()} == expected_leaders
    assert all(sorted(replicas) == [0, 1, 2, 3] for replicas in added.values())
    assert added == {
        1: [3, 2, 0, 1],
        2: [0, 3, 1, 2],
        3: [1, 0, 2, 3],
        4: [2, 3, 0, 1],
        5: [3, 0, 1, 2],
        6: [0, 1, 2, 3],
    }


def test_added_partitions_on_some_servers_match_kafkas_add_partitions_test() -> None:
    # AddPartitionsTest.testReplicaPlacementPartialServers: partition 0 is [1, 2] on brokers 0..3, grown to 3.
    assert assign_replicas_to_brokers([0, 1, 2, 3], 2, 2, fixed_start_index=1, start_partition_id=1) == {
        1: [2, 0],
        2: [3, 1],
    }


def test_leaders_and_replicas_are_spread_evenly() -> None:
    assignment = assign_replicas_to_brokers(range(6), 12, 3, fixed_start_index=0)
    assert Counter(replicas[0] for replicas in assignment.values()) == dict.fromkeys(range(6), 2)
    assert Counter(r for replicas in assignment.values() for r in replicas) == dict.fromkeys(range(6), 6)
    assert all(len(set(replicas)) == 3 for replicas in assignment.values())


def test_a_random_start_draws_from_the_given_generator() -> None:
    first = assign_replicas_to_brokers([1, 2, 3, 4], 8, 3, rng=random.Random(42))
    again = assign_replicas_to_brokers([1, 2, 3, 4], 8, 3, rng=random.Random(42))
    assert first == again
    assert list(first) == list(range(8))
    assert all(len(set(replicas)) == 3 and set(replicas) <= {1, 2, 3, 4} for replicas in first.values())


def test_a_single_broker_gets_every_partition() -> None:
    assert assign_replicas_to_brokers([7], 3, 1) == {0: [7], 1: [7], 2: [7]}


def test_a_replication_factor_above_the_broker_count_is_refused_with_kafkas_message() -> None:
    with pytest.raises(InvalidReplicationFactor, match=r"^Replication factor: 4 larger than available brokers: 3\.$"):
        assign_replicas_to_brokers([1, 2, 3], 1, 4)
    with pytest.raises(InvalidReplicationFactor, match=r"^Replication factor: 6 larger than available brokers: 5\.$"):
        assign_replicas_to_brokers(range(5), 10, 6)


def test_a_replication_factor_below_one_is_refused() -> None:
    with pytest.raises(InvalidReplicationFactor, match=r"^Replication factor must be larger than 0\.$"):
        assign_replicas_to_brokers(range(5), 10, 0)


def test_a_partition_count_below_one_is_refused_before_the_replication_factor_is_checked() -> None:
    with pytest.raises(InvalidPartitions, match=r"^Number of partitions must be larger than 0\.$"):
        assign_replicas_to_brokers([1, 2, 3], 0, 0)


def test_no_brokers_means_no_replication_factor_fits() -> None:
    with pytest.raises(InvalidReplicationFactor, match=r"^Replication factor: 1 larger than available brokers: 0\.$"):
        assign_replicas_to_brokers([], 1, 1)


def test_an_assignment_too_big_for_one_znode_is_refused_before_it_is_built() -> None:
    # A request for 2**31 - 1 partitions once took a broker's 23 GB and an OOM kill with it.
    with pytest.raises(InvalidPartitions, match="do not fit in one topic znode"):
        assign_replicas_to_brokers([1, 2, 3], 2**31 - 1, 3)
    with pytest.raises(InvalidPartitions):
        assign_replicas_to_brokers([1, 2, 3], 100_000, 3)
    assert len(assign_replicas_to_brokers([1, 2, 3], 50_000, 3)) == 50_000
    assert assignment_bytes(50_000, 3, [1, 2, 3]) < ASSIGNMENT_MAX_BYTES
