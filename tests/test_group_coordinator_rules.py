"""The group coordinator's rules (in the spirit of Kafka's GroupCoordinatorTest), as plain asserts
on the machine: requests and the time go in, answers and stores come out. Nothing runs in the
background; the clock moves only when a test moves it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

import pytest

from broker.group.group_coordinator_rules import (
    NEW_MEMBER_JOIN_TIMEOUT_MS,
    GroupApi,
    GroupConfig,
    GroupCoordinatorRules,
    JoinGroupRequest,
    JoinGroupResult,
    MemberIdentity,
    OffsetFetchPartition,
    Outcome,
    StoreGroup,
    StoreKind,
    StoreOffsets,
    SyncGroupRequest,
    SyncGroupResult,
    validate_group_status,
)
from broker.group.group_metadata import GroupMetadata, GroupState, OffsetAndMetadata
from broker.group.member_metadata import Protocol
from broker.group.offsets_log import (
    GroupMetadataKey,
    group_metadata_record,
    group_metadata_value,
    load_groups_and_offsets,
    offset_commit_records,
    read_group_message_value,
    read_message_key,
)
from minikafka_protocol.errors import Errors

S = GroupState

# Kafka's GroupCoordinatorTest settings: small numbers, so that time is easy to follow.
GROUP_MIN_SESSION_TIMEOUT = 10
GROUP_MAX_SESSION_TIMEOUT = 10 * 60 * 1000
GROUP_MAX_SIZE = 4
DEFAULT_REBALANCE_TIMEOUT = 500
DEFAULT_SESSION_TIMEOUT = 500
GROUP_INITIAL_REBALANCE_DELAY = 50
CONFIG = GroupConfig(GROUP_MIN_SESSION_TIMEOUT, GROUP_MAX_SESSION_TIMEOUT, GROUP_MAX_SIZE,
                     GROUP_INITIAL_REBALANCE_DELAY)

GROUP_ID = "groupId"
PROTOCOL_TYPE = "consumer"
PROTOCOLS: list[Protocol] = [("range", b"")]
PROTOCOL_SUPERSET: list[Protocol] = [("range", b""), ("roundrobin", b"")]
CLIENT_ID = "consumer-test"


class Harness:
    """The rules, a clock, and the answers delivered so far to parked requests. Group stores are
    'written' at once with ``store_error`` unless ``hold_stores`` keeps them for the test."""

    def __init__(self, config: GroupConfig = CONFIG) -> None:
        ids = itertools.count(1)
        self.rules = GroupCoordinatorRules(config, new_member_id_suffix=lambda: f"uuid{next(ids)}")
        self.now = 0
        self.joins: dict[str, JoinGroupResult] = {}
        self.syncs: dict[str, SyncGroupResult] = {}
        self.stores: list[StoreGroup] = []  # every group store the rules asked for
        self.held: list[StoreGroup] = []
        self.hold_stores = False
        self.store_error = Errors.NONE

    @property
    def group(self) -> GroupMetadata:
        return self.rules.groups[GROUP_ID]

    def absorb(self, out: Outcome[Any]) -> Outcome[Any]:
        for member_id, result in out.joins.items():
            self.joins[member_id] = result
        for member_id, result in out.syncs.items():
            self.syncs[member_id] = result
        for store in out.stores:
            if not isinstance(store, StoreGroup):
                continue  # offsets are written by commit()
            self.stores.append(store)
            if self.hold_stores:
                self.held.append(store)
            else:
                self.absorb(self.rules.on_group_stored(store, self.store_error, self.now))
        return out

    def release_stores(self, error: Errors = Errors.NONE) -> None:
        held, self.held = self.held, []
        for store in held:
            self.absorb(self.rules.on_group_stored(store, error, self.now))

    def advance(self, ms: int) -> None:
        self.now += ms
        self.absorb(self.rules.poll(self.now))

    # -- requests ------------------------------------------------------------------------------

    def send_join(self, member_id: str = "", instance_id: str | None = None,
                  protocols: list[Protocol] | None = None, protocol_type: str = PROTOCOL_TYPE,
                  session_timeout: int = DEFAULT_SESSION_TIMEOUT, rebalance_timeout: int = DEFAULT_REBALANCE_TIMEOUT,
                  require_known_member_id: bool = True, group_id: str = GROUP_ID,
                  supports_skipping_assignment: bool = False) -> Outcome[JoinGroupResult]:
        req = JoinGroupRequest(
            group_id=group_id,
            member_id=member_id,
            client_id=CLIENT_ID,
            protocol_type=protocol_type,
            protocols=PROTOCOLS if protocols is None else protocols,
            session_timeout_ms=session_timeout,
            rebalance_timeout_ms=rebalance_timeout,
            group_instance_id=instance_id,
            client_host="localhost",
            require_known_member_id=require_known_member_id,
            supports_skipping_assignment=supports_skipping_assignment,
        )
        out = self.rules.handle_join_group(req, self.now)
        self.absorb(out)
        return out

    def join_answer(self, out: Outcome[JoinGroupResult]) -> JoinGroupResult | None:
        if out.response is not None:
            return out.response
        assert out.parked_member_id is not None
        return self.joins.get(out.parked_member_id)

    def dynamic_join(self, **kw: object) -> str:
        """KIP-394's two steps: ask for a member id, then join with it. Returns the member id."""
        first = self.send_join(**kw)
        assert first.response is not None and first.response.error is Errors.MEMBER_ID_REQUIRED
        member_id = first.response.member_id
        self.send_join(member_id=member_id, **kw)
        return member_id

    def await_join(self, member_id: str, max_wait: int = 10 * 60 * 1000) -> JoinGroupResult:
        waited = 0
        while member_id not in self.joins:
            assert waited < max_wait, f"no JoinGroup answer for {member_id}"
            self.advance(1)
            waited += 1
        return self.joins.pop(member_id)

    def sync(self, member_id: str, generation: int, assignments: Mapping[str, bytes] | None = None,
             instance_id: str | None = None, protocol_type: str | None = None,
             protocol_name: str | None = None) -> Outcome[SyncGroupResult]:
        req = SyncGroupRequest(GROUP_ID, generation, member_id, assignments or {}, instance_id, protocol_type,
                               protocol_name)
        out = self.rules.handle_sync_group(req, self.now)
        self.absorb(out)
        return out

    def sync_answer(self, out: Outcome[SyncGroupResult]) -> SyncGroupResult | None:
        if out.response is not None:
            return out.response
        assert out.parked_member_id is not None
        return self.syncs.get(out.parked_member_id)

    def heartbeat(self, member_id: str, generation: int, instance_id: str | None = None) -> Errors:
        out = self.rules.handle_heartbeat(GROUP_ID, member_id, generation, self.now, instance_id)
        self.absorb(out)
        assert out.response is not None
        return out.response

    def leave(self, *members: MemberIdentity, group_id: str = GROUP_ID) -> list[Errors]:
        out = self.rules.handle_leave_group(group_id, members, self.now)
        self.absorb(out)
        assert out.response is not None
        assert out.response.error is Errors.NONE
        return [m.error for m in out.response.members]

    def commit(self, member_id: str, generation: int, offsets: Mapping[tuple[str, int], OffsetAndMetadata],
               instance_id: str | None = None, append_error: Errors = Errors.NONE,
               group_id: str = GROUP_ID) -> dict[tuple[str, int], Errors]:
        out = self.rules.handle_commit_offsets(group_id, member_id, generation, offsets, self.now, instance_id)
        self.absorb(out)
        offset_stores = [s for s in out.stores if isinstance(s, StoreOffsets)]
        if out.response is not None:
            assert not offset_stores
            return out.response
        [store] = offset_stores
        return self.rules.on_offsets_stored(store, append_error)

    # -- scenarios -----------------------------------------------------------------------------

    def join_single_member(self, **kw: object) -> JoinGroupResult:
        member_id = self.dynamic_join(**kw)
        return self.await_join(member_id)

    def stable_group(self, n: int, **kw: object) -> list[str]:
        """n dynamic members through one join and one sync; returns their ids, leader first."""
        ids = [self.dynamic_join(**kw) for _ in range(n)]
        results = {mid: self.await_join(mid) for mid in ids}
        leader = results[ids[0]].leader_id
        assert leader == ids[0]
        generation = results[leader].generation_id
        for mid in ids[1:]:
            self.sync(mid, generation)
        self.sync(leader, generation, {mid: f"assignment-{mid}".encode() for mid in ids})
        for mid in ids:
            assert self.syncs.pop(mid).error is Errors.NONE
        assert self.group.is_(S.STABLE)
        return ids

    def static_group(self, leader_instance: str = "leader", follower_instance: str = "follower",
                     **kw: object) -> tuple[str, str, int]:
        """Kafka's staticMembersJoinAndRebalance: returns (leader id, follower id, generation)."""
        lead = self.send_join(instance_id=leader_instance, **kw)
        follow = self.send_join(instance_id=follower_instance, **kw)
        leader_id, follower_id = lead.parked_member_id, follow.parked_member_id
        assert leader_id is not None and follower_id is not None
        lead_result, follow_result = self.await_join(leader_id), self.await_join(follower_id)
        assert lead_result.leader_id == leader_id and follow_result.error is Errors.NONE
        generation = lead_result.generation_id
        self.sync(follower_id, generation)
        self.sync(leader_id, generation, {leader_id: b"l", follower_id: b"f"})
        assert self.syncs.pop(leader_id).error is Errors.NONE
        assert self.syncs.pop(follower_id).error is Errors.NONE
        return leader_id, follower_id, generation


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- group status ------------------------------------------------------------------------------


