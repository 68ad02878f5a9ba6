"""Group coordinators, consumer groups and the group leader on a live cluster: `minikafka consume
--group` processes as the members, real brokers as their coordinators."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

import grpc
import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, OFFSETS_PARTITIONS, ClusterHarness
from test_replication_live import SteadyWriter, bootstrap, create

from broker.grpc_options import OPTIONS
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import partition_for
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

pytestmark = pytest.mark.live

SESSION_MS = 6000  # group.min.session.timeout.ms, Kafka's default
# The member's session, then time to find out, rejoin and settle.
REBALANCE_WAIT_S = SESSION_MS / 1000 + 30
COORDINATOR_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + SESSION_MS / 1000 + 40
JOINED = re.compile(r"joined group (\S+) generation (\d+) as (leader|follower) \(member id (\S+)\), "
                    r"assignment: (\S+)")


@dataclass(frozen=True)
class Joined:
    generation: int
    role: str
    member_id: str
    partitions: frozenset[str]


class GroupConsumer:
    """`minikafka consume --group` in a process of its own: records on stdout, its group log on stderr."""

    def __init__(self, cluster: ClusterHarness, group: str, topic: str, name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "client.cli", "consume", "--bootstrap-server", bootstrap(cluster),
             "--topic", topic, "--group", group, "--from-beginning",
             "--consumer-property", f"session.timeout.ms={SESSION_MS}",
             "--consumer-property", "heartbeat.interval.ms=1000",
             "--consumer-property", "auto.commit.interval.ms=500",
             "--consumer-property", f"client.id={name}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.values: list[bytes] = []
        self.log: list[str] = []
        self._lock = threading.Lock()
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.values), daemon=True),
                         threading.Thread(target=self._read_log, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, into: list[bytes]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._lock:
                into.append(line.rstrip(b"\n"))

    def _read_log(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            with self._lock:
                self.log.append(line.decode(errors="replace").rstrip("\n"))

    def joins(self) -> list[Joined]:
        with self._lock:
            lines = list(self.log)
        found = []
        for line in lines:
            match = JOINED.search(line)
            if match:
                parts = frozenset() if match[5] == "none" else frozenset(match[5].split(","))
                found.append(Joined(int(match[2]), match[3], match[4], parts))
        return found

    def latest(self) -> Joined | None:
        joins = self.joins()
        return joins[-1] if joins else None

    def consumed(self) -> list[bytes]:
        with self._lock:
            return list(self.values)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        for reader in self._readers:
            reader.join(5)


def group_stub(cluster: ClusterHarness, broker_id: int) -> kafka_pb2_grpc.GroupStub:
    return kafka_pb2_grpc.GroupStub(grpc.insecure_channel(cluster.brokers[broker_id].address, options=OPTIONS))


def find_coordinator(cluster: ClusterHarness, group: str, timeout: float = 60) -> int:
    """The group's coordinator as the live brokers answer it, once they know one."""
    def answered() -> int | None:
        for broker_id, process in sorted(cluster.brokers.items()):
            if not process.running:
                continue
            with contextlib.suppress(grpc.RpcError):
                response = group_stub(cluster, broker_id).FindCoordinator(
                    kafka_pb2.FindCoordinatorRequest(key=group), timeout=5)
                if response.error_code == 0:
                    return response.node_id
        return None

    return wait_until(answered, timeout, f"a coordinator for group {group}")


def settled(members: list[GroupConsumer], partitions: set[str]) -> int | None:
    """The generation in which every given member reports itself with the partitions split among them
    without overlap or gap, and exactly one leader."""
    latest = [m.latest() for m in members]
    if any(j is None for j in latest) or len({j.generation for j in latest}) != 1:  # type: ignore[union-attr]
        return None
    owned = [p for j in latest for p in j.partitions]  # type: ignore[union-attr]
    if len(owned) != len(set(owned)) or set(owned) != partitions:
        return None
    if [j.role for j in latest].count("leader") != 1:  # type: ignore[union-attr]
        return None
    return latest[0].generation  # type: ignore[union-attr]


def assert_no_partition_owned_twice_in_a_generation(members: list[GroupConsumer]) -> None:
    owners: dict[tuple[int, str], str] = {}
    for member in members:
        for joined in member.joins():
            for partition in joined.partitions:
                other = owners.setdefault((joined.generation, partition), joined.member_id)
                assert other == joined.member_id, (
                    f"{partition} owned by {other} and {joined.member_id} in generation {joined.generation}")


