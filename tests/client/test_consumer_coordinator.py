"""The consumer's side of consumer groups (client/group/ through KafkaConsumer) against the fake
cluster, whose Group service is the broker's group coordinator behind scripted errors; the
decisions as plain asserts first."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest
from fake_cluster import FakeCluster, wait_for

from client.cluster import KafkaError
from client.consumer import ConsumerRecord, KafkaConsumer
from client.group.consumer_coordinator import (
    CommitFailedError,
    ConsumerRebalanceListener,
    join_protocols,
    leader_assignment,
)
from client.group.member import MemberState
from client.group.wire import Reaction, reaction_for
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import Subscription, deserialize_assignment, deserialize_subscription
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import GroupApi

T0, T1, T2 = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)
ALL = [T0, T1, T2]


# -- decisions over plain data --------------------------------------------------------------------


@pytest.mark.parametrize("api, error, reaction", [
    (GroupApi.JOIN_GROUP, Errors.MEMBER_ID_REQUIRED, Reaction.REJOIN_NOW),
    (GroupApi.JOIN_GROUP, Errors.NOT_COORDINATOR, Reaction.FIND_COORDINATOR),
    (GroupApi.JOIN_GROUP, Errors.COORDINATOR_LOAD_IN_PROGRESS, Reaction.FIND_COORDINATOR),
    (GroupApi.JOIN_GROUP, Errors.INCONSISTENT_GROUP_PROTOCOL, Reaction.FATAL),
    (GroupApi.JOIN_GROUP, Errors.GROUP_MAX_SIZE_REACHED, Reaction.FATAL),
    (GroupApi.SYNC_GROUP, Errors.REBALANCE_IN_PROGRESS, Reaction.REJOIN),
    (GroupApi.HEARTBEAT, Errors.REBALANCE_IN_PROGRESS, Reaction.REJOIN),
    (GroupApi.HEARTBEAT, Errors.UNKNOWN_MEMBER_ID, Reaction.RESET_MEMBER),
    (GroupApi.HEARTBEAT, Errors.ILLEGAL_GENERATION, Reaction.RESET_GENERATION),
    (GroupApi.HEARTBEAT, Errors.FENCED_INSTANCE_ID, Reaction.FATAL),
    (GroupApi.HEARTBEAT, Errors.BROKER_NOT_AVAILABLE, Reaction.FIND_COORDINATOR),  # a lost connection
    (GroupApi.HEARTBEAT, Errors.COORDINATOR_NOT_AVAILABLE, Reaction.FIND_COORDINATOR),
    (GroupApi.OFFSET_COMMIT, Errors.REQUEST_TIMED_OUT, Reaction.FIND_COORDINATOR),
    (GroupApi.OFFSET_COMMIT, Errors.ILLEGAL_GENERATION, Reaction.RESET_GENERATION),
    (GroupApi.OFFSET_FETCH, Errors.NOT_COORDINATOR, Reaction.FIND_COORDINATOR),
    (GroupApi.FIND_COORDINATOR, Errors.COORDINATOR_NOT_AVAILABLE, Reaction.RETRY),
])
def test_each_group_error_has_kafkas_reaction(api: str, error: Errors, reaction: Reaction) -> None:
    assert reaction_for(api, error) is reaction


def test_join_protocols_carry_the_subscription_per_assignor_in_order_of_preference() -> None:
    protocols = join_protocols(["sticky", "range"], ["b", "a"], 4, [TopicPartition("a", 1)])
    assert [name for name, _ in protocols] == ["sticky", "range"]
    sticky, plain = (deserialize_subscription(metadata) for _, metadata in protocols)
    assert set(plain.topics) == {"a", "b"} and plain.generation_id == 4 and plain.user_data is None
    assert plain.owned_partitions == ()  # eager: everything was revoked before the join
    assert sticky.user_data  # the sticky assignor remembers its previous assignment itself


def test_the_leader_runs_the_voted_assignor_over_the_members_subscriptions() -> None:
    subscriptions = {"m1": Subscription(["t1", "t2"]), "m2": Subscription(["t1", "t2"])}
    counts = {"t1": 3, "t2": 3}
    assert leader_assignment("range", subscriptions, counts) == {
        "m1": [("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)], "m2": [("t1", 2), ("t2", 2)]}
    assert leader_assignment("roundrobin", subscriptions, counts) == {
        "m1": [("t1", 0), ("t1", 2), ("t2", 1)], "m2": [("t1", 1), ("t2", 0), ("t2", 2)]}


# -- against the fake cluster ---------------------------------------------------------------------


class Recorder(ConsumerRebalanceListener):
    def __init__(self, cluster: FakeCluster | None = None) -> None:
        self.events: list[tuple[str, list[TopicPartition]]] = []
        self.cluster = cluster
        self.commits_at_revoke: int | None = None

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.events.append(("revoked", sorted(revoked)))
        if self.cluster is not None:
            self.commits_at_revoke = len(self.cluster.seen("OffsetCommit"))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.events.append(("assigned", sorted(assigned)))

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.events.append(("lost", sorted(lost)))


@pytest.fixture
def consumer_config() -> Callable[[int], dict[str, object]]:
    # Client ids (and so member ids) sort in creation order: assignors order members by member id.
    return lambda made_before: {
        "group_id": "g", "client_id": f"member-{made_before + 1}", "heartbeat_interval_ms": 20,
        "session_timeout_ms": 3000, "auto_offset_reset": "earliest",
    }


def poll_until(consumers: list[KafkaConsumer], condition: Callable[[], object], timeout: float = 5.0,
               what: str = "the condition") -> dict[int, list[ConsumerRecord]]:
    """Poll every consumer in turn (one thread, as a test can) until `condition` holds."""
    got: dict[int, list[ConsumerRecord]] = {i: [] for i in range(len(consumers))}

    def step() -> object:
        for i, consumer in enumerate(consumers):
            got[i].extend(consumer.poll(20))
        return condition()

    wait_for(step, timeout, what)
    return got


def stable(*consumers: KafkaConsumer, generation: int | None = None) -> bool:
    states = [c.group_state() for c in consumers]
    return all(s.state is MemberState.STABLE and s.rejoin_reason is None for s in states) \
        and len({s.generation_id for s in states}) == 1 \
        and (generation is None or states[0].generation_id == generation)


def joined(consumer: KafkaConsumer, listener: ConsumerRebalanceListener | None = None) -> KafkaConsumer:
    consumer.subscribe(["t"], listener)
    poll_until([consumer], lambda: stable(consumer), what="the first join")
    return consumer


def test_the_first_member_leads_runs_the_assignor_and_syncs_its_assignment(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer())
    state = consumer.group_state()
    assert (state.generation_id, state.is_leader, state.protocol) == (1, True, "range")
    assert state.leader_id == state.member_id and state.member_id.startswith(state.client_id)
    assert state.coordinator is not None and state.coordinator.node_id == cluster.default_coordinator
    assert state.assignment == (T0, T1, T2) and consumer.assignment() == set(ALL)
    (sync,) = cluster.seen("SyncGroup")
    assert (sync.generation_id, sync.member_id, sync.protocol_name) == (1, state.member_id, "range")
    assert {a.member_id: sorted(deserialize_assignment(a.assignment).partitions) for a in sync.assignments} == {
        state.member_id: ALL}


def test_a_first_join_is_answered_member_id_required_and_repeated_with_that_id(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(session_timeout_ms=6000, max_poll_interval_ms=7000))
    first, second = cluster.seen("JoinGroup")
    assert first.member_id == "" and second.member_id == consumer.group_state().member_id != ""
    assert (second.session_timeout_ms, second.rebalance_timeout_ms, second.protocol_type) == (6000, 7000, "consumer")
    assert [p.name for p in second.protocols] == ["range"]
    assert deserialize_subscription(second.protocols[0].metadata).topics == ("t",)


def test_the_follower_receives_the_assignment_the_leader_computed(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    for tp in ALL:
        cluster.append(tp, [f"{tp.partition}-{i}".encode() for i in range(2)])
    leader = joined(make_consumer())
    follower = make_consumer()
    follower.subscribe(["t"])
    got = poll_until([leader, follower], lambda: stable(leader, follower, generation=2), what="generation 2")
    lead, follow = leader.group_state(), follower.group_state()
    assert lead.is_leader and not follow.is_leader and follow.leader_id == lead.member_id
    assert (lead.assignment, follow.assignment) == ((T0, T1), (T2,))  # range: the first member gets the extra one
    leader_sync = [s for s in cluster.seen("SyncGroup") if s.generation_id == 2 and s.assignments]
    assert len(leader_sync) == 1 and leader_sync[0].member_id == lead.member_id
    follower_sync = [s for s in cluster.seen("SyncGroup") if s.member_id == follow.member_id]
    assert follower_sync and not any(s.assignments for s in follower_sync)
    got = poll_until([leader, follower], lambda: follower.position(T2) == 2 and leader.position(T1) == 2)
    assert {r.partition for r in got[1]} <= {2} and {r.partition for r in got[0]} <= {0, 1}


def test_the_group_votes_for_an_assignor_and_the_leader_uses_it(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    first = joined(make_consumer(partition_assignment_strategy=["roundrobin", "range"]))
    second = make_consumer(partition_assignment_strategy=["roundrobin"])
    second.subscribe(["t"])
    poll_until([first, second], lambda: stable(first, second, generation=2))
    assert first.group_state().protocol == second.group_state().protocol == "roundrobin"
    assert (first.group_state().assignment, second.group_state().assignment) == ((T0, T2), (T1,))


def test_heartbeats_carry_the_generation_and_member_id_every_interval(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(heartbeat_interval_ms=30))
    state = consumer.group_state()
    wait_for(lambda: len(cluster.seen("Heartbeat")) >= 6, what="heartbeats without polling")
    beats = cluster.seen("Heartbeat")
    assert {(b.generation_id, b.member_id, b.group_id) for b in beats} == {(1, state.member_id, "g")}
    times = cluster.seen_at("Heartbeat")
    # Spaced by heartbeat.interval.ms on average (one late arrival makes one gap look short).
    assert times[-1] - times[0] >= (len(times) - 1) * 0.030 * 0.8


def test_rebalance_in_progress_commits_revokes_and_rejoins_with_the_callbacks(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [b"a", b"b", b"c"])
    listener = Recorder(cluster)
    consumer = joined(make_consumer(), listener)
    poll_until([consumer], lambda: consumer.position(T0) == 3 and consumer.poll(0) == [])
    member_id = consumer.group_state().member_id
    cluster.trigger_rebalance("g")
    poll_until([consumer], lambda: stable(consumer, generation=2), what="the rejoin")
    assert listener.events == [("assigned", ALL), ("revoked", ALL), ("assigned", ALL)]
    # enable.auto.commit: the positions were committed under generation 1 before the revocation.
    commits = cluster.seen("OffsetCommit")
    assert listener.commits_at_revoke is not None and listener.commits_at_revoke >= 1
    last_before = commits[listener.commits_at_revoke - 1]
    assert (last_before.generation_id, last_before.member_id) == (1, member_id)
    assert cluster.committed("g")[("t", 0)] == 3
    rejoin = cluster.seen("JoinGroup")[-1]
    assert rejoin.member_id == member_id  # a known member rejoins under its id


def heartbeating_at(cluster: FakeCluster, consumer: KafkaConsumer, broker_id: int, after: int) -> bool:
    """The member heartbeats to `broker_id` (beyond the first `after` heartbeats it ever sent)."""
    state = consumer.group_state()
    return state.coordinator is not None and state.coordinator.node_id == broker_id \
        and len(cluster.seen("Heartbeat", broker_id=broker_id)) > after


def test_not_coordinator_finds_the_coordinator_again_and_keeps_the_generation(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(retry_backoff_ms=100))
    finds_before = len(cluster.seen("FindCoordinator"))
    cluster.group_script["FindCoordinator"].extend([Errors.COORDINATOR_NOT_AVAILABLE] * 2)
    cluster.move_coordinator("g", 2)  # broker 1's heartbeat answers NOT_COORDINATOR now
    poll_until([consumer], lambda: heartbeating_at(cluster, consumer, 2, after=0), what="heartbeats at broker 2")
    finds = cluster.seen_at("FindCoordinator")[finds_before:]
    assert len(finds) == 3
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(finds))  # retry.backoff.ms between them
    # Kafka's markCoordinatorUnknown: no rejoin, the same generation at the new coordinator.
    assert not cluster.seen("JoinGroup", broker_id=2) and not cluster.seen("SyncGroup", broker_id=2)
    assert stable(consumer, generation=1)
    assert {hb.generation_id for hb in cluster.seen("Heartbeat", broker_id=2)} == {1}


def test_a_lost_connection_to_the_coordinator_finds_it_again_and_keeps_the_generation(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer())
    cluster.move_coordinator("g", 3)
    cluster.stop_broker(1)  # the old coordinator: its connection is lost
    poll_until([consumer], lambda: heartbeating_at(cluster, consumer, 3, after=0), what="heartbeats at broker 3")
    assert not cluster.seen("JoinGroup", broker_id=3)
    assert stable(consumer, generation=1) and len(consumer.assignment()) == 3  # nothing revoked


def test_a_commit_that_times_out_finds_the_coordinator_again_without_a_rebalance(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    """The commit to a coordinator whose offsets partition waits for a dead follower times out:
    the member looks the coordinator up again, commits there and keeps its generation."""
    revoked: list[set[TopicPartition]] = []

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, partitions: set[TopicPartition]) -> None:
            revoked.append(partitions)

    consumer = joined(make_consumer(enable_auto_commit=False), Listener())
    joins = len(cluster.seen("JoinGroup"))
    finds = len(cluster.seen("FindCoordinator"))
    cluster.group_script["OffsetCommit"].append(Errors.REQUEST_TIMED_OUT)
    consumer.commit({T0: 5})
    assert cluster.committed("g")[T0] == 5
    assert len(cluster.seen("FindCoordinator")) == finds + 1
    heartbeats = len(cluster.seen("Heartbeat", broker_id=1))
    poll_until([consumer], lambda: heartbeating_at(cluster, consumer, 1, after=heartbeats), what="heartbeats again")
    assert len(cluster.seen("JoinGroup")) == joins and not revoked
    assert stable(consumer, generation=1)


def test_a_coordinator_that_does_not_know_the_generation_makes_the_member_rejoin(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer())
    joins = len(cluster.seen("JoinGroup"))
    cluster.group_script["Heartbeat"].extend([Errors.NOT_COORDINATOR, Errors.UNKNOWN_MEMBER_ID])
    poll_until([consumer], lambda: len(cluster.seen("JoinGroup")) > joins, what="a rejoin after UNKNOWN_MEMBER_ID")
    assert cluster.seen("JoinGroup")[joins].member_id == ""  # the member id was forgotten


def test_join_group_errors_back_off_and_try_again(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.group_script["JoinGroup"].extend([Errors.COORDINATOR_LOAD_IN_PROGRESS, Errors.REBALANCE_IN_PROGRESS])
    consumer = joined(make_consumer())
    assert [j.member_id for j in cluster.seen("JoinGroup")][:3] == ["", "", ""]
    assert consumer.group_state().generation_id == 1


def test_unknown_member_id_resets_the_member_id_and_the_partitions_are_lost(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    listener = Recorder(cluster)
    consumer = joined(make_consumer(), listener)
    old_id = consumer.group_state().member_id
    commits = len(cluster.seen("OffsetCommit"))
    cluster.expire_member("g", old_id)  # as after a session timeout: heartbeats answer UNKNOWN_MEMBER_ID
    # Its removal ended generation 1 and left generation 2 empty; the fresh join makes generation 3.
    poll_until([consumer], lambda: stable(consumer, generation=3), what="a fresh join")
    new_id = consumer.group_state().member_id
    assert new_id != old_id
    joins = [j.member_id for j in cluster.seen("JoinGroup")]
    assert joins[-2:] == ["", new_id]  # from scratch: MEMBER_ID_REQUIRED again
    assert listener.events == [("assigned", ALL), ("lost", ALL), ("assigned", ALL)]
    assert len(cluster.seen("OffsetCommit")) == commits  # nothing committed for lost partitions


def test_illegal_generation_keeps_the_member_id_and_forgets_the_generation(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    listener = Recorder()
    consumer = joined(make_consumer(), listener)
    member_id = consumer.group_state().member_id
    cluster.group_script["Heartbeat"].append(Errors.ILLEGAL_GENERATION)
    poll_until([consumer], lambda: stable(consumer, generation=2), what="a rejoin")
    assert cluster.seen("JoinGroup")[-1].member_id == member_id == consumer.group_state().member_id
    assert listener.events[1] == ("lost", ALL)


def test_fenced_instance_id_is_fatal(cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]) -> None:
    consumer = joined(make_consumer(group_instance_id="instance-1"))
    cluster.group_script["Heartbeat"].append(Errors.FENCED_INSTANCE_ID)
    with pytest.raises(KafkaError) as raised:
        poll_until([consumer], lambda: False, what="the fatal error")
    assert raised.value.error is Errors.FENCED_INSTANCE_ID
    with pytest.raises(KafkaError):
        consumer.poll(0)


def test_commits_carry_the_generation_and_member_id(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(enable_auto_commit=False))
    state = consumer.group_state()
    consumer.commit({T1: 7})
    (commit,) = cluster.seen("OffsetCommit")
    assert (commit.group_id, commit.generation_id, commit.member_id) == ("g", 1, state.member_id)
    assert [(t.name, p.partition, p.committed_offset) for t in commit.topics for p in t.partitions] == [("t", 1, 7)]
    assert consumer.committed(T1) == 7 and consumer.committed(T2) is None


def test_auto_commit_commits_the_positions_every_interval(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T2, [b"x", b"y"])
    consumer = joined(make_consumer(auto_commit_interval_ms=50))
    poll_until([consumer], lambda: cluster.committed("g").get(("t", 2)) == 2, what="an automatic commit")
    assert all(c.generation_id == 1 for c in cluster.seen("OffsetCommit"))


def test_a_commit_answered_illegal_generation_fails_and_the_member_rejoins(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(enable_auto_commit=False))
    cluster.group_script["OffsetCommit"].append(Errors.ILLEGAL_GENERATION)
    with pytest.raises(CommitFailedError) as raised:
        consumer.commit({T0: 1})
    assert raised.value.error is Errors.ILLEGAL_GENERATION
    assert consumer.group_state().generation_id == -1
    poll_until([consumer], lambda: stable(consumer, generation=2), what="a rejoin")


def test_manually_assigned_partitions_commit_outside_the_group_and_resume(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T1, [b"a", b"b", b"c"])
    cluster.set_committed("g", {("t", 1): 1})
    consumer = make_consumer(enable_auto_commit=False)
    consumer.assign([T1])
    assert consumer.position(T1) == 1  # the committed offset, not auto.offset.reset
    records = poll_until([consumer], lambda: consumer.position(T1) == 3)[0]
    assert [r.offset for r in records] == [1, 2]
    consumer.commit()
    commit = cluster.seen("OffsetCommit")[-1]
    assert (commit.generation_id, commit.member_id) == (-1, "")
    assert cluster.committed("g")[("t", 1)] == 3


def test_a_new_assignment_resumes_from_the_committed_offsets(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    for tp in ALL:
        cluster.append(tp, [b"0", b"1", b"2", b"3"])
    cluster.set_committed("g", {("t", 0): 3, ("t", 2): 1})
    consumer = make_consumer(auto_offset_reset="latest")
    consumer.subscribe(["t"])
    got = poll_until([consumer], lambda: stable(consumer) and consumer.position(T2) == 4)[0]
    assert sorted((r.partition, r.offset) for r in got) == [(0, 3), (2, 1), (2, 2), (2, 3)]
    assert consumer.position(T1) == 4  # nothing committed: auto.offset.reset (latest)
    fetches = cluster.seen("OffsetFetch")
    assert sorted((t.name, p) for f in fetches for t in f.topics for p in t.partitions) == [
        ("t", 0), ("t", 1), ("t", 2)]


def test_a_restarted_consumer_resumes_where_the_closed_one_committed(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [b"a", b"b"])
    first = joined(make_consumer())
    poll_until([first], lambda: first.position(T0) == 2)
    first.close()  # enable.auto.commit: commits on close, then leaves
    assert cluster.committed("g")[("t", 0)] == 2
    cluster.append(T0, [b"c"])
    second = make_consumer()
    second.subscribe(["t"])
    got = poll_until([second], lambda: T0 in second.assignment() and second.position(T0) == 3)[0]
    assert [(r.offset, r.value) for r in got] == [(2, b"c")]


def test_records_of_a_revoked_partition_are_never_returned(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    for tp in ALL:
        cluster.append(tp, [b"%d" % i for i in range(50)])
    first = joined(make_consumer(max_poll_records=3))
    assert first.poll(1000)  # more is buffered for every partition than one poll returns
    second = make_consumer(max_poll_records=3)
    second.subscribe(["t"])
    outside: list[ConsumerRecord] = []

    def step() -> bool:
        for consumer in (first, second):
            records = consumer.poll(20)
            owned = consumer.assignment()
            outside.extend(r for r in records if TopicPartition(r.topic, r.partition) not in owned)
        return stable(first, second, generation=2) and first.assignment() == {T0, T1}

    wait_for(step, 5, "the second member's join")
    poll_until([first, second], lambda: second.position(T2) == 50)
    assert outside == []


def test_poll_keeps_its_timeout_while_the_join_waits_for_other_members(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    first = joined(make_consumer())
    second = make_consumer()
    second.subscribe(["t"])
    started = time.monotonic()
    assert second.poll(100) == []  # its JoinGroup waits for the first member, which is not polled
    assert time.monotonic() - started < 1.0
    assert second.group_state().state is MemberState.PREPARING_REBALANCE
    poll_until([first, second], lambda: stable(first, second, generation=2))


def test_a_member_not_polled_for_max_poll_interval_leaves_and_rejoins_afresh(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    listener = Recorder()
    consumer = joined(make_consumer(max_poll_interval_ms=300), listener)
    old_id = consumer.group_state().member_id
    (leave,) = wait_for(lambda: cluster.seen("LeaveGroup"), what="the LeaveGroup of the poll timeout")
    assert [m.member_id for m in leave.members] == [old_id]
    poll_until([consumer], lambda: stable(consumer, generation=3))  # generation 2 was the empty group
    assert consumer.group_state().member_id != old_id
    assert listener.events == [("assigned", ALL), ("lost", ALL), ("assigned", ALL)]


def test_close_revokes_and_sends_leave_group(cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]) -> None:
    listener = Recorder()
    consumer = joined(make_consumer(), listener)
    member_id = consumer.group_state().member_id
    consumer.close()
    (leave,) = cluster.seen("LeaveGroup")
    assert (leave.group_id, [m.member_id for m in leave.members]) == ("g", [member_id])
    assert listener.events == [("assigned", ALL), ("revoked", ALL)]
    assert cluster.group_state("g") == "Empty"


def test_a_static_member_joins_without_member_id_required_and_does_not_leave_on_close(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(group_instance_id="instance-1"))
    (join,) = cluster.seen("JoinGroup")
    assert join.group_instance_id == "instance-1" and join.member_id == ""
    assert all(h.group_instance_id == "instance-1" for h in cluster.seen("Heartbeat"))
    consumer.close()
    assert cluster.seen("LeaveGroup") == []


def test_unsubscribe_leaves_and_a_changed_subscription_rejoins(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.create_topic("u", [2])
    consumer = joined(make_consumer())
    consumer.subscribe(["t", "u"])
    poll_until([consumer], lambda: stable(consumer, generation=2))
    assert consumer.assignment() == {*ALL, TopicPartition("u", 0)}
    consumer.unsubscribe()
    assert consumer.assignment() == set() and len(cluster.seen("LeaveGroup")) == 1
    with pytest.raises(RuntimeError, match="subscribe"):
        consumer.poll(0)


def test_group_apis_need_a_group_id_and_subscribe_does_not_mix_with_assign(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    plain = KafkaConsumer(cluster.bootstrap)
    try:
        for call in (lambda: plain.subscribe(["t"]), lambda: plain.commit(), lambda: plain.committed(T0),
                     plain.group_state):
            with pytest.raises(ValueError, match="group_id"):
                call()
    finally:
        plain.close()
    consumer = make_consumer()
    consumer.assign([T0])
    with pytest.raises(RuntimeError, match="mutually exclusive"):
        consumer.subscribe(["t"])
    with pytest.raises(ValueError, match=r"heartbeat\.interval\.ms"):
        KafkaConsumer(cluster.bootstrap, group_id="g", heartbeat_interval_ms=5000, session_timeout_ms=3000)
    with pytest.raises(ValueError, match=r"partition\.assignment\.strategy"):
        KafkaConsumer(cluster.bootstrap, group_id="g", partition_assignment_strategy=["cooperative-sticky"])


def test_commit_async_reports_to_its_callback_from_a_later_poll(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(enable_auto_commit=False))
    outcomes: list[tuple[dict[TopicPartition, int], Exception | None]] = []
    consumer.commit_async({T0: 5}, lambda offsets, error: outcomes.append((offsets, error)))
    poll_until([consumer], lambda: outcomes, what="the callback")
    assert outcomes == [({T0: 5}, None)] and cluster.committed("g") == {("t", 0): 5}
    cluster.group_script["OffsetCommit"].append(Errors.ILLEGAL_GENERATION)
    consumer.commit_async({T0: 6}, lambda offsets, error: outcomes.append((offsets, error)))
    poll_until([consumer], lambda: len(outcomes) == 2, what="the failed commit's callback")
    assert isinstance(outcomes[1][1], CommitFailedError) and outcomes[1][1].error is Errors.ILLEGAL_GENERATION
    poll_until([consumer], lambda: stable(consumer, generation=2), what="a rejoin")
    assert cluster.committed("g") == {("t", 0): 5}


def test_a_long_poll_is_not_taken_for_a_consumer_that_stopped_polling(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    consumer = joined(make_consumer(max_poll_interval_ms=300, fetch_max_wait_ms=2000, enable_auto_commit=False))
    started = time.monotonic()
    assert consumer.poll(900) == []  # nothing to read: longer than max.poll.interval.ms inside poll()
    assert time.monotonic() - started >= 0.85
    assert cluster.seen("LeaveGroup") == [] and stable(consumer, generation=1)