def test_validate_group_status() -> None:
    assert validate_group_status("g", GroupApi.JOIN_GROUP) is None
    for api in (GroupApi.JOIN_GROUP, GroupApi.SYNC_GROUP, GroupApi.HEARTBEAT, GroupApi.LEAVE_GROUP):
        assert validate_group_status("", api) is Errors.INVALID_GROUP_ID
    for api in (GroupApi.OFFSET_COMMIT, GroupApi.OFFSET_FETCH):
        assert validate_group_status("", api) is None
    assert validate_group_status("g", GroupApi.JOIN_GROUP, is_active=False) is Errors.COORDINATOR_NOT_AVAILABLE
    assert validate_group_status("g", GroupApi.JOIN_GROUP, is_loading=True) is Errors.COORDINATOR_LOAD_IN_PROGRESS
    assert validate_group_status("g", GroupApi.SYNC_GROUP, is_loading=True) is Errors.REBALANCE_IN_PROGRESS
    assert validate_group_status("g", GroupApi.HEARTBEAT, is_loading=True) is Errors.NONE
    assert validate_group_status("g", GroupApi.JOIN_GROUP, is_local=False) is Errors.NOT_COORDINATOR


# -- JoinGroup ---------------------------------------------------------------------------------


def test_join_group_invalid_group_id(h: Harness) -> None:
    out = h.send_join(group_id="")
    assert out.response is not None and out.response.error is Errors.INVALID_GROUP_ID


@pytest.mark.parametrize("session_timeout", [GROUP_MIN_SESSION_TIMEOUT - 1, GROUP_MAX_SESSION_TIMEOUT + 1])
def test_join_group_session_timeout_out_of_range(h: Harness, session_timeout: int) -> None:
    out = h.send_join(session_timeout=session_timeout)
    assert out.response == JoinGroupResult("", Errors.INVALID_SESSION_TIMEOUT)
    assert GROUP_ID not in h.rules.groups


def test_join_group_unknown_member_for_new_group(h: Harness) -> None:
    out = h.send_join(member_id="memberId")
    assert out.response is not None and out.response.error is Errors.UNKNOWN_MEMBER_ID
    assert GROUP_ID not in h.rules.groups


def test_first_join_gets_a_client_id_based_member_id_and_member_id_required() -> None:
    rules = GroupCoordinatorRules(CONFIG)
    req = JoinGroupRequest(GROUP_ID, "", CLIENT_ID, PROTOCOL_TYPE, PROTOCOLS, DEFAULT_SESSION_TIMEOUT,
                           DEFAULT_REBALANCE_TIMEOUT)
    out = rules.handle_join_group(req, 0)
    assert out.response is not None and out.response.error is Errors.MEMBER_ID_REQUIRED
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert re.fullmatch(f"{CLIENT_ID}-{uuid4}", out.response.member_id)
    group = rules.groups[GROUP_ID]
    # It is not a member until it comes back with the id.
    assert group.is_(S.EMPTY) and not group.members
    assert group.is_pending_member(out.response.member_id)
    assert group.pending_members[out.response.member_id] == DEFAULT_SESSION_TIMEOUT


def test_valid_join_group(h: Harness) -> None:
    member_id = h.dynamic_join()
    assert h.group.is_(S.PREPARING_REBALANCE)
    result = h.await_join(member_id)
    assert result.error is Errors.NONE
    assert result.member_id == member_id
    assert result.generation_id == 1
    assert result.leader_id == member_id
    assert result.protocol_type == PROTOCOL_TYPE and result.protocol_name == "range"
    assert [m.member_id for m in result.members] == [member_id]
    assert h.group.is_(S.COMPLETING_REBALANCE)


def test_join_group_without_required_known_member_id_is_parked_directly(h: Harness) -> None:
    out = h.send_join(require_known_member_id=False)
    assert out.response is None
    assert out.parked_member_id == f"{CLIENT_ID}-uuid1"
    assert h.await_join(f"{CLIENT_ID}-uuid1").error is Errors.NONE


@pytest.mark.parametrize(("protocol_type", "protocols"), [("", PROTOCOLS), (PROTOCOL_TYPE, [])])
def test_join_group_with_empty_protocol_type_or_protocols(h: Harness, protocol_type: str,
                                                          protocols: list[Protocol]) -> None:
    out = h.send_join(protocol_type=protocol_type, protocols=protocols)
    assert out.response is not None and out.response.error is Errors.INCONSISTENT_GROUP_PROTOCOL


def test_join_group_inconsistent_protocol_type(h: Harness) -> None:
    h.dynamic_join()
    out = h.send_join(protocol_type="connect")
    assert out.response is not None and out.response.error is Errors.INCONSISTENT_GROUP_PROTOCOL


def test_join_group_inconsistent_group_protocol(h: Harness) -> None:
    h.dynamic_join(protocols=[("range", b"")])
    out = h.send_join(protocols=[("roundrobin", b"")])
    assert out.response is not None and out.response.error is Errors.INCONSISTENT_GROUP_PROTOCOL