def describe_members(cluster: ClusterHarness, group: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", "groups", "--bootstrap-server", bootstrap(cluster), "--describe",
         "--group", group, "--members", "--output", "json"], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def all_partitions(topic: str, count: int) -> set[str]:
    return {f"{topic}-{p}" for p in range(count)}


def test_three_consumers_the_first_leads_and_the_partitions_are_split_without_overlap(
    group_brokers: ClusterHarness, consumers: list[GroupConsumer]
) -> None:
    cluster = group_brokers
    create(cluster, "orders", 6, 3)
    first = GroupConsumer(cluster, "billing", "orders", "first")
    consumers.append(first)
    wait_until(lambda: (j := first.latest()) is not None and j.role == "leader", 60, "the first member to lead")
    consumers += [GroupConsumer(cluster, "billing", "orders", name) for name in ("second", "third")]

    generation = wait_until(lambda: settled(consumers, all_partitions("orders", 6)), REBALANCE_WAIT_S,
                            "three members sharing the six partitions")
    latest = [c.latest() for c in consumers]
    assert latest[0].role == "leader", "the first member to join stays the leader"  # type: ignore[union-attr]
    assert all(len(j.partitions) == 2 for j in latest)  # type: ignore[union-attr]

    described = wait_until(lambda: (d := describe_members(cluster, "billing"))["state"] == "Stable" and d,
                           30, "the group Stable in describe")
    assert described["generation"] == generation
    assert described["leader"] == latest[0].member_id  # type: ignore[union-attr]
    by_id = {m["consumer_id"]: m for m in described["members"]}
    assert set(by_id) == {j.member_id for j in latest}  # type: ignore[union-attr]
    for consumer, joined in zip(consumers, latest, strict=True):
        member = by_id[joined.member_id]  # type: ignore[union-attr]
        assert member["client_id"] == consumer.name
        assert member["leader"] == (joined.role == "leader")  # type: ignore[union-attr]
        assert {f"{t}-{p}" for t, p in member["partitions"]} == joined.partitions  # type: ignore[union-attr]
    assert_no_partition_owned_twice_in_a_generation(consumers)

    coordinator = find_coordinator(cluster, "billing")
    where = f"__consumer_offsets-{partition_for('billing', OFFSETS_PARTITIONS)}"
    assert f"[GroupCoordinator {coordinator}]: Preparing to rebalance group billing in state PreparingRebalance " \
           f"with old generation {generation - 1} ({where})" in cluster.log(coordinator)
    channel = grpc.insecure_channel(cluster.brokers[coordinator].address, options=OPTIONS)
    counted = kafka_pb2_grpc.AdminStub(channel).BrokerMetrics(kafka_pb2.BrokerMetricsRequest(), timeout=10)
    assert (counted.num_groups, counted.num_groups_stable) == (1, 1)


def test_the_leader_consumer_sigkilled_the_others_rebalance_under_a_new_leader(
    group_brokers: ClusterHarness, consumers: list[GroupConsumer]
) -> None:
    cluster = group_brokers
    create(cluster, "orders", 6, 3)
    consumers += [GroupConsumer(cluster, "billing", "orders", name) for name in ("a", "b", "c")]
    generation = wait_until(lambda: settled(consumers, all_partitions("orders", 6)), REBALANCE_WAIT_S,
                            "three members sharing the six partitions")
    leader = next(c for c in consumers if c.latest().role == "leader")  # type: ignore[union-attr]
    old_leader_id = leader.latest().member_id  # type: ignore[union-attr]

    leader.kill()
    survivors = [c for c in consumers if c is not leader]
    new_generation = wait_until(
        lambda: (g := settled(survivors, all_partitions("orders", 6))) is not None and g > generation and g,
        REBALANCE_WAIT_S, "the two survivors sharing every partition under a new leader",
    )
    new_leader = next(c for c in survivors if c.latest().role == "leader")  # type: ignore[union-attr]
    described = wait_until(lambda: (d := describe_members(cluster, "billing"))["generation"] == new_generation
                           and d["state"] == "Stable" and d, 30, "describe to show the new generation")
    assert described["leader"] == new_leader.latest().member_id != old_leader_id  # type: ignore[union-attr]
    assert len(described["members"]) == 2
    assert_no_partition_owned_twice_in_a_generation(consumers)


