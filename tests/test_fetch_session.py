"""Incremental fetch sessions (KIP-227) as plain data: the leader's cache and answer rule, the
fetcher's handler, and the two talking to each other."""

from __future__ import annotations

import itertools

from broker.fetch_session import (
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INT32_MAX,
    INVALID_SESSION_ID,
    CachedPartition,
    FetchKind,
    FetchSessionCache,
    FetchSessionHandler,
    PartitionData,
    next_epoch,
)
from minikafka_protocol.errors import Errors

A0, A1, B0 = ("a", 0), ("a", 1), ("b", 0)
FOLLOWER = 2


def cache(max_slots: int = 10, eviction_ms: int = 1000) -> FetchSessionCache:
    ids = itertools.count(100)
    return FetchSessionCache(max_slots, eviction_ms, new_id=lambda: next(ids))


def open_session(sessions: FetchSessionCache, wanted: dict, now_ms: int = 0, replica_id: int = FOLLOWER) -> int:
    context = sessions.new_context(replica_id, INVALID_SESSION_ID, INITIAL_EPOCH, wanted, [], now_ms)
    assert context.kind is FetchKind.FULL and context.session is not None
    return sessions.add(context.session, now_ms)


# -- the leader's cache ------------------------------------------------------------------------


def test_a_full_fetch_opens_a_session_and_the_next_incremental_fetch_uses_it() -> None:
    sessions = cache()
    session_id = open_session(sessions, {A0: PartitionData(5), A1: PartitionData(7)})
    assert session_id == 100 and sessions.sessions[100].epoch == 1
    context = sessions.new_context(FOLLOWER, session_id, 1, {}, [], 10)
    assert context.kind is FetchKind.INCREMENTAL and context.session is sessions.sessions[100]
    assert set(context.session.partitions) == {A0, A1}
    assert context.session.epoch == 2 and sessions.incremental_fetches == 1


def test_an_incremental_fetch_changes_only_the_partitions_it_names() -> None:
    sessions = cache()
    session_id = open_session(sessions, {A0: PartitionData(5), A1: PartitionData(7)})
    session = sessions.sessions[session_id]
    untouched = session.partitions[A1]
    untouched.replica, untouched.replica_state = object(), object()
    sessions.new_context(FOLLOWER, session_id, 1, {A0: PartitionData(9, 3, 100), B0: PartitionData(0)}, [], 10)
    assert (session.partitions[A0].fetch_offset, session.partitions[A0].current_leader_epoch) == (9, 3)
    assert session.partitions[A0].max_bytes == 100 and session.partitions[B0].fetch_offset == 0
    assert session.partitions[A1] is untouched and untouched.replica_state is not None
    assert session.partitions[A0].replica_state is None  # named: read it again


def test_forgotten_partitions_leave_the_session() -> None:
    sessions = cache()
    session_id = open_session(sessions, {A0: PartitionData(5), A1: PartitionData(7)})
    context = sessions.new_context(FOLLOWER, session_id, 1, {}, [A1, B0], 10)
    assert context.session is not None and list(context.session.partitions) == [A0]
    assert sessions.partitions_cached() == 1


def test_an_unknown_session_id_is_refused() -> None:
    sessions = cache()
    context = sessions.new_context(FOLLOWER, 12345, 1, {A0: PartitionData(0)}, [], 0)
    assert context.kind is FetchKind.ERROR and context.error is Errors.FETCH_SESSION_ID_NOT_FOUND
    session_id = open_session(sessions, {A0: PartitionData(0)})
    other_follower = sessions.new_context(3, session_id, 1, {}, [], 0)
    assert other_follower.error is Errors.FETCH_SESSION_ID_NOT_FOUND


def test_a_wrong_epoch_is_refused_and_a_replayed_epoch_too() -> None:
    sessions = cache()
    session_id = open_session(sessions, {A0: PartitionData(0)})
    assert sessions.new_context(FOLLOWER, session_id, 2, {}, [], 0).error is Errors.INVALID_FETCH_SESSION_EPOCH
    assert sessions.new_context(FOLLOWER, session_id, 1, {}, [], 0).kind is FetchKind.INCREMENTAL
    assert sessions.new_context(FOLLOWER, session_id, 1, {}, [], 0).error is Errors.INVALID_FETCH_SESSION_EPOCH
    assert sessions.new_context(FOLLOWER, session_id, -5, {}, [], 0).error is Errors.INVALID_FETCH_SESSION_EPOCH
    assert session_id in sessions.sessions  # a bad request does not close the session