def test_join_group_unknown_member_of_existing_group(h: Harness) -> None:
    h.join_single_member()
    out = h.send_join(member_id="otherMemberId")
    assert out.response == JoinGroupResult("otherMemberId", Errors.UNKNOWN_MEMBER_ID)


def test_join_group_max_size_reached_while_rebalancing(h: Harness) -> None:
    # Everyone gets a member id while the group is Empty; the fifth to join with it is turned away.
    member_ids = []
    for _ in range(GROUP_MAX_SIZE + 1):
        first = h.send_join().response
        assert first is not None and first.error is Errors.MEMBER_ID_REQUIRED
        member_ids.append(first.member_id)
    outs = [h.send_join(member_id=mid) for mid in member_ids]
    assert outs[-1].response == JoinGroupResult("", Errors.GROUP_MAX_SIZE_REACHED)
    # A newcomer is refused at once while the group is full of rejoined members...
    assert h.send_join().response == JoinGroupResult("", Errors.GROUP_MAX_SIZE_REACHED)
    # ...but a member already parked may always rejoin.
    assert h.send_join(member_id=member_ids[0]).response is None
    h.advance(GROUP_INITIAL_REBALANCE_DELAY)  # members arrived during the delay: it is extended once
    assert not h.joins
    h.advance(GROUP_INITIAL_REBALANCE_DELAY)
    assert [h.joins.pop(mid).error for mid in member_ids[:-1]] == [Errors.NONE] * GROUP_MAX_SIZE
    assert h.group.size == GROUP_MAX_SIZE
    # Accepted members can rejoin while the group completes its rebalance; the others cannot.
    rejoin = h.join_answer(h.send_join(member_id=member_ids[0]))
    assert rejoin is not None and rejoin.error is Errors.NONE
    assert h.send_join(member_id=member_ids[-1]).response == JoinGroupResult("", Errors.GROUP_MAX_SIZE_REACHED)


def test_join_group_max_size_reached_when_stable(h: Harness) -> None:
    h.stable_group(GROUP_MAX_SIZE)
    first = h.send_join()
    assert first.response is not None
    out = h.send_join(member_id=first.response.member_id)
    assert out.response is not None and out.response.error is Errors.GROUP_MAX_SIZE_REACHED
    assert h.group.is_(S.STABLE)


