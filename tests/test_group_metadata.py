"""A group's data and state machine (Kafka's GroupMetadataTest, MemberMetadataTest), the group
coordinator lookup (partitionFor) and the __consumer_offsets records with their replay."""

from __future__ import annotations

import itertools
import struct

import pytest

from broker.group.group_metadata import (
    VALID_PREVIOUS_STATES,
    GroupMetadata,
    GroupState,
    IllegalGroupStateChange,
    OffsetAndMetadata,
)
from broker.group.member_metadata import MemberMetadata
from broker.group.offsets_log import (
    GroupMetadataKey,
    GroupMetadataLoader,
    OffsetKey,
    SchemaError,
    UnknownKey,
    group_metadata_key,
    group_metadata_record,
    group_metadata_value,
    group_tombstones,
    load_groups_and_offsets,
    offset_commit_key,
    offset_commit_records,
    offset_commit_value,
    read_group_message_value,
    read_message_key,
    read_offset_message_value,
)
from minikafka_protocol.group import JoinGroupResponseMember, partition_for, select_protocol
from minikafka_protocol.java import abs_java, java_string_hash

S = GroupState
GROUP_ID = "groupId"


def member(member_id: str, protocols: list[tuple[str, bytes]] | None = None, instance_id: str | None = None,
           rebalance_timeout_ms: int = 60000, session_timeout_ms: int = 10000) -> MemberMetadata:
    return MemberMetadata(
        member_id=member_id,
        group_instance_id=instance_id,
        client_id="clientId",
        client_host="clientHost",
        rebalance_timeout_ms=rebalance_timeout_ms,
        session_timeout_ms=session_timeout_ms,
        protocol_type="consumer",
        supported_protocols=protocols if protocols is not None else [("range", b""), ("roundrobin", b"")],
    )


def group_in(state: GroupState) -> GroupMetadata:
    """A group walked to ``state`` through legal transitions only."""
    group = GroupMetadata(GROUP_ID)
    path = {
        S.EMPTY: [],
        S.PREPARING_REBALANCE: [S.PREPARING_REBALANCE],
        S.COMPLETING_REBALANCE: [S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE],
        S.STABLE: [S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.STABLE],
        S.DEAD: [S.DEAD],
    }[state]
    for step in path:
        group.transition_to(step, 0)
    return group


# -- partitionFor ------------------------------------------------------------------------------


def java_hash_by_definition(s: str) -> int:
    """s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, reduced to a signed 32-bit int."""
    units = [int.from_bytes(s.encode("utf-16-be", "surrogatepass")[i:i + 2], "big")
             for i in range(0, len(s.encode("utf-16-be", "surrogatepass")), 2)]
    total = sum(u * 31 ** (len(units) - 1 - i) for i, u in enumerate(units)) % 2**32
    return total - 2**32 if total >= 2**31 else total


@pytest.mark.parametrize(("group_id", "partition"), [
    ("my-group", 12), ("test-group", 12), ("group1", 40), ("", 0), ("polygenelubricants", 0),
])
def test_partition_for_matches_kafkas_reference_values(group_id: str, partition: int) -> None:
    assert partition_for(group_id, 50) == partition


def test_java_string_hash_known_values() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("ab") == 97 * 31 + 98
    assert java_string_hash("my-group") == -1906497762
    # The one string everyone quotes for Integer.MIN_VALUE, which Utils.abs maps to partition 0.
    assert java_string_hash("polygenelubricants") == -(2**31)


def test_java_string_hash_of_non_ascii_counts_utf16_code_units() -> None:
    # BMP characters are one code unit each: é is U+00E9 = 233.
    assert java_string_hash("é") == 233
    assert partition_for("é") == 33
    # 消费者组 = U+6D88 U+8D39 U+8005 U+7EC4; worked by hand: ((28040*31 + 36153)*31 + 32773)*31 + 32452.
    assert java_string_hash("消费者组") == 871131088
    assert partition_for("消费者组") == 38
    # Overflowing, with a non-ASCII character in the middle.
    assert java_string_hash("grüppe") == java_hash_by_definition("grüppe") == -1233264812