def test_a_full_fetch_naming_a_session_closes_it_and_epoch_minus_one_fetches_without_one() -> None:
    sessions = cache()
    first = open_session(sessions, {A0: PartitionData(0)})
    context = sessions.new_context(FOLLOWER, first, INITIAL_EPOCH, {A0: PartitionData(0)}, [], 0)
    assert context.kind is FetchKind.FULL and first not in sessions.sessions
    assert context.session is not None and sessions.add(context.session, 0) != first
    second = context.session.id
    assert sessions.new_context(FOLLOWER, second, FINAL_EPOCH, {}, [], 0).kind is FetchKind.SESSIONLESS
    assert not sessions.sessions


def test_a_fetcher_that_may_not_open_a_session_fetches_without_one() -> None:
    sessions = cache()
    context = sessions.new_context(-1, INVALID_SESSION_ID, INITIAL_EPOCH, {A0: PartitionData(0)}, [], 0,
                                   may_open=False)
    assert context.kind is FetchKind.SESSIONLESS and not sessions.sessions
    no_slots = cache(max_slots=0)
    assert no_slots.new_context(FOLLOWER, 0, INITIAL_EPOCH, {}, [], 0).kind is FetchKind.SESSIONLESS


def test_a_full_cache_evicts_the_least_recently_used_session() -> None:
    sessions = cache(max_slots=2, eviction_ms=10_000)
    first = open_session(sessions, {A0: PartitionData(0)}, now_ms=0)
    second = open_session(sessions, {A0: PartitionData(0)}, now_ms=1, replica_id=3)
    sessions.new_context(FOLLOWER, first, 1, {}, [], 2)  # the first is now the more recently used
    third = open_session(sessions, {A0: PartitionData(0)}, now_ms=3, replica_id=4)
    assert list(sessions.sessions) == [first, third] and sessions.evictions == 1
    assert sessions.new_context(3, second, 1, {}, [], 4).error is Errors.FETCH_SESSION_ID_NOT_FOUND


def test_an_idle_session_is_dropped() -> None:
    sessions = cache(eviction_ms=1000)
    session_id = open_session(sessions, {A0: PartitionData(0)}, now_ms=0)
    assert sessions.new_context(FOLLOWER, session_id, 1, {}, [], 1000).kind is FetchKind.INCREMENTAL
    assert sessions.new_context(FOLLOWER, session_id, 2, {}, [], 2001).error is Errors.FETCH_SESSION_ID_NOT_FOUND
    assert sessions.evictions == 1


def test_epochs_wrap_past_the_largest_int32_to_one() -> None:
    assert next_epoch(INITIAL_EPOCH) == 1 and next_epoch(41) == 42 and next_epoch(INT32_MAX) == 1


def test_session_ids_are_never_zero_nor_reused() -> None:
    ids = iter([0, 7, 7, 8])
    sessions = FetchSessionCache(new_id=lambda: next(ids))
    assert open_session(sessions, {}) == 7 and open_session(sessions, {}) == 8


def test_a_session_reads_only_its_unsettled_and_changed_partitions() -> None:
    sessions = cache()
    session = sessions.sessions[open_session(sessions, {A0: PartitionData(0), A1: PartitionData(0),
                                                        B0: PartitionData(0)})]
    assert [c.tp for c in session.to_read(None)] == [A0, A1, B0]  # a full fetch reads them all
    session.read(A0, idle=True, sent_records=False)
    session.read(A1, idle=False, sent_records=False)  # an error, or no room left for its records
    session.read(B0, idle=True, sent_records=False)
    assert [c.tp for c in session.to_read(set())] == [A1]
    assert [c.tp for c in session.to_read({B0, ("x", 9)})] == [A1, B0]
    # Answered with records: read again, and after the others, until the request moves on.
    session.read(A0, idle=False, sent_records=True)
    assert list(session.partitions) == [A1, B0, A0] and [c.tp for c in session.to_read(set())] == [A1, A0]
    gone = session.update({B0: PartitionData(3)}, [A1])
    assert [c.tp for c in gone] == [A1] and [c.tp for c in session.to_read(set())] == [A0, B0]


# -- the leader's answer rule ------------------------------------------------------------------


def test_an_idle_partition_is_not_answered_and_a_new_high_watermark_is() -> None:
    cached = CachedPartition(A0, 10)
    assert cached.must_respond(Errors.NONE, False, 10, 0)  # the first answer always goes out
    assert not cached.must_respond(Errors.NONE, False, 10, 0)  # idle
    assert cached.must_respond(Errors.NONE, False, 11, 0)  # the high watermark moved
    assert cached.high_watermark == 11 and not cached.must_respond(Errors.NONE, False, 11, 0)
    assert cached.must_respond(Errors.NONE, False, 11, 4)  # the log start offset moved
    assert cached.must_respond(Errors.NONE, True, 11, 4)  # records


