"""Controller election decisions as pure functions."""

from __future__ import annotations

from broker.controller.controller_election import (
    BrokerChanges,
    ElectionStep,
    broker_changes,
    imbalanced_partitions,
    must_resign,
    next_election_step,
)


def test_a_broker_follows_a_controller_races_for_none_and_clears_malformed_data() -> None:
    assert next_election_step(2, False, broker_id=1, acting_as_controller=False) is ElectionStep.FOLLOW
    assert next_election_step(None, False, broker_id=1, acting_as_controller=False) is ElectionStep.RACE
    assert next_election_step(None, True, broker_id=1, acting_as_controller=False) is ElectionStep.CLEAR


def test_a_controller_keeps_its_own_znode_and_clears_one_it_no_longer_acts_on() -> None:
    assert next_election_step(1, False, broker_id=1, acting_as_controller=True) is ElectionStep.FOLLOW
    assert next_election_step(1, False, broker_id=1, acting_as_controller=False) is ElectionStep.CLEAR


def test_only_a_broker_that_was_controller_and_is_no_longer_resigns() -> None:
    assert must_resign(1, was_active_controller_id=1, now_controller_id=2)
    assert must_resign(1, was_active_controller_id=1, now_controller_id=-1)
    assert not must_resign(1, was_active_controller_id=1, now_controller_id=1)
    assert not must_resign(1, was_active_controller_id=2, now_controller_id=3)
    assert not must_resign(1, was_active_controller_id=-1, now_controller_id=-1)


def test_broker_changes_tell_new_dead_and_bounced_brokers_by_broker_epoch() -> None:
    known = {1: 10, 2: 20, 3: 30}
    current = {2: 20, 3: 35, 4: 40}
    assert broker_changes(known, current) == BrokerChanges(new=(4,), dead=(1,), bounced=(3,), live=(2, 3, 4))
    assert not broker_changes(known, known).any
    assert broker_changes({}, {1: 5}).new == (1,)


def test_auto_rebalance_picks_partitions_of_brokers_above_the_imbalance_ratio() -> None:
    assignments = {("t", p): (1 + p % 2, 2 - p % 2) for p in range(10)}  # broker 1 and 2 prefer five each
    leaders = {("t", p): 2 for p in range(10)}  # broker 2 leads everything
    assert imbalanced_partitions(assignments, leaders, {1, 2}, 10) == [("t", p) for p in range(0, 10, 2)]
    assert imbalanced_partitions(assignments, leaders, {2}, 10) == []  # a dead preferred broker is skipped
    leaders[("t", 0)] = 1  # 4 of 5 not led: 80 %
    assert imbalanced_partitions(assignments, leaders, {1, 2}, 80) == []
    assert len(imbalanced_partitions(assignments, leaders, {1, 2}, 79)) == 4