def test_java_string_hash_of_astral_characters_counts_two_surrogates() -> None:
    # U+1F600 is the surrogate pair D83D DE00 in Java: 0xD83D*31 + 0xDE00, not the code point 0x1F600.
    assert java_string_hash("😀") == 0xD83D * 31 + 0xDE00 == 1772899
    assert partition_for("😀") == 49
    assert java_string_hash("g😀") == 103 * 31**2 + 0xD83D * 31 + 0xDE00 == 1871882
    assert partition_for("g😀") == 32
    for s in ["a😀b", "😀" * 20, "组-😀-group", "\ud83d"]:  # the last is a lone surrogate, as Java allows
        assert java_string_hash(s) == java_hash_by_definition(s)


def test_abs_java_maps_integer_min_value_to_zero() -> None:
    assert abs_java(-(2**31)) == 0
    assert abs_java(-5) == 5
    assert abs_java(2**31 - 1) == 2**31 - 1


def test_partition_for_stays_in_range() -> None:
    for i in range(1000):
        assert 0 <= partition_for(f"group-{i}", 7) < 7
    with pytest.raises(ValueError):
        partition_for("g", 0)


# -- the state machine -------------------------------------------------------------------------

LEGAL_TRANSITIONS = {
    (S.STABLE, S.PREPARING_REBALANCE),
    (S.COMPLETING_REBALANCE, S.PREPARING_REBALANCE),
    (S.EMPTY, S.PREPARING_REBALANCE),
    (S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE),
    (S.COMPLETING_REBALANCE, S.STABLE),
    (S.PREPARING_REBALANCE, S.EMPTY),
    (S.STABLE, S.DEAD),
    (S.PREPARING_REBALANCE, S.DEAD),
    (S.COMPLETING_REBALANCE, S.DEAD),
    (S.EMPTY, S.DEAD),
    (S.DEAD, S.DEAD),
}


def test_state_names_are_kafkas() -> None:
    assert [str(s) for s in S] == ["Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"]


def test_transition_table_is_kafkas() -> None:
    table = {(prev, target) for target, prevs in VALID_PREVIOUS_STATES.items() for prev in prevs}
    assert table == LEGAL_TRANSITIONS


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL_TRANSITIONS, key=str))
def test_legal_transitions(current: GroupState, target: GroupState) -> None:
    group = group_in(current)
    group.transition_to(target, 42)
    assert group.is_(target)
    assert group.current_state_timestamp_ms == 42


@pytest.mark.parametrize(
    ("current", "target"),
    sorted(set(itertools.product(S, S)) - LEGAL_TRANSITIONS, key=str),
)
def test_illegal_transitions_raise(current: GroupState, target: GroupState) -> None:
    group = group_in(current)
    with pytest.raises(IllegalGroupStateChange) as raised:
        group.transition_to(target, 42)
    assert raised.value.current == current and raised.value.target == target
    assert group.is_(current)


def test_illegal_transition_message_is_kafkas() -> None:
    group = group_in(S.DEAD)
    with pytest.raises(IllegalGroupStateChange) as raised:
        group.transition_to(S.PREPARING_REBALANCE, 0)
    assert str(raised.value) == (
        "Group groupId should be in the Empty,CompletingRebalance,Stable states before moving to "
        "PreparingRebalance state. Instead it is in Dead state"
    )


@pytest.mark.parametrize(("state", "can"), [
    (S.EMPTY, True), (S.STABLE, True), (S.COMPLETING_REBALANCE, True),
    (S.PREPARING_REBALANCE, False), (S.DEAD, False),
])
def test_can_rebalance(state: GroupState, can: bool) -> None:
    assert group_in(state).can_rebalance is can


# -- members and the leader --------------------------------------------------------------------


def test_first_member_added_is_leader_and_leaving_leader_hands_over_in_join_order() -> None:
    group = GroupMetadata(GROUP_ID)
    for mid in ["a", "b", "c"]:
        group.add_member(member(mid))
    assert group.leader_id == "a"
    assert group.protocol_type == "consumer"
    group.remove_member("b")
    assert group.leader_id == "a"
    group.remove_member("a")
    assert group.leader_id == "c"
    group.remove_member("c")
    assert group.leader_id is None
    assert group.remove_member("nobody") is None


