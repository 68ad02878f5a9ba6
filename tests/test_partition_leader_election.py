"""Partition leader election: Kafka's PartitionLeaderElectionAlgorithmsTest in our words, plus Election.scala's
ISR rules, a new partition's first state and a replica leaving the ISR."""

from __future__ import annotations

from broker.controller.controller_context import ControllerContext
from broker.controller.partition_leader_election import (
    NO_LEADER,
    ElectionResult,
    LeaderAndIsr,
    controlled_shutdown_partition_leader_election,
    initial_leader_and_isr,
    leader_for_controlled_shutdown,
    leader_for_offline,
    leader_for_preferred,
    leader_for_reassign,
    offline_partition_leader_election,
    preferred_replica_partition_leader_election,
    reassign_partition_leader_election,
    remove_replica_from_isr,
)

# --- PartitionLeaderElectionAlgorithms: Kafka's own cases ---------------------------------------


def test_offline_election_picks_the_live_isr_member() -> None:
    assert offline_partition_leader_election([2, 4], isr=[2, 4], live={4}, unclean_enabled=False) == 4


def test_offline_election_with_the_last_isr_member_dead_and_unclean_disabled_elects_nobody() -> None:
    assert offline_partition_leader_election([2, 4], isr=[2], live={4}, unclean_enabled=False) is None


def test_offline_election_with_the_last_isr_member_dead_and_unclean_enabled_elects_a_live_non_isr_replica() -> None:
    assert offline_partition_leader_election([2, 4], isr=[2], live={4}, unclean_enabled=True) == 4


def test_reassign_election_picks_the_live_isr_member_of_the_target_replicas() -> None:
    assert reassign_partition_leader_election([2, 4], isr=[2, 4], live={4}) == 4


def test_reassign_election_with_no_live_isr_member_elects_nobody() -> None:
    assert reassign_partition_leader_election([2, 4], isr=[2], live=set()) is None


def test_reassign_election_with_an_empty_isr_elects_nobody_even_if_a_replica_is_live() -> None:
    assert reassign_partition_leader_election([2, 4], isr=[], live={2}) is None


def test_preferred_election_picks_the_preferred_replica_when_live_and_in_sync() -> None:
    assert preferred_replica_partition_leader_election([2, 4], isr=[2, 4], live={2, 4}) == 2


def test_preferred_election_elects_nobody_when_the_preferred_replica_is_in_sync_but_dead() -> None:
    assert preferred_replica_partition_leader_election([2, 4], isr=[2], live=set()) is None


def test_preferred_election_elects_nobody_when_the_preferred_replica_is_live_but_out_of_sync() -> None:
    # Broker 4 is live and in sync, but only the preferred replica may win this election.
    assert preferred_replica_partition_leader_election([2, 4], isr=[4], live={2, 4}) is None


def test_preferred_election_elects_nobody_when_the_preferred_replica_is_dead_and_out_of_sync() -> None:
    assert preferred_replica_partition_leader_election([2, 4], isr=[], live=set()) is None


def test_controlled_shutdown_election_moves_leadership_off_the_shutting_down_broker() -> None:
    assert controlled_shutdown_partition_leader_election([2, 4], isr=[2, 4], live={2, 4}, shutting_down={2}) == 4


def test_controlled_shutdown_election_elects_nobody_when_the_last_isr_member_is_shutting_down() -> None:
    assert controlled_shutdown_partition_leader_election([2, 4], isr=[2], live={2, 4}, shutting_down={2}) is None


def test_controlled_shutdown_election_elects_nobody_when_the_whole_isr_shuts_down_at_once() -> None:
    assert controlled_shutdown_partition_leader_election([2, 4], isr=[2, 4], live={2, 4}, shutting_down={2, 4}) is None


# --- Scan order ----------------------------------------------------------------------------------


def test_elections_scan_replicas_in_assignment_order_not_isr_order() -> None:
    assignment, isr, live = [3, 1, 2], [2, 1, 3], {1, 2, 3}
    assert offline_partition_leader_election(assignment, isr, live, unclean_enabled=False) == 3
    assert reassign_partition_leader_election(assignment, isr, live) == 3
    assert controlled_shutdown_partition_leader_election(assignment, isr, live, shutting_down={3}) == 1