def two_members_sharing(cluster: ClusterHarness, consumers: list[GroupConsumer], group: str, topic: str,
                        names: tuple[str, str]) -> int:
    """Two members of `group` on the four partitions of `topic`, settled; their generation."""
    consumers += [GroupConsumer(cluster, group, topic, name) for name in names]
    return wait_until(lambda: settled(consumers, all_partitions(topic, 4)), REBALANCE_WAIT_S,
                      "two members sharing the four partitions")


def test_the_coordinator_broker_sigkilled_the_group_moves_and_resumes_from_committed_offsets(
    group_brokers: ClusterHarness, consumers: list[GroupConsumer]
) -> None:
    cluster = group_brokers
    create(cluster, "payments", 4, 3)
    writer = SteadyWriter(cluster, "payments")
    try:
        generation = two_members_sharing(cluster, consumers, "ledger", "payments", ("x", "y"))
        wait_until(lambda: sum(len(c.consumed()) for c in consumers) > 500, 60, "records consumed")
        coordinator = find_coordinator(cluster, "ledger")
        offsets_partition = partition_for("ledger", OFFSETS_PARTITIONS)
        before = sum(len(c.consumed()) for c in consumers)
        joins = [c.joins() for c in consumers]

        cluster.brokers[coordinator].kill()
        new_coordinator = wait_until(
            lambda: (b := find_coordinator(cluster, "ledger")) != coordinator and b, COORDINATOR_WAIT_S,
            "a new coordinator",
        )
        cluster.wait_for_log(new_coordinator, f"from __consumer_offsets-{offsets_partition} in", COORDINATOR_WAIT_S)
        loaded = [line for line in cluster.log(new_coordinator).splitlines()
                  if f"__consumer_offsets-{offsets_partition} in" in line and "Finished loading" in line][-1]
        assert "1 groups" in loaded, loaded
        # The members find the new coordinator and carry on consuming.
        wait_until(lambda: sum(len(c.consumed()) for c in consumers) > before + 500, COORDINATOR_WAIT_S,
                   "consumption to continue under the new coordinator")
        # The new coordinator loaded the group Stable: the members heartbeat there in the same
        # generation, nothing is revoked and nobody rejoins (Kafka's onGroupLoaded).
        wait_until(lambda: heartbeats_at(cluster, new_coordinator, "ledger", generation), COORDINATOR_WAIT_S,
                   "the members' heartbeats at the new coordinator")
        assert [c.joins() for c in consumers] == joins, "a member rejoined"
    finally:
        writer.stop()
    acked = set(writer.acked)
    assert acked and not writer.failed[:1]

    def everything_consumed() -> bool:
        return acked <= {v for c in consumers for v in c.consumed()}

    wait_until(everything_consumed, 90, "every acknowledged record to be consumed")
    values = [v for c in consumers for v in c.consumed()]
    # At least once, and resumed from committed offsets rather than from the beginning.
    duplicates = len(values) - len(set(values))
    assert duplicates < len(acked) // 2, f"{duplicates} of {len(values)} records were read twice\n" + "\n".join(
        f"{c.name}: {line}" for c in consumers for line in c.log if "BROKER_NOT_AVAILABLE" not in line)
    assert_no_partition_owned_twice_in_a_generation(consumers)


def heartbeats_at(cluster: ClusterHarness, broker_id: int, group: str, generation: int) -> bool:
    """The group is Stable at `broker_id` in `generation`, and `broker_id` coordinates it."""
    with contextlib.suppress(grpc.RpcError):
        described = group_stub(cluster, broker_id).DescribeGroups(
            kafka_pb2.DescribeGroupsRequest(groups=[group]), timeout=5).groups[0]
        return described.error_code == 0 and described.group_state == "Stable" and described.generation_id == generation
    return False