def test_leader_that_did_not_rejoin_is_replaced_by_one_that_did() -> None:
    group = GroupMetadata(GROUP_ID)
    for mid in ["a", "b", "c"]:
        group.add_member(member(mid))
    assert group.maybe_elect_new_joined_leader() is False  # nobody rejoined
    group.get("c").awaiting_join = True
    assert group.not_yet_rejoined_members().keys() == {"a", "b"}
    assert group.maybe_elect_new_joined_leader() is True
    assert group.leader_id == "c"
    # A leader that rejoined stays leader.
    group.get("a").awaiting_join = True
    assert group.maybe_elect_new_joined_leader() is True
    assert group.leader_id == "c"
    assert GroupMetadata("empty").maybe_elect_new_joined_leader() is False


def test_has_all_members_joined_needs_every_member_and_no_pending_one() -> None:
    group = GroupMetadata(GROUP_ID)
    assert group.has_all_members_joined()
    group.add_member(member("a"))
    group.add_member(member("b"))
    group.get("a").awaiting_join = True
    assert not group.has_all_members_joined()
    group.get("b").awaiting_join = True
    assert group.has_all_members_joined()
    group.add_pending_member("pending", deadline_ms=100)
    assert not group.has_all_members_joined()
    group.remove_member("pending")
    assert group.has_all_members_joined()
    assert group.num_awaiting_join == 2


def test_pending_members() -> None:
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("a"))
    with pytest.raises(ValueError):
        group.add_pending_member("a", 0)
    group.add_pending_member("p", 0)
    assert group.is_pending_member("p")
    group.add_member(member("p"))  # joining with its id ends its pending time
    assert not group.is_pending_member("p")


def test_update_member() -> None:
    group = GroupMetadata(GROUP_ID)
    m = member("a")
    group.add_member(m)
    group.update_member(m, [("roundrobin", b"x")], rebalance_timeout_ms=120000, session_timeout_ms=20000,
                        awaiting_join=True)
    assert group.max_rebalance_timeout() == 120000
    assert m.session_timeout_ms == 20000
    assert m.supported_protocols == [("roundrobin", b"x")]
    assert m.awaiting_join


def test_max_rebalance_timeout_is_the_slowest_members() -> None:
    group = GroupMetadata(GROUP_ID)
    assert group.max_rebalance_timeout() == 0
    group.add_member(member("a", rebalance_timeout_ms=1000))
    group.add_member(member("b", rebalance_timeout_ms=5000))
    assert group.max_rebalance_timeout() == 5000


# -- the protocol vote -------------------------------------------------------------------------


def test_select_protocol_by_vote() -> None:
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("m1", [("range", b""), ("roundrobin", b"")]))
    assert group.select_protocol() == "range"
    group.add_member(member("m2", [("roundrobin", b""), ("range", b"")]))
    # One vote each: Kafka takes the first maximum in its HashMap of votes, "range" here.
    assert group.select_protocol() == "range"
    group.add_member(member("m3", [("roundrobin", b""), ("range", b"")]))
    assert group.select_protocol() == "roundrobin"


def test_a_tied_vote_goes_by_kafkas_hash_order_not_join_order_on_broker_and_client_alike() -> None:
    # The broker once broke ties by join order ("roundrobin" here) while the clients' fake
    # coordinator broke them by Kafka's HashMap order ("range"): now both cast the one vote.
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("m1", [("roundrobin", b""), ("range", b"")]))
    group.add_member(member("m2", [("range", b""), ("roundrobin", b"")]))
    assert group.select_protocol() == "range"
    assert select_protocol([["roundrobin", "range"], ["range", "roundrobin"]]) == "range"
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("m1", [("sticky", b""), ("range", b"")]))
    group.add_member(member("m2", [("range", b""), ("sticky", b"")]))
    assert group.select_protocol() == select_protocol([["sticky", "range"], ["range", "sticky"]]) == "sticky"


def test_select_protocol_only_among_protocols_every_member_supports() -> None:
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("m1", [("range", b""), ("roundrobin", b"")]))
    group.add_member(member("m2", [("roundrobin", b""), ("blah", b"")]))
    assert group.select_protocol() == "roundrobin"