def test_unclean_offline_election_is_used_only_when_no_isr_member_is_live() -> None:
    # A live ISR member later in the assignment beats an earlier live out-of-sync replica.
    assert offline_partition_leader_election([1, 2, 3], isr=[3], live={1, 3}, unclean_enabled=True) == 3


def test_preferred_election_of_an_empty_assignment_elects_nobody() -> None:
    assert preferred_replica_partition_leader_election([], isr=[1], live={1}) is None


# --- LeaderAndIsr ---------------------------------------------------------------------------------


def test_leader_and_isr_changes_bump_the_leader_epoch_and_keep_the_zk_version() -> None:
    state = LeaderAndIsr(leader=1, leader_epoch=4, isr=(1, 2, 3), zk_version=7)
    assert state.new_leader_and_isr(2, [2, 3]) == LeaderAndIsr(2, 5, (2, 3), 7)
    assert state.new_leader(3) == LeaderAndIsr(3, 5, (1, 2, 3), 7)
    assert state.new_epoch() == LeaderAndIsr(1, 5, (1, 2, 3), 7)


def test_leader_and_isr_stores_the_isr_as_a_tuple() -> None:
    assert LeaderAndIsr(1, 0, [1, 2]).isr == (1, 2)  # type: ignore[arg-type]
    assert LeaderAndIsr(1, 0, (1, 2)).zk_version == -1


# --- Election.scala: the new state each kind of election writes -----------------------------------


def test_clean_offline_election_keeps_the_live_isr_members_in_isr_order() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=3, isr=(3, 1, 2), zk_version=9)
    result = leader_for_offline([1, 2, 3], current, live={2, 3}, unclean_enabled=False)
    assert result == ElectionResult(LeaderAndIsr(2, 4, (3, 2), 9), live_replicas=(2, 3), unclean=False)


def test_clean_offline_election_filters_the_isr_by_liveness_even_outside_the_assignment() -> None:
    # Broker 5 is in the ISR but not in the assignment (mid-reassignment); Kafka keeps it if live.
    current = LeaderAndIsr(leader=1, leader_epoch=0, isr=(1, 2, 5))
    result = leader_for_offline([1, 2, 3], current, live={2, 5}, unclean_enabled=False)
    assert result.leader_and_isr == LeaderAndIsr(2, 1, (2, 5))
    assert result.live_replicas == (2,)


def test_unclean_offline_election_leaves_the_new_leader_alone_in_the_isr() -> None:
    current = LeaderAndIsr(leader=2, leader_epoch=6, isr=(2,), zk_version=4)
    result = leader_for_offline([2, 4, 5], current, live={4, 5}, unclean_enabled=True)
    assert result == ElectionResult(LeaderAndIsr(4, 7, (4,), 4), live_replicas=(4, 5), unclean=True)


def test_offline_election_with_no_candidate_writes_nothing_and_reports_live_replicas() -> None:
    current = LeaderAndIsr(leader=2, leader_epoch=6, isr=(2,))
    assert leader_for_offline([2, 4], current, live={4}, unclean_enabled=False) == ElectionResult(None, (4,))
    assert leader_for_offline([2, 4], current, live=set(), unclean_enabled=True) == ElectionResult(None, ())


def test_reassign_election_keeps_the_isr_and_reports_all_target_replicas() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=2, isr=(1, 4, 5), zk_version=3)
    result = leader_for_reassign([4, 5, 6], current, live={1, 5, 6})
    # Kafka's result lists every target replica, dead ones included (4 here).
    assert result == ElectionResult(LeaderAndIsr(5, 3, (1, 4, 5), 3), live_replicas=(4, 5, 6))
    assert leader_for_reassign([6], current, live={6}) == ElectionResult(None, (6,))


