"""Consumer groups on a 3-broker local cluster: rebalances and coordinator failover.

Members are light in-process clients over real gRPC, one thread each: JoinGroup (with KIP-394's
member id round trip), the leader hands out a topic's partitions round-robin, SyncGroup, then a
heartbeat every third of the session timeout, rejoining when told to, finding the coordinator
again when it moves.

1. Time for 10, 100 and 500 members started together to reach Stable (every member synced in
   one generation), with group.initial.rebalance.delay.ms=0.
2. The leader stops (as if SIGKILLed: no LeaveGroup); the time to Stable again without it, minus
   the session timeout.
3. Coordinator failover: a group with 10,000 committed offsets; SIGKILL its coordinator broker and
   time from the kill to a member's first successful heartbeat at the new coordinator, minus the
   brokers' ZooKeeper session timeout; and how long the new coordinator took to reload the group's
   offsets partition (from its log).

    python bench/consumer_group.py [--members 10,100,500] [--offsets 10000]
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from broker.grpc_options import OPTIONS
from client.admin import AdminClient
from client.tooling.local_cluster import LocalCluster
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

STABLE_GOAL_S = 2.0  # 500 members
RELOAD_GOAL_MS = 200.0  # 10,000 offsets
ZK_SESSION_MS = 4000
SESSION_MS = 3000
TOPIC_PARTITIONS = 1000  # what the leaders hand out: only the assignments' size matters here
RETRIABLE = {Errors.NOT_COORDINATOR.code, Errors.COORDINATOR_NOT_AVAILABLE.code,
             Errors.COORDINATOR_LOAD_IN_PROGRESS.code}


class Cluster:
    def __init__(self, work: Path) -> None:
        overrides = {
            "auto.leader.rebalance.enable": "false", "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": str(SESSION_MS), "zookeeper.session.timeout.ms": str(ZK_SESSION_MS),
        }
        self.local = LocalCluster(work, 3, overrides=overrides)
        self.local.start()
        self.local.wait_ready()
        self.brokers = {b.broker_id: b for b in self.local.brokers}
        self.admin = AdminClient(self.local.bootstrap_servers, timeout_s=120)
        self._stubs: dict[int, kafka_pb2_grpc.GroupStub] = {}
        self._lock = threading.Lock()

    def stub(self, broker_id: int) -> kafka_pb2_grpc.GroupStub:
        with self._lock:
            if broker_id not in self._stubs:
                channel = grpc.insecure_channel(self.brokers[broker_id].address, options=OPTIONS)
                self._stubs[broker_id] = kafka_pb2_grpc.GroupStub(channel)
            return self._stubs[broker_id]

    def find_coordinator(self, group: str) -> int | None:
        for broker_id, broker in self.brokers.items():
            if not broker.running:
                continue
            try:
                answer = self.stub(broker_id).FindCoordinator(kafka_pb2.FindCoordinatorRequest(key=group), timeout=5)
            except grpc.RpcError:
                continue
            if answer.error_code == 0 and answer.node_id in self.brokers:
                return answer.node_id
        return None

    def stop(self) -> None:
        self.local.kill()


class Member:
    """One light group member on a thread of its own."""

    def __init__(self, cluster: Cluster, group: str, partitions: int) -> None:
        self.cluster = cluster
        self.group = group
        self.partitions = partitions
        self.member_id = ""
        self.coordinator: int | None = None
        self.generation = -1
        self.synced_at = 0.0
        self.is_leader = False
        self.heartbeats_ok: list[float] = []
        self.stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop without a LeaveGroup, as a killed process would."""
        self.stopped.set()

    def _stub(self) -> kafka_pb2_grpc.GroupStub:
        while self.coordinator is None and not self.stopped.is_set():
            self.coordinator = self.cluster.find_coordinator(self.group)
            if self.coordinator is None:
                time.sleep(0.05)
        return self.cluster.stub(self.coordinator or 1)

    def _lost_coordinator(self) -> None:
        self.coordinator = None
        time.sleep(0.05)

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                if self._join_and_sync():
                    self._heartbeat_until_rejoin()
            except grpc.RpcError:
                self._lost_coordinator()

    def _join_and_sync(self) -> bool:
        request = kafka_pb2.JoinGroupRequest(
            group_id=self.group, member_id=self.member_id, session_timeout_ms=SESSION_MS,
            rebalance_timeout_ms=30000, protocol_type="consumer", client_id="bench",
            protocols=[kafka_pb2.JoinGroupProtocol(name="roundrobin", metadata=b"")],
        )
        joined = self._stub().JoinGroup(request, timeout=60)
        if joined.error_code == Errors.MEMBER_ID_REQUIRED.code:
            self.member_id = joined.member_id
            return False
        if joined.error_code in RETRIABLE:
            self._lost_coordinator()
            return False
        if joined.error_code == Errors.UNKNOWN_MEMBER_ID.code:
            self.member_id = ""
            return False
        if joined.error_code != 0:
            return False
        self.member_id = joined.member_id
        self.is_leader = joined.leader == joined.member_id
        assignments = []
        if self.is_leader:
            ids = sorted(m.member_id for m in joined.members)
            owned: dict[str, list[str]] = {m: [] for m in ids}
            for p in range(self.partitions):
                owned[ids[p % len(ids)]].append(str(p))
            assignments = [kafka_pb2.SyncGroupAssignment(member_id=m, assignment=",".join(ps).encode())
                           for m, ps in owned.items()]
        synced = self._stub().SyncGroup(kafka_pb2.SyncGroupRequest(
            group_id=self.group, generation_id=joined.generation_id, member_id=self.member_id,
            assignments=assignments), timeout=60)
        if synced.error_code != 0:
            if synced.error_code in RETRIABLE:
                self._lost_coordinator()
            return False
        self.generation = joined.generation_id
        self.synced_at = time.monotonic()
        return True

    def _heartbeat_until_rejoin(self) -> None:
        interval = SESSION_MS / 3000
        while not self.stopped.wait(interval):
            try:
                answer = self._stub().Heartbeat(kafka_pb2.HeartbeatRequest(
                    group_id=self.group, member_id=self.member_id, generation_id=self.generation), timeout=5)
            except grpc.RpcError:
                self._lost_coordinator()
                continue
            if answer.error_code == 0:
                self.heartbeats_ok.append(time.monotonic())
                continue
            if answer.error_code in RETRIABLE:
                self._lost_coordinator()
                continue
            if answer.error_code == Errors.UNKNOWN_MEMBER_ID.code:
                self.member_id = ""
            return