def test_select_protocol_raises_without_members() -> None:
    with pytest.raises(ValueError):
        GroupMetadata(GROUP_ID).select_protocol()


def test_supports_protocols() -> None:
    group = GroupMetadata(GROUP_ID)
    # An Empty group takes any non-empty offer.
    assert group.supports_protocols("consumer", {"roundrobin", "range"})
    assert not group.supports_protocols("", {"range"})
    assert not group.supports_protocols("consumer", set())

    group.add_member(member("m1", [("range", b""), ("roundrobin", b"")]))
    group.transition_to(S.PREPARING_REBALANCE, 0)
    assert group.supports_protocols("consumer", {"roundrobin", "foo"})
    assert group.supports_protocols("consumer", {"range", "foo"})
    assert not group.supports_protocols("consumer", {"foo", "bar"})

    group.add_member(member("m2", [("roundrobin", b""), ("blah", b"")]))
    assert group.supports_protocols("consumer", {"roundrobin", "foo"})
    assert not group.supports_protocols("invalid_type", {"roundrobin", "foo"})
    assert not group.supports_protocols("consumer", {"range", "foo"})


def test_adding_an_incompatible_member_raises() -> None:
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("m1", [("range", b"")]))
    group.transition_to(S.PREPARING_REBALANCE, 0)
    with pytest.raises(ValueError):
        group.add_member(member("m2", [("roundrobin", b"")]))


def test_init_next_generation() -> None:
    group = GroupMetadata(GROUP_ID)
    group.transition_to(S.PREPARING_REBALANCE, 0)
    group.add_member(member("m", [("roundrobin", b"")]))
    assert group.generation_id == 0 and group.protocol_name is None
    group.pending_sync_members.add("m")
    group.init_next_generation(now_ms=7)
    assert group.generation_id == 1
    assert group.protocol_name == "roundrobin"
    assert group.is_(S.COMPLETING_REBALANCE)
    assert group.current_state_timestamp_ms == 7
    assert not group.pending_sync_members


def test_init_next_generation_of_empty_group() -> None:
    group = GroupMetadata(GROUP_ID)
    group.transition_to(S.PREPARING_REBALANCE, 0)
    group.init_next_generation(now_ms=0)
    assert group.generation_id == 1
    assert group.protocol_name is None
    assert group.is_(S.EMPTY)


def test_current_member_metadata_is_for_the_chosen_protocol() -> None:
    group = GroupMetadata(GROUP_ID)
    group.transition_to(S.PREPARING_REBALANCE, 0)
    with pytest.raises(ValueError):
        group.current_member_metadata()
    group.add_member(member("m1", [("range", b"r1"), ("roundrobin", b"rr1")]))
    group.add_member(member("m2", [("roundrobin", b"rr2"), ("range", b"r2")], instance_id="i2"))
    group.init_next_generation(0)
    assert group.protocol_name == "range"  # a tie, first voted
    assert group.current_member_metadata() == [
        JoinGroupResponseMember("m1", None, b"r1"),
        JoinGroupResponseMember("m2", "i2", b"r2"),
    ]


# -- static membership (KIP-345) ---------------------------------------------------------------


def test_replace_static_member_keeps_everything_but_the_member_id() -> None:
    group = GroupMetadata(GROUP_ID)
    old = member("old", instance_id="instance")
    old.assignment = b"assigned"
    group.add_member(old)
    group.add_member(member("other"))
    old.awaiting_join = old.awaiting_sync = True
    group.pending_sync_members.add("old")
    assert group.is_leader("old")
    assert group.current_static_member_id("instance") == "old"

    replaced = group.replace_static_member("instance", "old", "new")
    assert replaced is old and replaced.member_id == "new"
    assert group.is_leader("new")
    assert group.current_static_member_id("instance") == "new"
    assert list(group.members) == ["new", "other"]  # keeps its place in the join order
    assert group.get("new").assignment == b"assigned"
    assert not group.has("old")
    # Whatever the old id had parked is fenced by the caller; nothing is parked any more.
    assert not replaced.awaiting_join and not replaced.awaiting_sync
    assert group.pending_sync_members == {"new"}