def test_preferred_election_keeps_the_isr_and_reports_the_whole_assignment() -> None:
    current = LeaderAndIsr(leader=2, leader_epoch=8, isr=(2, 1), zk_version=11)
    result = leader_for_preferred([1, 2, 3], current, live={1, 2})
    assert result == ElectionResult(LeaderAndIsr(1, 9, (2, 1), 11), live_replicas=(1, 2, 3))
    assert leader_for_preferred([3, 2, 1], current, live={1, 2, 3}).leader_and_isr is None


def test_controlled_shutdown_election_drops_shutting_down_brokers_from_the_isr() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=0, isr=(1, 2, 3), zk_version=2)
    # `live` includes the broker shutting down; it still hears about the change.
    result = leader_for_controlled_shutdown([1, 2, 3], current, live={1, 2, 3}, shutting_down={1})
    assert result == ElectionResult(LeaderAndIsr(2, 1, (2, 3), 2), live_replicas=(1, 2, 3))


def test_controlled_shutdown_election_keeps_dead_isr_members_and_fails_without_a_candidate() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=0, isr=(1, 2, 3))
    # Broker 3 is dead but the shutdown election does not prune the ISR for liveness.
    result = leader_for_controlled_shutdown([1, 2, 3], current, live={1, 2}, shutting_down={1})
    assert result.leader_and_isr == LeaderAndIsr(2, 1, (2, 3))
    assert result.live_replicas == (1, 2)
    failed = leader_for_controlled_shutdown([1, 2], LeaderAndIsr(1, 0, (1,)), live={1, 2}, shutting_down={1})
    assert failed == ElectionResult(None, (1, 2))


# --- A new partition --------------------------------------------------------------------------------


def test_a_new_partition_is_led_by_its_first_live_replica_with_all_live_replicas_in_sync() -> None:
    assert initial_leader_and_isr([3, 1, 2], live={1, 2, 3}) == LeaderAndIsr(3, 0, (3, 1, 2), 0)
    assert initial_leader_and_isr([3, 1, 2], live={1, 2}) == LeaderAndIsr(1, 0, (1, 2), 0)


def test_a_new_partition_with_no_live_replica_gets_no_state() -> None:
    assert initial_leader_and_isr([1, 2], live={3}) is None


# --- A replica going offline ------------------------------------------------------------------------


def test_an_offline_follower_leaves_the_isr_and_the_leader_epoch_goes_up() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=5, isr=(1, 2, 3), zk_version=6)
    assert remove_replica_from_isr(current, 2) == LeaderAndIsr(1, 6, (1, 3), 6)


def test_an_offline_leader_leaves_the_partition_leaderless_and_the_isr() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=5, isr=(1, 2))
    assert remove_replica_from_isr(current, 1) == LeaderAndIsr(NO_LEADER, 6, (2,))


def test_the_last_isr_member_is_never_removed_but_stops_leading() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=5, isr=(1,))
    assert remove_replica_from_isr(current, 1) == LeaderAndIsr(NO_LEADER, 6, (1,))


def test_a_replica_outside_the_isr_changes_nothing() -> None:
    current = LeaderAndIsr(leader=1, leader_epoch=5, isr=(1, 2))
    assert remove_replica_from_isr(current, 3) is current
    leaderless = LeaderAndIsr(leader=NO_LEADER, leader_epoch=5, isr=(1,))
    assert remove_replica_from_isr(leaderless, 2) is leaderless
    # Kafka only rewrites partitions whose ISR holds the replica, so a leader outside the ISR stays named.
    odd = LeaderAndIsr(leader=3, leader_epoch=5, isr=(1, 2))
    assert remove_replica_from_isr(odd, 3) is odd


def test_the_unclean_election_flag_is_read_with_the_topic_config_table_s_parser() -> None:
    context = ControllerContext(topic_configs={
        "yes": {"unclean.leader.election.enable": " TRUE "}, "no": {"unclean.leader.election.enable": "false"},
        "bad": {"unclean.leader.election.enable": "yes"}, "unset": {},
    })
    assert context.unclean_election_enabled("yes", broker_default=False) is True
    assert context.unclean_election_enabled("no", broker_default=True) is False
    assert context.unclean_election_enabled("bad", broker_default=True) is True
    assert context.unclean_election_enabled("unset", broker_default=True) is True