def test_a_broker_dying_away_from_the_coordinator_does_not_rebalance_the_group(
    cluster: ClusterHarness, consumers: list[GroupConsumer]
) -> None:
    """Killing a broker that is neither the controller nor the coordinator leaves the coordinator's
    offsets partition waiting for a dead follower until the ISR shrinks: commits time out meanwhile
    (here offsets.commit.timeout.ms is shorter than the ZooKeeper session, as 5 s is shorter than
    Kafka's 18 s) and the members look the coordinator up again, but keep their generation and
    partitions."""
    cluster.start_brokers(1, 2, 3, **{
        "group.initial.rebalance.delay.ms": "0", "auto.leader.rebalance.enable": "false",
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS), "offsets.commit.timeout.ms": "1000",
    })
    cluster.wait_for_controller()
    create(cluster, "events", 4, 3)
    writer = SteadyWriter(cluster, "events")
    try:
        generation = two_members_sharing(cluster, consumers, "audit", "events", ("p", "q"))
        coordinator = find_coordinator(cluster, "audit")
        controller = cluster.wait_for_controller().controller_id
        victim = min(set(cluster.brokers) - {coordinator, controller})  # three brokers: one at least
        before = sum(len(c.consumed()) for c in consumers)
        joins = [c.joins() for c in consumers]
        cluster.brokers[victim].kill()
        wait_until(lambda: victim not in cluster.registered_ids(), 30, f"broker {victim}'s session to expire")
        wait_until(lambda: sum(len(c.consumed()) for c in consumers) > before + 500, COORDINATOR_WAIT_S,
                   "consumption to go on")
        wait_until(lambda: heartbeats_at(cluster, coordinator, "audit", generation), 30, "the group Stable")
        logs = "\n".join(f"{c.name}: {line}" for c in consumers for line in c.log)
        assert "REQUEST_TIMED_OUT" in logs, "no commit timed out\n" + logs
        assert [c.joins() for c in consumers] == joins, "a member rejoined\n" + logs
    finally:
        writer.stop()


# -- bad input ------------------------------------------------------------------------------------


def join(stub: kafka_pb2_grpc.GroupStub, group: str, member_id: str = "", protocols: tuple[str, ...] = ("range",),
         session_ms: int = SESSION_MS, instance: str | None = None, protocol_type: str = "consumer",
         timeout: float = 30) -> kafka_pb2.JoinGroupResponse:
    request = kafka_pb2.JoinGroupRequest(
        group_id=group, member_id=member_id, session_timeout_ms=session_ms, rebalance_timeout_ms=10000,
        protocol_type=protocol_type, client_id="test",
        protocols=[kafka_pb2.JoinGroupProtocol(name=p, metadata=b"m") for p in protocols],
    )
    if instance is not None:
        request.group_instance_id = instance
    return stub.JoinGroup(request, timeout=timeout)


def join_as_new_member(stub: kafka_pb2_grpc.GroupStub, group: str, **kwargs: object) -> kafka_pb2.JoinGroupResponse:
    """KIP-394: a first JoinGroup is sent back with a member id, the second one counts."""
    first = join(stub, group, **kwargs)  # type: ignore[arg-type]
    if first.error_code != Errors.MEMBER_ID_REQUIRED.code:
        return first
    return join(stub, group, member_id=first.member_id, **kwargs)  # type: ignore[arg-type]


def commit(stub: kafka_pb2_grpc.GroupStub, group: str, member_id: str, generation: int, topic: str = "orders",
           metadata: str = "", instance: str | None = None) -> dict[tuple[str, int], int]:
    request = kafka_pb2.OffsetCommitRequest(group_id=group, member_id=member_id, generation_id=generation, topics=[
        kafka_pb2.OffsetCommitTopic(name=topic, partitions=[
            kafka_pb2.OffsetCommitPartition(partition=0, committed_offset=5, committed_metadata=metadata)])])
    if instance is not None:
        request.group_instance_id = instance
    response = stub.OffsetCommit(request, timeout=30)
    return {(t.name, p.partition): p.error_code for t in response.topics for p in t.partitions}