def test_replace_static_member_that_does_not_exist_raises() -> None:
    with pytest.raises(ValueError, match="non-existing member id"):
        GroupMetadata(GROUP_ID).replace_static_member("instance", "memberId", "newMemberId")


def test_cannot_add_a_static_member_twice() -> None:
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("m1", instance_id="instance"))
    with pytest.raises(ValueError, match="already a member"):
        group.add_member(member("m2", instance_id="instance"))


def test_removing_a_static_member_frees_its_instance_id() -> None:
    group = GroupMetadata(GROUP_ID)
    group.add_member(member("m1", instance_id="instance"))
    group.remove_member("m1")
    assert not group.has_static_member("instance")


# -- offsets and members' own rules ------------------------------------------------------------


def test_commit_and_remove_offsets() -> None:
    group = GroupMetadata(GROUP_ID)
    group.commit({("foo", 0): OffsetAndMetadata(37), ("foo", 1): OffsetAndMetadata(5)})
    group.commit({("foo", 0): OffsetAndMetadata(40)})
    assert group.offset(("foo", 0)) == OffsetAndMetadata(40)
    assert group.remove_offsets([("foo", 0), ("bar", 0)]) == {("foo", 0): OffsetAndMetadata(40)}
    assert group.offset(("foo", 0)) is None
    assert set(group.offsets) == {("foo", 1)}


def test_member_matches_votes_and_metadata() -> None:
    m = member("m", [("range", b"\x01"), ("roundrobin", b"\x02")])
    assert m.matches([("range", b"\x01"), ("roundrobin", b"\x02")])
    assert not m.matches([("roundrobin", b"\x02"), ("range", b"\x01")])
    assert not m.matches([("range", b"\x01"), ("roundrobin", b"\x03")])
    assert not m.matches([("range", b"\x01")])
    assert m.vote({"roundrobin", "range"}) == "range"
    assert m.vote({"roundrobin"}) == "roundrobin"
    with pytest.raises(ValueError):
        m.vote({"sticky"})
    assert m.metadata("roundrobin") == b"\x02"
    with pytest.raises(ValueError):
        m.metadata("sticky")
    assert not m.is_static_member
    assert member("s", instance_id="i").is_static_member


def test_member_heartbeat_satisfaction() -> None:
    m = member("m")
    assert not m.has_satisfied_heartbeat
    m.awaiting_join = True
    assert m.has_satisfied_heartbeat  # parked in JoinGroup: alive by definition
    m.is_new = True
    assert not m.has_satisfied_heartbeat  # but a new member must finish its first join in time
    m.schedule_heartbeat(now_ms=100, timeout_ms=30)
    assert (m.last_heartbeat_ms, m.heartbeat_deadline_ms) == (100, 130)


# -- the __consumer_offsets records ------------------------------------------------------------


def kstr(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(s.encode())) + s.encode()