def stable_at(members: list[Member]) -> float | None:
    """When every running member had synced in one generation, or None while they have not."""
    live = [m for m in members if not m.stopped.is_set()]
    generations = {m.generation for m in live}
    if len(generations) != 1 or -1 in generations:
        return None
    return max(m.synced_at for m in live)


def time_to_stable(cluster: Cluster, count: int) -> tuple[float, float]:
    """(seconds for `count` members to reach Stable, seconds to Stable again after the leader stops,
    minus the session timeout)."""
    group = f"bench-{count}"
    members = [Member(cluster, group, TOPIC_PARTITIONS) for _ in range(count)]
    started = time.monotonic()
    for member in members:
        member.start()
    at = wait_until(lambda: stable_at(members), 120, f"{count} members to reach Stable")
    first = at - started
    generation = members[0].generation
    leader = next(m for m in members if m.is_leader and m.generation == generation)
    leader.stop()
    # The coordinator counts the session from the leader's last sign of life.
    last_seen = max([leader.synced_at, *leader.heartbeats_ok])
    survivor = next(m for m in members if m is not leader)
    again = wait_until(lambda: (t := stable_at(members)) is not None and survivor.generation > generation and t,
                       120, "Stable again without the leader")
    for member in members:
        member.stop()
    return first, again - last_seen - SESSION_MS / 1000