def test_bad_group_requests_get_kafkas_errors(group_brokers: ClusterHarness) -> None:
    cluster = group_brokers
    create(cluster, "orders", 2, 3)
    coordinator = find_coordinator(cluster, "checks")
    stub = group_stub(cluster, coordinator)
    other = group_stub(cluster, next(b for b in cluster.brokers if b != coordinator))
    wait_until(lambda: join(stub, "checks").error_code == Errors.MEMBER_ID_REQUIRED.code, 60,
               "the coordinator to finish loading")

    assert join(stub, "").error_code == Errors.INVALID_GROUP_ID.code
    oversized = "g" * 40000
    assert join(stub, oversized).error_code == Errors.INVALID_GROUP_ID.code
    assert stub.FindCoordinator(kafka_pb2.FindCoordinatorRequest(key=oversized), timeout=10).error_code == \
        Errors.INVALID_GROUP_ID.code
    assert join(other, "checks").error_code == Errors.NOT_COORDINATOR.code
    assert join(stub, "checks", session_ms=1000).error_code == Errors.INVALID_SESSION_TIMEOUT.code
    assert join(stub, "checks", session_ms=3_600_000).error_code == Errors.INVALID_SESSION_TIMEOUT.code
    assert join(stub, "checks", protocols=()).error_code == Errors.INCONSISTENT_GROUP_PROTOCOL.code
    assert join(stub, "checks", protocol_type="").error_code == Errors.INCONSISTENT_GROUP_PROTOCOL.code

    leader = join_as_new_member(stub, "checks")
    assert leader.error_code == 0 and leader.leader == leader.member_id and leader.generation_id == 1
    # A member whose protocols share nothing with the group's.
    assert join_as_new_member(stub, "checks", protocols=("sticky",)).error_code == \
        Errors.INCONSISTENT_GROUP_PROTOCOL.code

    def heartbeat(member_id: str, generation: int) -> int:
        return stub.Heartbeat(kafka_pb2.HeartbeatRequest(group_id="checks", member_id=member_id,
                                                         generation_id=generation), timeout=10).error_code

    assert heartbeat("nobody", 1) == Errors.UNKNOWN_MEMBER_ID.code
    assert heartbeat(leader.member_id, 7) == Errors.ILLEGAL_GENERATION.code

    # A second member: the leader learns of the rebalance from its heartbeat and rejoins.
    answers: dict[str, kafka_pb2.JoinGroupResponse] = {}
    joining = threading.Thread(target=lambda: answers.update(follower=join_as_new_member(stub, "checks")))
    joining.start()
    wait_until(lambda: heartbeat(leader.member_id, 1) == Errors.REBALANCE_IN_PROGRESS.code, 30, "the rebalance")
    rejoined = join(stub, "checks", member_id=leader.member_id)
    joining.join(30)
    follower = answers["follower"]
    assert rejoined.generation_id == follower.generation_id == 2
    assert rejoined.leader == leader.member_id and len(rejoined.members) == 2 and not follower.members

    # The follower's SyncGroup hands out an assignment of its own: it is ignored; the leader's counts.
    synced: dict[str, kafka_pb2.SyncGroupResponse] = {}
    syncing = threading.Thread(target=lambda: synced.update(follower=stub.SyncGroup(kafka_pb2.SyncGroupRequest(
        group_id="checks", generation_id=2, member_id=follower.member_id,
        assignments=[kafka_pb2.SyncGroupAssignment(member_id=follower.member_id, assignment=b"everything")]),
        timeout=30)))
    syncing.start()
    leader_sync = stub.SyncGroup(kafka_pb2.SyncGroupRequest(
        group_id="checks", generation_id=2, member_id=leader.member_id, assignments=[
            kafka_pb2.SyncGroupAssignment(member_id=leader.member_id, assignment=b"leader-part"),
            kafka_pb2.SyncGroupAssignment(member_id=follower.member_id, assignment=b"follower-part")]), timeout=30)
    syncing.join(30)
    assert leader_sync.error_code == 0 and leader_sync.assignment == b"leader-part"
    assert synced["follower"].error_code == 0 and synced["follower"].assignment == b"follower-part"
    assert stub.SyncGroup(kafka_pb2.SyncGroupRequest(group_id="checks", generation_id=1, member_id=leader.member_id),
                          timeout=10).error_code == Errors.ILLEGAL_GENERATION.code

    # Commits: a stale generation, an unknown member, oversized metadata, an unknown topic.
    assert commit(stub, "checks", leader.member_id, 1) == {("orders", 0): Errors.ILLEGAL_GENERATION.code}
    assert commit(stub, "checks", "nobody", 2) == {("orders", 0): Errors.UNKNOWN_MEMBER_ID.code}
    assert commit(stub, "checks", leader.member_id, 2, metadata="m" * 5000) == {
        ("orders", 0): Errors.OFFSET_METADATA_TOO_LARGE.code}
    assert commit(stub, "checks", leader.member_id, 2, topic="no-such-topic") == {
        ("no-such-topic", 0): Errors.UNKNOWN_TOPIC_OR_PARTITION.code}
    assert commit(stub, "checks", leader.member_id, 2) == {("orders", 0): 0}

    # A static member replaced by a newer instance with the same group.instance.id is fenced.
    static_group = "static-checks"
    static_stub = group_stub(cluster, find_coordinator(cluster, static_group))
    old = join(static_stub, static_group, instance="instance-1")
    assert old.error_code == 0
    assert static_stub.SyncGroup(kafka_pb2.SyncGroupRequest(
        group_id=static_group, generation_id=old.generation_id, member_id=old.member_id, group_instance_id="instance-1",
        assignments=[kafka_pb2.SyncGroupAssignment(member_id=old.member_id, assignment=b"a")]),
        timeout=30).error_code == 0
    new = join(static_stub, static_group, instance="instance-1")
    assert new.error_code == 0 and new.member_id != old.member_id
    assert commit(static_stub, static_group, old.member_id, old.generation_id, instance="instance-1") == {
        ("orders", 0): Errors.FENCED_INSTANCE_ID.code}

    # Nothing above was stored: the committed offset is the one good commit's.
    fetched = stub.OffsetFetch(kafka_pb2.OffsetFetchRequest(group_id="checks"), timeout=10)
    assert fetched.error_code == 0
    assert [(t.name, p.partition, p.committed_offset) for t in fetched.topics for p in t.partitions] == [
        ("orders", 0, 5)]