def kbytes(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


def test_offset_commit_key_and_value_bytes() -> None:
    assert offset_commit_key("g", ("foo", 3)) == struct.pack(">h", 1) + kstr("g") + kstr("foo") + struct.pack(">i", 3)
    value = offset_commit_value(OffsetAndMetadata(100, "meta", commit_timestamp_ms=1234, leader_epoch=7))
    assert value == struct.pack(">hqi", 3, 100, 7) + kstr("meta") + struct.pack(">q", 1234)
    no_epoch = offset_commit_value(OffsetAndMetadata(100, "", commit_timestamp_ms=1))
    assert no_epoch == struct.pack(">hqi", 3, 100, -1) + kstr("") + struct.pack(">q", 1)
    # A pre-KIP-211 expire timestamp forces version 1, which has no leader epoch.
    old = offset_commit_value(OffsetAndMetadata(5, "m", commit_timestamp_ms=1, expire_timestamp_ms=9))
    assert old == struct.pack(">hq", 1, 5) + kstr("m") + struct.pack(">qq", 1, 9)


def test_offset_values_round_trip_and_old_versions_read() -> None:
    for o in [OffsetAndMetadata(100, "meta", 1234, 7), OffsetAndMetadata(0, "", 0),
              OffsetAndMetadata(5, "ü", 1, None, 9)]:
        assert read_offset_message_value(offset_commit_value(o)) == o
    v0 = struct.pack(">hq", 0, 42) + kstr("m") + struct.pack(">q", 77)
    assert read_offset_message_value(v0) == OffsetAndMetadata(42, "m", 77)
    v2 = struct.pack(">hq", 2, 42) + kstr("m") + struct.pack(">q", 77)
    assert read_offset_message_value(v2) == OffsetAndMetadata(42, "m", 77)
    assert read_offset_message_value(None) is None
    with pytest.raises(SchemaError, match="Unknown offset message version: 9"):
        read_offset_message_value(struct.pack(">hq", 9, 1))
    with pytest.raises(SchemaError):
        read_offset_message_value(v0[:-1])


def test_read_message_key() -> None:
    assert read_message_key(offset_commit_key("g", ("t", 1))) == OffsetKey(1, "g", ("t", 1))
    v0 = struct.pack(">h", 0) + kstr("g") + kstr("t") + struct.pack(">i", 1)
    assert read_message_key(v0) == OffsetKey(0, "g", ("t", 1))
    assert group_metadata_key("g") == struct.pack(">h", 2) + kstr("g")
    assert read_message_key(group_metadata_key("g")) == GroupMetadataKey(2, "g")
    assert read_message_key(struct.pack(">h", 3) + b"whatever") == UnknownKey(3)


def stable_group() -> GroupMetadata:
    group = GroupMetadata(GROUP_ID)
    group.transition_to(S.PREPARING_REBALANCE, 0)
    group.add_member(member("m1", [("range", b"sub1")], instance_id="i1"))
    group.add_member(member("m2", [("range", b"sub2")], rebalance_timeout_ms=5000, session_timeout_ms=3000))
    group.init_next_generation(now_ms=1000)
    group.transition_to(S.STABLE, 2000)
    return group


def test_group_metadata_value_bytes() -> None:
    group = stable_group()
    value = group_metadata_value(group.snapshot({"m1": b"a1", "m2": b"a2"}))
    expected = (
        struct.pack(">h", 3) + kstr("consumer") + struct.pack(">i", 1) + kstr("range") + kstr("m1")
        + struct.pack(">q", 2000) + struct.pack(">i", 2)
        + kstr("m1") + kstr("i1") + kstr("clientId") + kstr("clientHost") + struct.pack(">ii", 60000, 10000)
        + kbytes(b"sub1") + kbytes(b"a1")
        + kstr("m2") + kstr(None) + kstr("clientId") + kstr("clientHost") + struct.pack(">ii", 5000, 3000)
        + kbytes(b"sub2") + kbytes(b"a2")
    )
    assert value == expected
    with pytest.raises(ValueError, match="no assignment"):
        group.snapshot({"m1": b""})


def test_group_metadata_value_round_trips() -> None:
    group = stable_group()
    loaded = read_group_message_value(GROUP_ID, group_metadata_value(group.snapshot({"m1": b"a1", "m2": b"a2"})))
    assert loaded is not None
    assert loaded.is_(S.STABLE)
    assert (loaded.generation_id, loaded.protocol_type, loaded.protocol_name, loaded.leader_id) == (
        1, "consumer", "range", "m1")
    assert loaded.current_state_timestamp_ms == 2000
    assert list(loaded.members) == ["m1", "m2"]
    m1, m2 = loaded.get("m1"), loaded.get("m2")
    assert (m1.group_instance_id, m1.assignment, m1.supported_protocols) == ("i1", b"a1", [("range", b"sub1")])
    assert (m2.rebalance_timeout_ms, m2.session_timeout_ms, m2.assignment) == (5000, 3000, b"a2")
    assert loaded.static_members == {"i1": "m1"}
    assert read_group_message_value(GROUP_ID, None) is None


def test_group_metadata_value_version_0_uses_session_timeout_as_rebalance_timeout() -> None:
    v0 = (struct.pack(">h", 0) + kstr("consumer") + struct.pack(">i", 4) + kstr("range") + kstr("m")
          + struct.pack(">i", 1) + kstr("m") + kstr("c") + kstr("h") + struct.pack(">i", 9000)
          + kbytes(b"s") + kbytes(b"a"))
    group = read_group_message_value("g", v0)
    assert group is not None
    assert group.get("m").rebalance_timeout_ms == 9000
    assert group.current_state_timestamp_ms is None
    assert group.generation_id == 4


def test_empty_group_record() -> None:
    group = GroupMetadata(GROUP_ID, protocol_type="consumer", generation_id=3)
    loaded = read_group_message_value(GROUP_ID, group_metadata_value(group.snapshot({})))
    assert loaded is not None
    assert loaded.is_(S.EMPTY)
    assert (loaded.generation_id, loaded.protocol_name, loaded.leader_id, loaded.members) == (3, None, None, {})


# -- the replay of an offsets partition --------------------------------------------------------


def test_replay_rebuilds_groups_and_offsets_latest_record_winning() -> None:
    group = stable_group()
    records = [
        *offset_commit_records(GROUP_ID, {("foo", 0): OffsetAndMetadata(10, "", 1)}),
        group_metadata_record(GroupMetadata(GROUP_ID, protocol_type="consumer").snapshot({})),
        group_metadata_record(group.snapshot({"m1": b"a1", "m2": b"a2"})),
        *offset_commit_records(GROUP_ID, {("foo", 0): OffsetAndMetadata(20, "x", 2, 3),
                                          ("foo", 1): OffsetAndMetadata(5, "", 2)}),
        *offset_commit_records("simple", {("bar", 0): OffsetAndMetadata(1, "", 3)}),
        (struct.pack(">h", 7) + b"from a future version", b"ignored"),
    ]
    loaded = load_groups_and_offsets(records)
    assert set(loaded.groups) == {GROUP_ID, "simple"}
    g = loaded.groups[GROUP_ID]
    assert g.is_(S.STABLE) and g.generation_id == 1 and g.leader_id == "m1" and g.protocol_name == "range"
    assert {mid: m.assignment for mid, m in g.members.items()} == {"m1": b"a1", "m2": b"a2"}
    assert g.offsets == {("foo", 0): OffsetAndMetadata(20, "x", 2, 3), ("foo", 1): OffsetAndMetadata(5, "", 2)}
    # Offsets without a group record: a consumer that only stores offsets in Kafka.
    simple = loaded.groups["simple"]
    assert simple.is_(S.EMPTY) and simple.offsets == {("bar", 0): OffsetAndMetadata(1, "", 3)}
    assert not loaded.removed_group_ids


def test_replay_tombstones_remove_offsets_and_groups() -> None:
    group = stable_group()
    group.commit({("foo", 0): OffsetAndMetadata(10), ("foo", 1): OffsetAndMetadata(11)})
    records = [
        group_metadata_record(group.snapshot({"m1": b"", "m2": b""})),
        *offset_commit_records(GROUP_ID, dict(group.offsets)),
        (offset_commit_key(GROUP_ID, ("foo", 1)), None),
    ]
    loaded = load_groups_and_offsets(records)
    assert set(loaded.groups[GROUP_ID].offsets) == {("foo", 0)}

    deleted = load_groups_and_offsets([*records, *group_tombstones(group)])
    assert deleted.groups == {}
    assert deleted.removed_group_ids == {GROUP_ID}

    # A group record deleted while an offset remains comes back Empty with that offset.
    partly = load_groups_and_offsets([*records, (group_metadata_key(GROUP_ID), None)])
    assert partly.groups[GROUP_ID].is_(S.EMPTY)
    assert set(partly.groups[GROUP_ID].offsets) == {("foo", 0)}

    # A group written again after its tombstone is back.
    again = load_groups_and_offsets([*records, (group_metadata_key(GROUP_ID), None), records[0]])
    assert again.groups[GROUP_ID].is_(S.STABLE)
    assert not again.removed_group_ids


def test_loader_is_incremental() -> None:
    loader = GroupMetadataLoader()
    loader.add(*offset_commit_records("g", {("t", 0): OffsetAndMetadata(1)})[0])
    assert loader.result().groups["g"].offsets == {("t", 0): OffsetAndMetadata(1)}
    loader.add(offset_commit_key("g", ("t", 0)), None)
    assert loader.result().groups == {}
    with pytest.raises(SchemaError):
        loader.add(None, b"")