def coordinator_failover(cluster: Cluster, offsets: int) -> tuple[float, str]:
    topic = "committed"
    result = cluster.admin.create_topic(topic, offsets, 1, {})
    if result.error_code != 0:
        raise RuntimeError(f"cannot create {topic}: {result.error_message}")
    group = "failover"
    members = [Member(cluster, group, offsets) for _ in range(3)]
    for member in members:
        member.start()
    wait_until(lambda: stable_at(members), 120, "the group to reach Stable")
    member = members[0]
    coordinator = cluster.find_coordinator(group)
    assert coordinator is not None
    for start in range(0, offsets, 1000):  # a commit is one record batch, under message.max.bytes
        commit = kafka_pb2.OffsetCommitRequest(
            group_id=group, member_id=member.member_id, generation_id=member.generation,
            topics=[kafka_pb2.OffsetCommitTopic(name=topic, partitions=[
                kafka_pb2.OffsetCommitPartition(partition=p, committed_offset=p)
                for p in range(start, min(offsets, start + 1000))])])
        answer = cluster.stub(coordinator).OffsetCommit(commit, timeout=60)
        errors = {p.error_code for t in answer.topics for p in t.partitions}
        if errors != {0}:
            raise RuntimeError(f"the commit of {offsets} offsets failed: {errors}")
    time.sleep(ZK_SESSION_MS / 3000)  # a random-ish phase of the broker's ZooKeeper pings
    killed = time.monotonic()
    cluster.brokers[coordinator].kill()
    first_ok = wait_until(
        lambda: min((t for m in members for t in m.heartbeats_ok if t > killed and m.coordinator not in
                     (None, coordinator)), default=None),
        120, "a heartbeat at the new coordinator",
    )
    new = cluster.find_coordinator(group)
    pattern = re.compile(r"Finished loading offsets and group metadata from (__consumer_offsets-\d+) in (\d+) "
                         r"milliseconds.*\((\d+) records, (\d+) groups\)")
    loads = [m for m in pattern.finditer(cluster.brokers[new].log_text() if new else "") if int(m[4]) > 0]
    load = f"{loads[-1][1]}: {int(loads[-1][3]):,} records in {loads[-1][2]} ms" if loads else "no load seen"
    for m in members:
        m.stop()
    return first_ok - killed - ZK_SESSION_MS / 1000, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="10,100,500", help="group sizes, comma-separated")
    parser.add_argument("--offsets", type=int, default=10000, help="committed offsets to reload")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="minikafka-bench-") as work:
        cluster = Cluster(Path(work))
        try:
            wait_until(lambda: cluster.find_coordinator("warm-up"), 60, "__consumer_offsets to be created")
            print(f"Consumer group rebalances (3 brokers, group.initial.rebalance.delay.ms=0, session "
                  f"{SESSION_MS} ms, heartbeat every {SESSION_MS // 3} ms)")
            for count in (int(c) for c in args.members.split(",")):
                first, again = time_to_stable(cluster, count)
                goal = f" (goal < {STABLE_GOAL_S:.0f} s: {'met' if first < STABLE_GOAL_S else 'MISSED'})" \
                    if count == 500 else ""
                print(f"  {count:4d} members: Stable in {first:6.2f} s{goal}; after the leader stops, Stable "
                      f"again in {again:5.2f} s beyond the session timeout", flush=True)
            took, load = coordinator_failover(cluster, args.offsets)
            match = re.search(r"in (\d+) ms", load)
            met = match is not None and int(match[1]) < RELOAD_GOAL_MS
            goal = f" (goal < {RELOAD_GOAL_MS:.0f} ms: {'met' if met else 'MISSED'})"
            print(f"Coordinator failover with {args.offsets:,} committed offsets (ZooKeeper session "
                  f"{ZK_SESSION_MS} ms): first heartbeat at the new coordinator {took:5.2f} s after the session "
                  f"expired; reload of {load}{goal}", flush=True)
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