def test_the_first_find_coordinator_creates_the_offsets_topic_replicated_to_the_live_brokers(
    cluster: ClusterHarness,
) -> None:
    cluster.start_brokers(1, 2, **{"offsets.topic.num.partitions": "5"})
    cluster.wait_for_controller()
    wait_until(lambda: len(cluster.admin(1).metadata([]).brokers) == 2, 30, "broker 1 to know both brokers")
    first = group_stub(cluster, 1).FindCoordinator(kafka_pb2.FindCoordinatorRequest(key="g"), timeout=10)
    assert first.error_code == Errors.COORDINATOR_NOT_AVAILABLE.code
    coordinator = find_coordinator(cluster, "g")
    assignment = cluster.read_json("/brokers/topics/__consumer_offsets")["partitions"]
    assert len(assignment) == 5 and all(len(replicas) == 2 for replicas in assignment.values())
    state = cluster.read_json(f"/brokers/topics/__consumer_offsets/partitions/{partition_for('g', 5)}/state")
    assert coordinator == state["leader"]
    assert "only 2 brokers are alive" in cluster.log(1)
    # Every broker gives the same answer, from its own metadata cache.
    for broker_id in (1, 2):
        answer = group_stub(cluster, broker_id).FindCoordinator(kafka_pb2.FindCoordinatorRequest(key="g"), timeout=10)
        assert (answer.error_code, answer.node_id, answer.port) == (0, coordinator, cluster.brokers[coordinator].port)


def test_a_group_with_no_members_lists_and_describes_as_empty_with_its_offsets(
    group_brokers: ClusterHarness,
) -> None:
    cluster = group_brokers
    create(cluster, "orders", 2, 3)
    stub = group_stub(cluster, find_coordinator(cluster, "archive"))
    wait_until(lambda: commit(stub, "archive", "", -1) == {("orders", 0): 0}, 60, "a commit outside any generation")
    described = stub.DescribeGroups(kafka_pb2.DescribeGroupsRequest(groups=["archive", "never-seen"]), timeout=10)
    assert [(g.group_id, g.group_state, g.error_code) for g in described.groups] == [
        ("archive", "Empty", 0), ("never-seen", "Dead", 0)]
    listed = stub.ListGroups(kafka_pb2.ListGroupsRequest(), timeout=10)
    assert ("archive", "Empty") in [(g.group_id, g.group_state) for g in listed.groups]


def test_consumer_property_names_are_checked_on_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", "consume", "--bootstrap-server", "127.0.0.1:1", "--topic", "t",
         "--group", "g", "--consumer-property", "session.timeout=5"], capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "session.timeout.ms" in result.stderr