def test_an_error_is_always_answered_and_so_is_the_first_answer_after_it() -> None:
    cached = CachedPartition(A0, 10, replica=object(), replica_state=object())
    cached.must_respond(Errors.NONE, False, 10, 0)
    assert cached.must_respond(Errors.NOT_LEADER_OR_FOLLOWER, False, -1, -1)
    assert cached.replica is None and cached.replica_state is None  # not idle: read it next time
    assert cached.must_respond(Errors.FENCED_LEADER_EPOCH, False, -1, -1)
    assert cached.must_respond(Errors.NONE, False, 10, 0)  # the same offsets as before the error


# -- the fetcher's handler ---------------------------------------------------------------------


def test_the_handler_names_only_what_changed_and_forgets_what_it_no_longer_fetches() -> None:
    handler = FetchSessionHandler()
    assert handler.wants_full
    full = handler.build_full({A0: PartitionData(5, 1), A1: PartitionData(7, 1)})
    assert full.epoch == INITIAL_EPOCH and full.session_id == INVALID_SESSION_ID and set(full.to_send) == {A0, A1}
    assert handler.handle_response(full, Errors.NONE, 100) and not handler.wants_full
    incremental = handler.build_incremental({A0: PartitionData(5, 1), A1: PartitionData(9, 1), B0: PartitionData(0, 2)})
    assert (incremental.session_id, incremental.epoch, incremental.session_size) == (100, 1, 3)
    assert dict(incremental.to_send) == {A1: PartitionData(9, 1), B0: PartitionData(0, 2)}
    assert handler.handle_response(incremental, Errors.NONE, 100)
    fewer = handler.build_incremental({A0: None, B0: PartitionData(0, 3), ("x", 1): None})
    assert fewer.epoch == 2 and dict(fewer.to_send) == {B0: PartitionData(0, 3)} and fewer.to_forget == [A0]
    assert fewer.session_size == 2
    handler.handle_response(fewer, Errors.NONE, 100)
    assert handler.sent == {A1: PartitionData(9, 1), B0: PartitionData(0, 3)}


def test_the_handler_starts_over_after_a_session_error_or_a_lost_answer() -> None:
    handler = FetchSessionHandler()
    handler.handle_response(handler.build_full({A0: PartitionData(0)}), Errors.NONE, 100)
    wrong_epoch = handler.build_incremental({})
    assert not handler.handle_response(wrong_epoch, Errors.INVALID_FETCH_SESSION_EPOCH, 0)
    assert handler.wants_full and handler.sent == {}
    again = handler.build_full({A0: PartitionData(0)})
    assert (again.session_id, again.epoch) == (100, INITIAL_EPOCH) and again.to_send  # closes 100, opens anew
    handler.handle_response(again, Errors.NONE, 101)
    assert not handler.handle_response(handler.build_incremental({}), Errors.FETCH_SESSION_ID_NOT_FOUND, 0)
    assert (handler.session_id, handler.epoch) == (INVALID_SESSION_ID, INITIAL_EPOCH)
    handler.handle_response(handler.build_full({A0: PartitionData(0)}), Errors.NONE, 102)
    handler.handle_error()
    assert handler.wants_full and handler.session_id == 102


def test_a_leader_without_room_keeps_the_handler_on_full_fetches() -> None:
    handler = FetchSessionHandler()
    assert handler.handle_response(handler.build_full({A0: PartitionData(0)}), Errors.NONE, INVALID_SESSION_ID)
    assert handler.wants_full


def test_handler_and_cache_agree_on_the_session_over_many_requests() -> None:
    sessions, handler = cache(), FetchSessionHandler()
    fetched = {A0: PartitionData(0), A1: PartitionData(0)}
    changes: dict = {}
    for step in range(6):
        request = handler.build_full(fetched) if handler.wants_full else handler.build_incremental(changes)
        context = sessions.new_context(FOLLOWER, request.session_id, request.epoch, request.to_send,
                                       request.to_forget, step)
        assert context.session is not None
        session_id = sessions.add(context.session, step) if context.kind is FetchKind.FULL else context.session.id
        assert handler.handle_response(request, Errors.NONE, session_id)
        session = sessions.sessions[session_id]
        assert {tp: (c.fetch_offset, c.current_leader_epoch, c.max_bytes) for tp, c in session.partitions.items()} \
            == {tp: tuple(d) for tp, d in fetched.items()} and request.session_size == len(fetched)
        changes = {A0: PartitionData(step + 1), B0: None} if step % 2 else {A1: None, B0: PartitionData(step)}
        fetched = {**fetched, **changes}
        fetched = {tp: d for tp, d in fetched.items() if d is not None}