def test_join_group_from_unchanged_follower_does_not_rebalance(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    generation = h.group.generation_id
    out = h.send_join(member_id=follower)
    answer = h.join_answer(out)
    assert answer is not None and answer.error is Errors.NONE
    assert answer.generation_id == generation and answer.leader_id == leader and answer.members == ()
    assert h.group.is_(S.STABLE)


def test_join_group_from_unchanged_leader_rebalances(h: Harness) -> None:
    [leader] = h.stable_group(1)
    out = h.send_join(member_id=leader)
    # Everyone (the leader alone) has rejoined: the join phase ends at once, with a new generation.
    answer = out.join_answer
    assert answer is not None and answer.error is Errors.NONE and answer.generation_id == 2
    assert h.group.is_(S.COMPLETING_REBALANCE)


def test_join_group_with_changed_metadata_in_stable_rebalances(h: Harness) -> None:
    _, follower = h.stable_group(2)
    out = h.send_join(member_id=follower, protocols=[("range", b"new-subscription")])
    assert out.response is None and out.parked_member_id == follower
    assert h.group.is_(S.PREPARING_REBALANCE)


def test_rejoin_during_completing_rebalance_with_same_metadata_gets_the_same_answer(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    first = h.await_join(a)
    h.await_join(b)
    again = h.join_answer(h.send_join(member_id=a))
    assert again == first  # the leader's answer, members included
    assert h.group.is_(S.COMPLETING_REBALANCE)
    follower_again = h.join_answer(h.send_join(member_id=b))
    assert follower_again is not None and follower_again.members == () and follower_again.generation_id == 1


# -- the initial rebalance delay ---------------------------------------------------------------


def test_initial_rebalance_delay_on_empty_group(h: Harness) -> None:
    member_id = h.dynamic_join()
    h.advance(GROUP_INITIAL_REBALANCE_DELAY - 1)
    assert member_id not in h.joins
    h.advance(1)
    assert h.joins[member_id].error is Errors.NONE


def test_initial_rebalance_delay_is_extended_when_new_members_join() -> None:
    h = Harness()
    rebalance_timeout = GROUP_INITIAL_REBALANCE_DELAY * 3
    first = h.dynamic_join(rebalance_timeout=rebalance_timeout)
    h.advance(GROUP_INITIAL_REBALANCE_DELAY - 1)
    second = h.dynamic_join(rebalance_timeout=rebalance_timeout)
    h.advance(1)  # the first delay ends, a member arrived meanwhile: wait one more delay
    h.advance(GROUP_INITIAL_REBALANCE_DELAY - 1)
    assert first not in h.joins and second not in h.joins
    h.advance(1)
    assert h.joins[first].error is Errors.NONE and h.joins[second].error is Errors.NONE
    assert h.now == 2 * GROUP_INITIAL_REBALANCE_DELAY


def test_initial_rebalance_delay_is_capped_by_the_rebalance_timeout() -> None:
    h = Harness()
    rebalance_timeout = GROUP_INITIAL_REBALANCE_DELAY * 2
    ids = [h.dynamic_join(rebalance_timeout=rebalance_timeout) for _ in range(2)]
    h.advance(GROUP_INITIAL_REBALANCE_DELAY + 1)
    ids.append(h.dynamic_join(rebalance_timeout=rebalance_timeout))  # would extend again, but time is up
    h.advance(GROUP_INITIAL_REBALANCE_DELAY - 2)
    assert not any(mid in h.joins for mid in ids)
    h.advance(1)
    assert h.now == rebalance_timeout
    assert all(h.joins[mid].error is Errors.NONE for mid in ids)


def test_no_initial_delay_once_the_group_has_had_a_generation(h: Harness) -> None:
    [leader] = h.stable_group(1)
    h.leave(MemberIdentity(leader))
    assert h.group.is_(S.EMPTY) and h.group.generation_id == 2
    # Empty again: the delay applies, but a newcomer no longer extends it (generation is not 0).
    a = h.dynamic_join()
    h.advance(10)
    b = h.dynamic_join()
    h.advance(GROUP_INITIAL_REBALANCE_DELAY - 10)
    assert h.joins[a].error is Errors.NONE and h.joins[b].error is Errors.NONE


# -- SyncGroup ---------------------------------------------------------------------------------


def test_sync_group_from_unknown_group(h: Harness) -> None:
    assert h.sync("memberId", 1).response == SyncGroupResult(Errors.UNKNOWN_MEMBER_ID)


def test_sync_group_invalid_group_id() -> None:
    out = GroupCoordinatorRules(CONFIG).handle_sync_group(SyncGroupRequest("", 1, "m"), 0)
    assert out.response == SyncGroupResult(Errors.INVALID_GROUP_ID)


def test_sync_group_from_unknown_member(h: Harness) -> None:
    result = h.join_single_member()
    out = h.sync("unknownMemberId", result.generation_id)
    assert out.response == SyncGroupResult(Errors.UNKNOWN_MEMBER_ID)


def test_sync_group_from_illegal_generation(h: Harness) -> None:
    result = h.join_single_member()
    out = h.sync(result.member_id, result.generation_id + 1)
    assert out.response == SyncGroupResult(Errors.ILLEGAL_GENERATION)


def test_sync_group_during_rebalance(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    h.send_join(member_id=leader)  # starts a rebalance; the follower has not rejoined yet
    assert h.group.is_(S.PREPARING_REBALANCE)
    assert h.sync(follower, 1).response == SyncGroupResult(Errors.REBALANCE_IN_PROGRESS)


def test_sync_group_after_the_group_emptied(h: Harness) -> None:
    [leader] = h.stable_group(1)
    h.leave(MemberIdentity(leader))
    assert h.group.is_(S.EMPTY)
    assert h.sync(leader, 2).response == SyncGroupResult(Errors.UNKNOWN_MEMBER_ID)


@pytest.mark.parametrize(("protocol_type", "protocol_name", "error"), [
    (None, None, Errors.NONE),
    (PROTOCOL_TYPE, "range", Errors.NONE),
    ("connect", None, Errors.INCONSISTENT_GROUP_PROTOCOL),
    (None, "roundrobin", Errors.INCONSISTENT_GROUP_PROTOCOL),
])
def test_sync_group_checks_protocol_type_and_name_when_given(h: Harness, protocol_type: str | None,
                                                             protocol_name: str | None, error: Errors) -> None:
    result = h.join_single_member()
    out = h.sync(result.member_id, 1, {result.member_id: b"a"}, protocol_type=protocol_type,
                 protocol_name=protocol_name)
    answer = h.sync_answer(out)
    assert answer is not None and answer.error is error
    if error is Errors.NONE:
        assert answer == SyncGroupResult(Errors.NONE, b"a", PROTOCOL_TYPE, "range")


def test_sync_group_follower_before_leader_is_parked_until_the_assignment_is_stored(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    h.await_join(a)
    h.await_join(b)
    follower_sync = h.sync(b, 1, {a: b"wrong", b: b"ignored"})  # a follower's assignments are not taken
    assert follower_sync.response is None and follower_sync.parked_member_id == b
    assert not h.stores
    h.hold_stores = True
    leader_sync = h.sync(a, 1, {a: b"for-a", b: b"for-b"})
    assert leader_sync.response is None
    [store] = h.held
    assert store.kind is StoreKind.SYNC_ASSIGNMENT and store.generation_id == 1
    assert dict(store.assignment) == {a: b"for-a", b: b"for-b"}
    assert read_message_key(group_metadata_record(store.group)[0]) == GroupMetadataKey(2, GROUP_ID)
    assert h.group.is_(S.COMPLETING_REBALANCE) and b not in h.syncs
    h.release_stores()
    assert h.syncs[a] == SyncGroupResult(Errors.NONE, b"for-a", PROTOCOL_TYPE, "range")
    assert h.syncs[b] == SyncGroupResult(Errors.NONE, b"for-b", PROTOCOL_TYPE, "range")
    assert h.group.is_(S.STABLE)


def test_sync_group_follower_after_leader_is_answered_at_once(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    h.await_join(a)
    h.await_join(b)
    h.sync(a, 1, {a: b"for-a", b: b"for-b"})
    assert h.group.is_(S.STABLE)
    assert h.sync(b, 1).response == SyncGroupResult(Errors.NONE, b"for-b", PROTOCOL_TYPE, "range")


def test_sync_group_leader_leaving_out_a_member_gives_it_an_empty_assignment(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    h.await_join(a)
    h.await_join(b)
    h.sync(b, 1)
    h.sync(a, 1, {a: b"only-a"})
    assert h.syncs[b] == SyncGroupResult(Errors.NONE, b"", PROTOCOL_TYPE, "range")


def test_sync_group_store_failure_is_told_to_every_waiting_member_and_rebalances(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    h.await_join(a)
    h.await_join(b)
    h.sync(b, 1)
    h.store_error = Errors.NOT_LEADER_OR_FOLLOWER
    h.sync(a, 1, {a: b"x", b: b"y"})
    assert h.syncs[a] == SyncGroupResult(Errors.NOT_COORDINATOR)
    assert h.syncs[b] == SyncGroupResult(Errors.NOT_COORDINATOR)
    assert h.group.is_(S.PREPARING_REBALANCE)
    assert all(m.assignment == b"" for m in h.group.members.values())


def test_sync_group_store_completing_after_the_group_moved_on_changes_nothing(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    h.await_join(a)
    h.await_join(b)
    h.hold_stores = True
    h.sync(a, 1, {a: b"x", b: b"y"})
    h.send_join(member_id=b, protocols=[("range", b"changed")])  # rebalance while the record is written
    assert h.syncs[a] == SyncGroupResult(Errors.REBALANCE_IN_PROGRESS)
    h.release_stores()
    assert h.group.is_(S.PREPARING_REBALANCE)


def test_a_store_holds_the_group_as_decided_though_the_same_step_goes_on_to_change_it(h: Harness) -> None:
    a, _b = h.stable_group(2)
    h.send_join(member_id=a)  # the leader rejoins: a rebalance the other member misses
    h.absorb(h.rules.handle_leave_group(GROUP_ID, [MemberIdentity(a)], h.now))
    h.hold_stores = True
    h.now += 10 * DEFAULT_SESSION_TIMEOUT  # the join phase and the last session run out unseen
    # The new member's JoinGroup first ends the join phase with nobody (an empty group to store), then joins.
    out = h.send_join(require_known_member_id=False)
    [empty] = [s for s in out.stores if isinstance(s, StoreGroup)]
    assert empty.kind is StoreKind.EMPTY_GROUP and empty.group.members == () and empty.generation_id == 2
    assert h.group.is_(S.PREPARING_REBALANCE) and h.group.size == 1
    stored = read_group_message_value(GROUP_ID, group_metadata_value(empty.group))
    assert stored is not None and stored.is_(S.EMPTY) and stored.generation_id == 2


# -- Heartbeat ---------------------------------------------------------------------------------


def test_heartbeat_unknown_group(h: Harness) -> None:
    assert h.heartbeat("memberId", 1) is Errors.UNKNOWN_MEMBER_ID


def test_heartbeat_invalid_group_id() -> None:
    assert GroupCoordinatorRules(CONFIG).handle_heartbeat("", "m", 1, 0).response is Errors.INVALID_GROUP_ID


def test_heartbeat_unknown_member_of_existing_group(h: Harness) -> None:
    result = h.join_single_member()
    h.sync(result.member_id, 1, {result.member_id: b""})
    assert h.heartbeat("otherMemberId", 1) is Errors.UNKNOWN_MEMBER_ID


def test_heartbeat_illegal_generation(h: Harness) -> None:
    [leader] = h.stable_group(1)
    assert h.heartbeat(leader, 2) is Errors.ILLEGAL_GENERATION


def test_valid_heartbeat(h: Harness) -> None:
    [leader] = h.stable_group(1)
    assert h.heartbeat(leader, 1) is Errors.NONE


def test_heartbeat_during_completing_rebalance_is_fine(h: Harness) -> None:
    result = h.join_single_member()
    assert h.group.is_(S.COMPLETING_REBALANCE)
    assert h.heartbeat(result.member_id, 1) is Errors.NONE


def test_heartbeat_during_rebalance_says_rebalance_in_progress(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    h.send_join(member_id=leader)
    assert h.heartbeat(follower, 1) is Errors.REBALANCE_IN_PROGRESS


def test_heartbeat_in_empty_group(h: Harness) -> None:
    [leader] = h.stable_group(1)
    h.leave(MemberIdentity(leader))
    assert h.group.is_(S.EMPTY)
    assert h.heartbeat(leader, 2) is Errors.UNKNOWN_MEMBER_ID


# -- sessions ----------------------------------------------------------------------------------


def test_session_timeout_removes_the_member_and_the_group_rebalances(h: Harness) -> None:
    [leader] = h.stable_group(1)
    assert h.rules.next_deadline_ms() == h.now + DEFAULT_SESSION_TIMEOUT
    h.advance(DEFAULT_SESSION_TIMEOUT - 1)
    assert h.group.has(leader)
    h.advance(1)
    assert not h.group.has(leader)
    # Nobody left: the rebalance ends at once in an Empty generation, written to the log.
    assert h.group.is_(S.EMPTY) and h.group.generation_id == 2
    assert h.stores[-1].kind is StoreKind.EMPTY_GROUP
    assert h.heartbeat(leader, 1) is Errors.UNKNOWN_MEMBER_ID


def test_heartbeat_maintains_session(h: Harness) -> None:
    [leader] = h.stable_group(1)
    for _ in range(5):
        h.advance(DEFAULT_SESSION_TIMEOUT // 2)
        assert h.heartbeat(leader, 1) is Errors.NONE
    h.advance(DEFAULT_SESSION_TIMEOUT - 1)
    assert h.group.has(leader)


def test_commit_maintains_session(h: Harness) -> None:
    [leader] = h.stable_group(1)
    h.advance(DEFAULT_SESSION_TIMEOUT // 2)
    assert h.commit(leader, 1, {("t", 0): OffsetAndMetadata(0)}) == {("t", 0): Errors.NONE}
    h.advance(DEFAULT_SESSION_TIMEOUT // 2 + 100)
    assert h.heartbeat(leader, 1) is Errors.NONE


def test_session_timeout_during_rebalance(h: Harness) -> None:
    first = h.join_single_member(rebalance_timeout=2000, session_timeout=1000)
    h.sync(first.member_id, 1, {first.member_id: b""})
    other = h.dynamic_join()
    h.advance(500)
    assert h.heartbeat(first.member_id, 1) is Errors.REBALANCE_IN_PROGRESS
    # The first member never rejoins; its session runs out before the rebalance timeout does.
    h.advance(1000)
    assert h.heartbeat(first.member_id, 1) is Errors.UNKNOWN_MEMBER_ID
    result = h.await_join(other)
    assert result.error is Errors.NONE and result.leader_id == other and result.generation_id == 2


def test_members_parked_in_join_do_not_expire_by_session(h: Harness) -> None:
    leader, follower = h.stable_group(2, session_timeout=100, rebalance_timeout=1000)
    h.send_join(member_id=leader, session_timeout=100, rebalance_timeout=1000)  # the leader waits in JoinGroup
    for _ in range(5):
        h.advance(90)
        assert h.heartbeat(follower, 1) is Errors.REBALANCE_IN_PROGRESS
    assert h.group.has(leader)


def test_new_member_that_never_completes_its_join_expires(h: Harness) -> None:
    # The old member keeps its session alive but never rejoins; the rebalance timeout is long.
    [old] = h.stable_group(1, rebalance_timeout=2 * NEW_MEMBER_JOIN_TIMEOUT_MS,
                           session_timeout=GROUP_MAX_SESSION_TIMEOUT)
    new = h.dynamic_join(rebalance_timeout=2 * NEW_MEMBER_JOIN_TIMEOUT_MS)
    for _ in range(NEW_MEMBER_JOIN_TIMEOUT_MS // 100_000):
        h.advance(100_000)
        h.heartbeat(old, 1)
    assert h.joins[new] == JoinGroupResult("", Errors.UNKNOWN_MEMBER_ID)
    assert not h.group.has(new)
    assert h.group.is_(S.PREPARING_REBALANCE)


# -- pending members (KIP-394) -----------------------------------------------------------------


def test_pending_member_that_never_joins_expires_after_its_session_timeout(h: Harness) -> None:
    [first] = h.stable_group(1)
    h.advance(100)
    out = h.send_join()
    assert out.response is not None and out.response.error is Errors.MEMBER_ID_REQUIRED
    assert h.group.is_(S.STABLE) and len(h.group.pending_members) == 1
    h.advance(300)
    assert h.heartbeat(first, 1) is Errors.NONE
    h.advance(300)
    assert not h.group.pending_members
    assert set(h.group.members) == {first}
    assert h.group.is_(S.STABLE)


def test_join_completes_when_the_pending_member_joins(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    pending = h.send_join().response
    assert pending is not None
    h.send_join(member_id=leader)
    h.send_join(member_id=follower)
    assert h.group.is_(S.PREPARING_REBALANCE)  # still waiting for the pending member
    h.send_join(member_id=pending.member_id)
    for mid in (leader, follower, pending.member_id):
        assert h.joins.pop(mid).generation_id == 2
    assert h.group.is_(S.COMPLETING_REBALANCE)


def test_join_completes_when_the_pending_member_times_out(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    h.send_join()
    h.send_join(member_id=leader)
    h.send_join(member_id=follower)
    h.advance(DEFAULT_SESSION_TIMEOUT)
    assert h.joins.pop(leader).generation_id == 2
    assert h.group.size == 2


def test_pending_member_leaves(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    pending = h.send_join().response
    assert pending is not None
    h.send_join(member_id=leader)
    h.send_join(member_id=follower)
    assert h.leave(MemberIdentity(pending.member_id)) == [Errors.NONE]
    assert h.joins.pop(leader).generation_id == 2


# -- the end of the join phase -----------------------------------------------------------------


def test_leader_that_fails_to_rejoin_is_replaced_by_a_member_that_did(h: Harness) -> None:
    leader, follower = h.stable_group(2, session_timeout=GROUP_MAX_SESSION_TIMEOUT)
    newcomer = h.dynamic_join(session_timeout=GROUP_MAX_SESSION_TIMEOUT)
    h.send_join(member_id=follower, session_timeout=GROUP_MAX_SESSION_TIMEOUT)
    h.advance(DEFAULT_REBALANCE_TIMEOUT)
    # The old leader did not rejoin within the rebalance timeout: it is out, the follower leads.
    assert not h.group.has(leader)
    follower_result, newcomer_result = h.joins.pop(follower), h.joins.pop(newcomer)
    assert follower_result.leader_id == newcomer_result.leader_id == follower
    assert {m.member_id for m in follower_result.members} == {follower, newcomer}
    assert newcomer_result.members == ()
    assert follower_result.generation_id == 2
    assert h.group.is_(S.COMPLETING_REBALANCE)


def test_static_leader_that_fails_to_rejoin_stays_but_loses_the_leadership() -> None:
    h = Harness()
    long_session = DEFAULT_SESSION_TIMEOUT * 2
    leader, follower, _ = h.static_group(session_timeout=long_session)
    dynamic = h.dynamic_join(protocols=PROTOCOL_SUPERSET, session_timeout=long_session)
    h.advance(DEFAULT_REBALANCE_TIMEOUT)
    result = h.joins.pop(dynamic)
    # The new dynamic member leads; the static members that did not rejoin keep their place.
    assert result.leader_id == dynamic and result.error is Errors.NONE
    assert len(result.members) == 3 and result.generation_id == 2
    assert set(h.group.members) == {leader, follower, dynamic}
    assert set(h.group.static_members) == {"leader", "follower"}
    assert h.group.is_(S.COMPLETING_REBALANCE)


def static_group_stuck_in_rebalance(h: Harness) -> tuple[str, int]:
    """Kafka's groupStuckInRebalanceTimeoutDueToNonjoinedStaticMember, without the dynamic member:
    the follower leaves, the static leader does not rejoin and is not removed for it."""
    leader, follower, generation = h.static_group(session_timeout=DEFAULT_SESSION_TIMEOUT * 2)
    assert h.leave(MemberIdentity(follower, "follower")) == [Errors.NONE]
    assert h.group.is_(S.PREPARING_REBALANCE)
    h.advance(DEFAULT_REBALANCE_TIMEOUT)
    # Nobody rejoined: the join phase waits another rebalance timeout instead of ending.
    assert set(h.group.members) == {leader}
    assert h.group.is_(S.PREPARING_REBALANCE) and h.group.generation_id == generation
    assert h.group.join_deadline is not None and h.group.join_deadline.deadline_ms == h.now + DEFAULT_REBALANCE_TIMEOUT
    return leader, generation


def test_static_leader_that_never_rejoins_is_removed_by_its_session_and_the_group_empties(h: Harness) -> None:
    _leader, generation = static_group_stuck_in_rebalance(h)
    h.advance(DEFAULT_SESSION_TIMEOUT * 2)
    assert not h.group.members and h.group.leader_id is None
    assert h.group.is_(S.EMPTY) and h.group.generation_id == generation + 1


def test_static_leader_that_rejoins_late_completes_the_rebalance(h: Harness) -> None:
    _leader, generation = static_group_stuck_in_rebalance(h)
    new_id = h.send_join(instance_id="leader").parked_member_id
    assert new_id is not None
    result = h.joins.pop(new_id)
    assert result.error is Errors.NONE and result.leader_id == new_id
    assert result.generation_id == generation + 1
    assert set(h.group.members) == {new_id} and h.group.is_(S.COMPLETING_REBALANCE)


# -- LeaveGroup --------------------------------------------------------------------------------


def test_leave_group_unknown_group(h: Harness) -> None:
    assert h.leave(MemberIdentity("memberId")) == [Errors.UNKNOWN_MEMBER_ID]


def test_leave_group_invalid_group_id(h: Harness) -> None:
    out = h.rules.handle_leave_group("", [MemberIdentity("m")], 0)
    assert out.response is not None and out.response.error is Errors.INVALID_GROUP_ID


def test_leave_group_unknown_member_of_existing_group(h: Harness) -> None:
    h.stable_group(1)
    assert h.leave(MemberIdentity("otherMemberId")) == [Errors.UNKNOWN_MEMBER_ID]


def test_valid_leave_group_rebalances(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    assert h.leave(MemberIdentity(follower)) == [Errors.NONE]
    assert not h.group.has(follower)
    assert h.group.is_(S.PREPARING_REBALANCE)
    h.send_join(member_id=leader)
    assert h.joins.pop(leader).generation_id == 2


def test_leave_of_a_member_parked_in_join_answers_it(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    h.send_join(member_id=follower, protocols=[("range", b"changed")])
    assert h.leave(MemberIdentity(follower)) == [Errors.NONE]
    assert h.joins.pop(follower) == JoinGroupResult("", Errors.UNKNOWN_MEMBER_ID)
    h.send_join(member_id=leader)
    assert h.joins.pop(leader).generation_id == 2


def test_leaving_leader_hands_over_to_another_member(h: Harness) -> None:
    leader, b, _c = h.stable_group(3)
    h.leave(MemberIdentity(leader))
    assert h.group.leader_id == b


def test_static_members_leave_by_instance_id_and_fenced_ids_are_refused() -> None:
    h = Harness()
    leader, _follower, _ = h.static_group()
    assert h.leave(MemberIdentity("", "unknown-instance")) == [Errors.UNKNOWN_MEMBER_ID]
    assert h.leave(MemberIdentity("stale-id", "follower")) == [Errors.FENCED_INSTANCE_ID]
    assert h.leave(MemberIdentity("", "follower"), MemberIdentity(leader, "leader")) == [Errors.NONE, Errors.NONE]
    assert not h.group.members and h.group.is_(S.EMPTY)


# -- static membership (KIP-345) ---------------------------------------------------------------


def test_static_member_rejoin_in_stable_group_replaces_the_old_id_without_rebalance() -> None:
    h = Harness()
    leader, follower, generation = h.static_group()
    h.hold_stores = True
    out = h.send_join(instance_id="follower")
    new_id = out.parked_member_id
    assert new_id == "follower-uuid3" and out.response is None
    [store] = h.held
    assert store.kind is StoreKind.STATIC_MEMBER_REJOIN
    h.release_stores()
    answer = h.joins.pop(new_id)
    assert answer.error is Errors.NONE and answer.generation_id == generation
    assert answer.leader_id == leader and answer.members == ()
    assert h.group.is_(S.STABLE) and h.group.get(new_id).assignment == b"f"
    # The old member id is fenced everywhere the instance id comes with it.
    assert h.heartbeat(follower, generation, instance_id="follower") is Errors.FENCED_INSTANCE_ID
    assert h.sync(follower, generation, instance_id="follower").response == SyncGroupResult(Errors.FENCED_INSTANCE_ID)
    assert h.commit(follower, generation, {("t", 0): OffsetAndMetadata(1)}, instance_id="follower") == {
        ("t", 0): Errors.FENCED_INSTANCE_ID}
    fenced_join = h.send_join(member_id=follower, instance_id="follower").response
    assert fenced_join == JoinGroupResult(follower, Errors.FENCED_INSTANCE_ID)
    # Without its instance id the old member id is simply unknown.
    assert h.heartbeat(follower, generation) is Errors.UNKNOWN_MEMBER_ID
    assert h.heartbeat(new_id, generation, instance_id="follower") is Errors.NONE


def test_static_leader_rejoin_is_told_to_skip_the_assignment_with_v9() -> None:
    h = Harness()
    _leader, follower, generation = h.static_group()
    new_id = h.send_join(instance_id="leader", supports_skipping_assignment=True).parked_member_id
    assert new_id is not None
    answer = h.joins.pop(new_id)
    assert answer.leader_id == new_id and answer.skip_assignment
    assert {m.member_id for m in answer.members} == {new_id, follower}
    assert h.group.is_(S.STABLE) and h.group.generation_id == generation


def test_static_member_rejoin_store_failure_restores_the_old_member_id() -> None:
    h = Harness()
    _leader, follower, generation = h.static_group()
    h.store_error = Errors.REQUEST_TIMED_OUT
    new_id = h.send_join(instance_id="follower", protocols=PROTOCOLS, session_timeout=1234).parked_member_id
    assert new_id is not None
    answer = h.joins.pop(new_id)
    assert answer.error is Errors.REBALANCE_IN_PROGRESS and answer.member_id == ""
    assert h.group.current_static_member_id("follower") == follower
    assert h.group.get(follower).session_timeout_ms == DEFAULT_SESSION_TIMEOUT
    assert h.heartbeat(follower, generation, instance_id="follower") is Errors.NONE


def test_static_member_rejoin_with_a_protocol_change_rebalances() -> None:
    h = Harness()
    h.static_group(protocols=PROTOCOL_SUPERSET)
    prefer_roundrobin = [("roundrobin", b""), ("range", b"")]
    # One vote each: the group's choice stays range, so no rebalance.
    follower = h.send_join(instance_id="follower", protocols=prefer_roundrobin).parked_member_id
    assert follower is not None and h.joins.pop(follower).error is Errors.NONE
    assert h.group.is_(S.STABLE)
    # Now both vote roundrobin: the group must rebalance to switch.
    leader = h.send_join(instance_id="leader", protocols=prefer_roundrobin).parked_member_id
    assert leader is not None and leader not in h.joins
    assert h.group.is_(S.PREPARING_REBALANCE)
    h.send_join(member_id=follower, instance_id="follower", protocols=prefer_roundrobin)
    assert h.joins.pop(leader).protocol_name == "roundrobin"
    assert h.group.protocol_name == "roundrobin" and h.group.generation_id == 2


def test_static_member_rejoin_fences_the_old_ids_parked_join(h: Harness) -> None:
    leader, _, _ = h.static_group()
    h.send_join(member_id=leader, instance_id="leader", protocols=[("range", b"changed")])
    assert h.group.is_(S.PREPARING_REBALANCE)
    new = h.send_join(instance_id="leader").parked_member_id
    assert h.joins.pop(leader) == JoinGroupResult(leader, Errors.FENCED_INSTANCE_ID)
    assert new is not None and h.group.is_leader(new)


def test_static_member_rejoin_during_sync_forces_a_rebalance() -> None:
    h = Harness()
    lead = h.send_join(instance_id="leader").parked_member_id
    follow = h.send_join(instance_id="follower").parked_member_id
    assert lead is not None and follow is not None
    h.await_join(lead)
    h.await_join(follow)
    h.sync(follow, 1)
    h.send_join(instance_id="follower")
    assert h.syncs.pop(follow) == SyncGroupResult(Errors.FENCED_INSTANCE_ID)
    assert h.group.is_(S.PREPARING_REBALANCE)


# -- the sync phase's deadline -----------------------------------------------------------------


def test_rebalance_times_out_when_a_follower_never_syncs(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    h.await_join(a)
    h.await_join(b)
    h.sync(a, 1, {a: b"x", b: b"y"})
    assert h.group.is_(S.STABLE)
    h.advance(DEFAULT_REBALANCE_TIMEOUT // 2)
    assert h.heartbeat(a, 1) is Errors.NONE
    assert h.heartbeat(b, 1) is Errors.NONE  # alive, but never asks for its assignment
    h.advance(DEFAULT_REBALANCE_TIMEOUT // 2)
    assert not h.group.has(b)
    assert h.group.has(a) and h.group.is_(S.PREPARING_REBALANCE)


def test_rebalance_does_not_time_out_when_everyone_synced(h: Harness) -> None:
    a, b = h.stable_group(2)
    assert h.group.sync_deadline_ms is None
    h.advance(DEFAULT_REBALANCE_TIMEOUT // 2)
    h.heartbeat(a, 1)
    h.heartbeat(b, 1)
    h.advance(DEFAULT_REBALANCE_TIMEOUT // 2)
    assert h.group.is_(S.STABLE) and h.group.size == 2


def test_rebalance_times_out_when_the_leader_never_syncs(h: Harness) -> None:
    a, b = h.dynamic_join(), h.dynamic_join()
    h.await_join(a)
    h.await_join(b)
    h.sync(b, 1)
    h.advance(DEFAULT_REBALANCE_TIMEOUT)
    assert not h.group.has(a)
    assert h.syncs.pop(b) == SyncGroupResult(Errors.REBALANCE_IN_PROGRESS)
    assert h.group.is_(S.PREPARING_REBALANCE) and h.group.leader_id == b


# -- OffsetCommit / OffsetFetch ----------------------------------------------------------------

TP = ("topic", 0)


def test_commit_offset_from_unknown_group(h: Harness) -> None:
    assert h.commit("memberId", 1, {TP: OffsetAndMetadata(0)}) == {TP: Errors.ILLEGAL_GENERATION}
    assert GROUP_ID not in h.rules.groups


def test_simple_commit_with_default_generation_creates_an_empty_group(h: Harness) -> None:
    assert h.commit("", -1, {TP: OffsetAndMetadata(5, "m", 1)}) == {TP: Errors.NONE}
    assert h.group.is_(S.EMPTY)
    assert h.rules.handle_fetch_offsets(GROUP_ID, [TP]) == {TP: OffsetFetchPartition(5, "m")}


def test_simple_commit_with_empty_group_id_is_allowed(h: Harness) -> None:
    assert h.commit("", -1, {TP: OffsetAndMetadata(5)}, group_id="") == {TP: Errors.NONE}


def test_commit_offsets_after_group_is_empty(h: Harness) -> None:
    [leader] = h.stable_group(1)
    h.leave(MemberIdentity(leader))
    assert h.commit("", -1, {TP: OffsetAndMetadata(7)}) == {TP: Errors.NONE}
    assert h.rules.handle_fetch_offsets(GROUP_ID, [TP])[TP].offset == 7


def test_simple_commit_to_a_group_with_members_is_refused(h: Harness) -> None:
    h.stable_group(1)
    assert h.commit("", -1, {TP: OffsetAndMetadata(0)}) == {TP: Errors.UNKNOWN_MEMBER_ID}


def test_commit_with_illegal_generation_or_unknown_member(h: Harness) -> None:
    [leader] = h.stable_group(1)
    assert h.commit(leader, 2, {TP: OffsetAndMetadata(0)}) == {TP: Errors.ILLEGAL_GENERATION}
    assert h.commit("unknown", 1, {TP: OffsetAndMetadata(0)}) == {TP: Errors.UNKNOWN_MEMBER_ID}
    assert h.commit(leader, 1, {TP: OffsetAndMetadata(0)}) == {TP: Errors.NONE}


def test_commit_offset_in_completing_rebalance(h: Harness) -> None:
    result = h.join_single_member()
    assert h.commit(result.member_id, 1, {TP: OffsetAndMetadata(0)}) == {TP: Errors.REBALANCE_IN_PROGRESS}
    assert h.commit("unknown", 1, {TP: OffsetAndMetadata(0)}) == {TP: Errors.UNKNOWN_MEMBER_ID}
    assert h.commit(result.member_id, 2, {TP: OffsetAndMetadata(0)}) == {TP: Errors.ILLEGAL_GENERATION}


def test_commit_offset_during_preparing_rebalance_is_allowed_for_the_previous_generation(h: Harness) -> None:
    leader, follower = h.stable_group(2)
    h.send_join(member_id=leader)
    assert h.group.is_(S.PREPARING_REBALANCE)
    assert h.commit(follower, 1, {TP: OffsetAndMetadata(9)}) == {TP: Errors.NONE}


def test_commit_records_and_append_failure(h: Harness) -> None:
    [leader] = h.stable_group(1)
    out = h.rules.handle_commit_offsets(GROUP_ID, leader, 1, {TP: OffsetAndMetadata(3, "", 10)}, h.now)
    [store] = out.stores
    assert isinstance(store, StoreOffsets) and out.response is None
    replayed = load_groups_and_offsets(offset_commit_records(GROUP_ID, dict(store.offsets)))
    assert replayed.groups[GROUP_ID].offsets == {TP: OffsetAndMetadata(3, "", 10)}
    # Not committed until the append succeeds.
    assert h.rules.handle_fetch_offsets(GROUP_ID, [TP])[TP].offset == -1
    assert h.rules.on_offsets_stored(store, Errors.NOT_ENOUGH_REPLICAS) == {TP: Errors.COORDINATOR_NOT_AVAILABLE}
    assert h.rules.handle_fetch_offsets(GROUP_ID, [TP])[TP].offset == -1
    assert h.rules.on_offsets_stored(store, Errors.NONE) == {TP: Errors.NONE}
    assert h.rules.handle_fetch_offsets(GROUP_ID, [TP])[TP].offset == 3


def test_fetch_offsets(h: Harness) -> None:
    h.commit("", -1, {TP: OffsetAndMetadata(5, "meta", 1, leader_epoch=3), ("t2", 1): OffsetAndMetadata(6)})
    fetch = h.rules.handle_fetch_offsets
    assert fetch(GROUP_ID, [TP, ("unknown", 0)]) == {
        TP: OffsetFetchPartition(5, "meta", 3),
        ("unknown", 0): OffsetFetchPartition(-1),
    }
    assert set(fetch(GROUP_ID)) == {TP, ("t2", 1)}
    assert fetch("unknown-group", [TP]) == {TP: OffsetFetchPartition(-1)}
    assert fetch("unknown-group") == {}


def test_dead_group_answers_coordinator_not_available(h: Harness) -> None:
    [leader] = h.stable_group(1)
    h.group.transition_to(S.DEAD, h.now)  # unloaded by another thread in Kafka; here, by hand
    assert h.send_join(member_id=leader).response == JoinGroupResult(leader, Errors.COORDINATOR_NOT_AVAILABLE)
    assert h.send_join().response == JoinGroupResult("", Errors.COORDINATOR_NOT_AVAILABLE)
    assert h.sync(leader, 1).response == SyncGroupResult(Errors.COORDINATOR_NOT_AVAILABLE)
    assert h.heartbeat(leader, 1) is Errors.COORDINATOR_NOT_AVAILABLE
    assert h.commit(leader, 1, {TP: OffsetAndMetadata(0)}) == {TP: Errors.COORDINATOR_NOT_AVAILABLE}
    out = h.rules.handle_leave_group(GROUP_ID, [MemberIdentity(leader)], h.now)
    assert out.response is not None and out.response.error is Errors.COORDINATOR_NOT_AVAILABLE
    assert h.rules.handle_fetch_offsets(GROUP_ID, [TP]) == {TP: OffsetFetchPartition(-1)}
    assert h.rules.next_deadline_ms() is None


# -- loading and unloading ---------------------------------------------------------------------


def test_loaded_group_serves_its_members_and_expects_their_heartbeats(h: Harness) -> None:
    ids = h.stable_group(2)
    record = group_metadata_record(h.stores[-1].group)
    loaded = load_groups_and_offsets([record]).groups[GROUP_ID]
    other = Harness()
    other.now = 10_000
    other.absorb(other.rules.load_group(loaded, other.now))
    assert other.group.is_(S.STABLE) and other.group.leader_id == ids[0]
    assert other.heartbeat(ids[0], 1) is Errors.NONE
    assert other.sync(ids[1], 1).response == SyncGroupResult(Errors.NONE, f"assignment-{ids[1]}".encode(),
                                                             PROTOCOL_TYPE, "range")
    other.advance(DEFAULT_SESSION_TIMEOUT // 2)
    assert other.heartbeat(ids[0], 1) is Errors.NONE
    other.advance(DEFAULT_SESSION_TIMEOUT // 2)
    assert not other.group.has(ids[1])  # the sync above was its only sign of life
    assert other.group.has(ids[0])
    assert other.group.is_(S.PREPARING_REBALANCE)


def test_unload_answers_parked_requests_with_not_coordinator(h: Harness) -> None:
    leader, _follower = h.stable_group(2)
    h.send_join(member_id=leader)
    h.absorb(h.rules.unload_group(GROUP_ID, h.now))
    assert h.joins.pop(leader) == JoinGroupResult(leader, Errors.NOT_COORDINATOR)
    assert GROUP_ID not in h.rules.groups
    assert h.rules.next_deadline_ms() is None


# -- a whole life ------------------------------------------------------------------------------


def test_three_members_join_sync_stabilise_one_dies_and_a_new_leader_takes_over(h: Harness) -> None:
    session = 1000
    # Three consumers arrive within the initial delay: one join phase for all of them.
    a = h.dynamic_join(session_timeout=session)
    h.advance(10)
    b = h.dynamic_join(session_timeout=session)
    h.advance(10)
    c = h.dynamic_join(session_timeout=session, protocols=PROTOCOL_SUPERSET)
    assert h.group.is_(S.PREPARING_REBALANCE)
    results = {mid: h.await_join(mid) for mid in (a, b, c)}
    assert {r.generation_id for r in results.values()} == {1}
    assert {r.leader_id for r in results.values()} == {a}
    assert {m.member_id for m in results[a].members} == {a, b, c}  # only the leader sees the members
    assert results[b].members == results[c].members == ()
    assert results[a].protocol_name == "range"

    # Followers sync first and wait; the leader's assignment is stored and handed out.
    h.sync(b, 1)
    h.sync(c, 1)
    h.sync(a, 1, {a: b"p0", b: b"p1", c: b"p2"})
    assert {mid: h.syncs.pop(mid).assignment for mid in (a, b, c)} == {a: b"p0", b: b"p1", c: b"p2"}
    assert h.group.is_(S.STABLE)
    stored = read_group_message_value(GROUP_ID, group_metadata_value(h.stores[-1].group))
    assert stored is not None and stored.leader_id == a
    assert {mid: m.assignment for mid, m in stored.members.items()} == {a: b"p0", b: b"p1", c: b"p2"}

    # a (the leader) dies: b and c keep heartbeating, a's session runs out.
    h.advance(session // 2)
    assert h.heartbeat(b, 1) is Errors.NONE
    assert h.heartbeat(c, 1) is Errors.NONE
    assert h.group.has(a)
    h.advance(session // 2)
    assert not h.group.has(a)
    assert h.group.is_(S.PREPARING_REBALANCE)
    assert h.group.leader_id == b
    assert h.heartbeat(a, 1) is Errors.UNKNOWN_MEMBER_ID

    # The survivors learn of the rebalance from their heartbeats and rejoin.
    assert h.heartbeat(b, 1) is Errors.REBALANCE_IN_PROGRESS
    h.send_join(member_id=c, session_timeout=session, protocols=PROTOCOL_SUPERSET)
    h.send_join(member_id=b, session_timeout=session)
    second = {mid: h.joins.pop(mid) for mid in (b, c)}
    assert {r.generation_id for r in second.values()} == {2}
    assert {r.leader_id for r in second.values()} == {b}
    assert {m.member_id for m in second[b].members} == {b, c}

    h.sync(c, 2)
    h.sync(b, 2, {b: b"p0p1", c: b"p2"})
    assert h.syncs.pop(b).assignment == b"p0p1" and h.syncs.pop(c).assignment == b"p2"
    assert h.group.is_(S.STABLE) and h.group.generation_id == 2

    # Everything the coordinator wrote replays to the same group.
    replayed = load_groups_and_offsets(group_metadata_record(s.group) for s in h.stores).groups[GROUP_ID]
    assert (replayed.generation_id, replayed.leader_id, set(replayed.members)) == (2, b, {b, c})
