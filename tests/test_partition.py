"""A leader's decisions about its followers: the high watermark, who may join the ISR and who
has fallen out of it (pure functions, no logs)."""

from __future__ import annotations

from broker.fetch_session import FetchClock
from broker.partition import FollowerState, after_fetch, caught_up_ms, high_watermark, may_join_isr, out_of_sync
from broker.replica_fetcher import truncation_offset


def test_high_watermark_is_the_smallest_log_end_offset_in_the_isr() -> None:
    followers = {2: FollowerState(log_end_offset=7), 3: FollowerState(log_end_offset=4)}
    assert high_watermark(10, (1, 2, 3), 1, followers) == 4
    # A follower outside the ISR does not hold the high watermark back.
    assert high_watermark(10, (1, 2), 1, followers) == 7
    assert high_watermark(10, (1,), 1, followers) == 10


def test_a_follower_not_heard_from_since_the_leader_changed_holds_the_high_watermark() -> None:
    assert high_watermark(10, (1, 2), 1, {2: FollowerState()}) == -1
    assert high_watermark(10, (1, 2), 1, {}) == -1


def test_fetching_from_the_leaders_log_end_means_caught_up_now() -> None:
    state = after_fetch(FollowerState(), fetch_offset=10, leader_log_end_offset=10, now_ms=500)
    assert state.last_caught_up_time_ms == 500 and state.log_end_offset == 10


def test_fetching_from_where_the_log_ended_at_the_previous_fetch_means_caught_up_then() -> None:
    first = after_fetch(FollowerState(), fetch_offset=3, leader_log_end_offset=10, now_ms=100)
    assert first.last_caught_up_time_ms == 0
    second = after_fetch(first, fetch_offset=10, leader_log_end_offset=20, now_ms=300)
    assert second.last_caught_up_time_ms == 100  # it had everything the leader had at the first fetch
    behind = after_fetch(second, fetch_offset=12, leader_log_end_offset=30, now_ms=400)
    assert behind.last_caught_up_time_ms == 100


def test_a_follower_idle_in_a_fetch_session_is_caught_up_at_the_sessions_latest_fetch() -> None:
    clock = FetchClock(last_fetch_ms=100)
    idle = FollowerState(10, 100, 10, 100, session_clock=clock)
    clock.last_fetch_ms = 700  # later fetches of the session, the partition unchanged
    assert caught_up_ms(idle) == 700
    assert out_of_sync((1, 2), 1, {2: idle}, now_ms=1500, lag_time_max_ms=1000) == []
    # Records arrive; the follower's next fetch, still from offset 10, was caught up at the last one.
    behind = after_fetch(idle, fetch_offset=10, leader_log_end_offset=15, now_ms=900)
    assert behind.last_caught_up_time_ms == 700 and behind.session_clock is None
    assert out_of_sync((1, 2), 1, {2: behind}, now_ms=1800, lag_time_max_ms=1000) == [2]


def test_a_follower_joins_the_isr_once_at_the_high_watermark_and_in_the_current_epoch() -> None:
    assert may_join_isr(FollowerState(log_end_offset=8), high_watermark_=8, leader_epoch_start_offset=5)
    assert not may_join_isr(FollowerState(log_end_offset=7), high_watermark_=8, leader_epoch_start_offset=5)
    assert not may_join_isr(FollowerState(log_end_offset=8), high_watermark_=8, leader_epoch_start_offset=9)


def test_isr_followers_not_caught_up_within_the_lag_time_are_out_of_sync() -> None:
    followers = {2: FollowerState(last_caught_up_time_ms=1000), 3: FollowerState(last_caught_up_time_ms=9000)}
    assert out_of_sync((1, 2, 3), 1, followers, now_ms=12000, lag_time_max_ms=10000) == [2]
    assert out_of_sync((1, 3), 1, followers, now_ms=12000, lag_time_max_ms=10000) == []
    # The leader itself is never out of sync.
    assert out_of_sync((1,), 1, {}, now_ms=10**9, lag_time_max_ms=1) == []


def test_truncation_keeps_what_the_leaders_epoch_holds() -> None:
    # The leader knows the follower's latest epoch 3 and it ends at 50: drop the follower's tail.
    assert truncation_offset(3, 50, 3, (3, 60), follower_log_end=60, follower_high_watermark=40) == 50
    # The follower is behind the end of that epoch: nothing to drop.
    assert truncation_offset(3, 50, 3, (3, 45), follower_log_end=45, follower_high_watermark=40) == 45


def test_truncation_when_the_leader_answers_an_older_epoch_takes_the_smaller_end_of_it() -> None:
    # KIP-279: the leader never had epoch 4; its epoch 2 ends at 30, the follower's epoch 2 ends at 25.
    assert truncation_offset(2, 30, 4, (2, 25), follower_log_end=70, follower_high_watermark=20) == 25
    assert truncation_offset(2, 30, 4, (2, 35), follower_log_end=70, follower_high_watermark=20) == 30


def test_truncation_falls_back_to_the_high_watermark_when_the_leader_knows_no_epoch() -> None:
    assert truncation_offset(-1, -1, 4, (4, 70), follower_log_end=70, follower_high_watermark=20) == 20
