"""A fake cluster for the clients' unit tests: in-process gRPC Admin, Data and Group services with
scripted answers (no broker logic: the live tests run real brokers).

The Group service is a small group coordinator, enough for the consumer's reactions to be tested:
KIP-394's MEMBER_ID_REQUIRED round, a join phase that ends when every member has rejoined (or the
rebalance timeout passed), the first member as leader, the protocol vote, SyncGroup, heartbeats,
LeaveGroup, static members replacing each other, committed offsets. No initial rebalance delay and
no session expiry. `group_script` answers the next request of an API with an error instead."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from broker.log.record_batch import build_batch, read_header, read_records, stamp
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import select_protocol
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 5.0, what: str = "the condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


@dataclass
class ProduceSeen:
    broker_id: int
    acks: int
    topic: str
    partition: int
    records: bytes

    @property
    def header(self):  # type: ignore[no-untyped-def]
        return read_header(self.records)


@dataclass
class Scripted:
    """An answer to give instead of the real one: `after_append` appends first (an answer lost)."""

    error: Errors
    leader_hint: int = -1
    epoch_hint: int = -1
    after_append: bool = False


@dataclass
class FakePartition:
    leader: int
    epoch: int = 0
    log: list[bytes] = field(default_factory=list)  # stamped batches
    log_start: int = 0
    end: int = 0
    sequences: dict[tuple[int, int], int] = field(default_factory=dict)  # (pid, base seq) -> base offset

    def batch_positions(self) -> list[tuple[int, int]]:
        return [(read_header(b).base_offset, read_header(b).next_offset) for b in self.log]


@dataclass
class FakeMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    protocols: list[tuple[str, bytes]]
    rebalance_timeout_ms: int
    awaiting_join: bool = False
    assignment: bytes = b""


@dataclass
class FakeGroup:
    group_id: str
    state: str = "Empty"
    generation: int = 0
    protocol: str = ""
    leader: str = ""
    members: dict[str, FakeMember] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)  # member ids given with MEMBER_ID_REQUIRED
    fenced: set[str] = field(default_factory=set)  # replaced static members
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    join_deadline: float = 0.0


@dataclass
class GroupRequestSeen:
    broker_id: int
    api: str
    request: Any
    at: float  # time.monotonic()


GROUP_APIS = ("FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetCommit", "OffsetFetch",
              "DescribeGroups", "ListGroups")


# -- the group coordinator ---------------------------------------------------------------------------

class _GroupCoordinator:
    """FakeCluster's Group service logic, run under the cluster's lock (a mixin)."""

    lock: threading.Condition
    groups: dict[str, FakeGroup]
    servers: dict[int, tuple[grpc.Server, int]]
    group_script: dict[str, deque[Errors]]
    group_seen: list[GroupRequestSeen]
    next_member_number: int
    closing: bool
    group_coordinators: dict[str, int]
    default_coordinator: int

    def coordinator_of(self, group_id: str) -> int:
        return self.group_coordinators.get(group_id, self.default_coordinator)

    def _group_request(self, broker_id: int, api: str, request: Any, group_id: str | None) -> Errors | None:
        """Record the request; the error to answer instead (scripted, or NOT_COORDINATOR), if any."""
        self.group_seen.append(GroupRequestSeen(broker_id, api, request, time.monotonic()))
        self.lock.notify_all()
        if self.group_script[api]:
            return self.group_script[api].popleft()
        if group_id is not None and self.coordinator_of(group_id) != broker_id:
            return Errors.NOT_COORDINATOR
        return None

    def _prepare_rebalance(self, group: FakeGroup) -> None:
        if group.state != "PreparingRebalance":
            group.state = "PreparingRebalance"
            timeouts = [m.rebalance_timeout_ms for m in group.members.values()] or [0]
            group.join_deadline = time.monotonic() + max(timeouts) / 1000
        self.lock.notify_all()

    def _complete_join(self, group: FakeGroup) -> None:
        group.generation += 1
        if not group.members:
            group.state, group.leader, group.protocol = "Empty", "", ""
        else:
            group.protocol = select_protocol([[name for name, _ in m.protocols] for m in group.members.values()])
            if group.leader not in group.members:
                group.leader = next(iter(group.members))
            group.state = "CompletingRebalance"
        for member in group.members.values():
            member.awaiting_join, member.assignment = False, b""
        self.lock.notify_all()

    def find_coordinator(self, broker_id: int, request: kafka_pb2.FindCoordinatorRequest
                         ) -> kafka_pb2.FindCoordinatorResponse:
        with self.lock:
            error = self._group_request(broker_id, "FindCoordinator", request, None)
            if error is not None:
                return kafka_pb2.FindCoordinatorResponse(error_code=error.code, node_id=-1)
            node = self.coordinator_of(request.key)
            return kafka_pb2.FindCoordinatorResponse(node_id=node, host="127.0.0.1", port=self.servers[node][1])

    def join_group(self, broker_id: int, request: kafka_pb2.JoinGroupRequest) -> kafka_pb2.JoinGroupResponse:
        def failed(error: Errors, member_id: str = request.member_id) -> kafka_pb2.JoinGroupResponse:
            return kafka_pb2.JoinGroupResponse(error_code=error.code, member_id=member_id, generation_id=-1)

        instance = request.group_instance_id if request.HasField("group_instance_id") else None
        with self.lock:
            error = self._group_request(broker_id, "JoinGroup", request, request.group_id)
            if error is not None:
                return failed(error)
            group = self.groups.setdefault(request.group_id, FakeGroup(request.group_id))
            member_id = request.member_id
            if member_id in group.fenced:
                return failed(Errors.FENCED_INSTANCE_ID)
            if not member_id:
                self.next_member_number += 1
                member_id = f"{request.client_id}-{self.next_member_number}"
                if instance is None:  # KIP-394: come back under this name
                    group.pending.add(member_id)
                    return failed(Errors.MEMBER_ID_REQUIRED, member_id)
                old = next((m for m in group.members.values() if m.group_instance_id == instance), None)
                if old is not None:  # a static member's restart replaces (and fences) its old self
                    group.fenced.add(old.member_id)
                    del group.members[old.member_id]
                    if group.leader == old.member_id:
                        group.leader = member_id
            elif member_id not in group.members and member_id not in group.pending:
                return failed(Errors.UNKNOWN_MEMBER_ID)
            group.pending.discard(member_id)
            member = group.members.setdefault(member_id, FakeMember(member_id, instance, request.client_id, [], 0))
            member.protocols = [(p.name, p.metadata) for p in request.protocols]
            member.rebalance_timeout_ms, member.client_id = request.rebalance_timeout_ms, request.client_id
            member.awaiting_join = True
            if group.leader not in group.members:
                group.leader = member_id
            self._prepare_rebalance(group)
            while member.awaiting_join:
                if group.members.get(member_id) is not member or self.closing:
                    return failed(Errors.UNKNOWN_MEMBER_ID)
                if all(m.awaiting_join for m in group.members.values()):
                    self._complete_join(group)
                    break
                remaining = group.join_deadline - time.monotonic()
                if remaining <= 0:  # the members that did not rejoin in time are out
                    for late in [m for m in group.members.values() if not m.awaiting_join]:
                        del group.members[late.member_id]
                    continue
                self.lock.wait(remaining)
            response = kafka_pb2.JoinGroupResponse(
                generation_id=group.generation, protocol_type="consumer", protocol_name=group.protocol,
                leader=group.leader, member_id=member_id,
            )
            if member_id == group.leader:
                for m in group.members.values():
                    metadata = dict(m.protocols).get(group.protocol, b"")
                    response.members.add(member_id=m.member_id, group_instance_id=m.group_instance_id,
                                         metadata=metadata)
            return response

    def _check_member(self, group: FakeGroup | None, member_id: str, generation_id: int) -> Errors | None:
        if group is not None and member_id in group.fenced:
            return Errors.FENCED_INSTANCE_ID
        if group is None or member_id not in group.members:
            return Errors.UNKNOWN_MEMBER_ID
        if generation_id != group.generation:
            return Errors.ILLEGAL_GENERATION
        return None

    def sync_group(self, broker_id: int, request: kafka_pb2.SyncGroupRequest) -> kafka_pb2.SyncGroupResponse:
        with self.lock:
            error = self._group_request(broker_id, "SyncGroup", request, request.group_id)
            group = self.groups.get(request.group_id)
            error = error or self._check_member(group, request.member_id, request.generation_id)
            if error is None and group is not None and group.state == "PreparingRebalance":
                error = Errors.REBALANCE_IN_PROGRESS
            if error is not None or group is None:
                return kafka_pb2.SyncGroupResponse(error_code=(error or Errors.UNKNOWN_MEMBER_ID).code)
            if group.state == "CompletingRebalance" and request.member_id == group.leader:
                for a in request.assignments:
                    if a.member_id in group.members:
                        group.members[a.member_id].assignment = a.assignment
                group.state = "Stable"
                self.lock.notify_all()
            deadline = time.monotonic() + 10
            while group.state == "CompletingRebalance" and group.generation == request.generation_id \
                    and request.member_id in group.members and not self.closing and time.monotonic() < deadline:
                self.lock.wait(deadline - time.monotonic())
            member = group.members.get(request.member_id)
            if group.state != "Stable" or group.generation != request.generation_id or member is None:
                return kafka_pb2.SyncGroupResponse(error_code=Errors.REBALANCE_IN_PROGRESS.code)
            return kafka_pb2.SyncGroupResponse(protocol_type="consumer", protocol_name=group.protocol,
                                               assignment=member.assignment)

    def heartbeat(self, broker_id: int, request: kafka_pb2.HeartbeatRequest) -> kafka_pb2.HeartbeatResponse:
        with self.lock:
            error = self._group_request(broker_id, "Heartbeat", request, request.group_id)
            group = self.groups.get(request.group_id)
            error = error or self._check_member(group, request.member_id, request.generation_id)
            if error is None and group is not None and group.state == "PreparingRebalance":
                error = Errors.REBALANCE_IN_PROGRESS
            return kafka_pb2.HeartbeatResponse(error_code=(error or Errors.NONE).code)

    def leave_group(self, broker_id: int, request: kafka_pb2.LeaveGroupRequest) -> kafka_pb2.LeaveGroupResponse:
        with self.lock:
            error = self._group_request(broker_id, "LeaveGroup", request, request.group_id)
            if error is not None:
                return kafka_pb2.LeaveGroupResponse(error_code=error.code)
            group = self.groups.get(request.group_id)
            response = kafka_pb2.LeaveGroupResponse()
            for m in request.members:
                known = group is not None and m.member_id in group.members
                response.members.add(member_id=m.member_id, error_code=0 if known else Errors.UNKNOWN_MEMBER_ID.code)
                if known and group is not None:
                    del group.members[m.member_id]
            if group is not None:
                if group.members:
                    self._prepare_rebalance(group)
                else:
                    group.state, group.leader = "Empty", ""
                self.lock.notify_all()
            return response

    def offset_commit(self, broker_id: int, request: kafka_pb2.OffsetCommitRequest) -> kafka_pb2.OffsetCommitResponse:
        with self.lock:
            error = self._group_request(broker_id, "OffsetCommit", request, request.group_id)
            group = self.groups.setdefault(request.group_id, FakeGroup(request.group_id))
            if error is None:
                if request.generation_id >= 0 or request.member_id:
                    error = self._check_member(group, request.member_id, request.generation_id)
                    if error is None and group.state == "CompletingRebalance":
                        error = Errors.REBALANCE_IN_PROGRESS
                elif group.members:  # a commit from outside an active group
                    error = Errors.UNKNOWN_MEMBER_ID
            response = kafka_pb2.OffsetCommitResponse()
            for topic in request.topics:
                answer = response.topics.add(name=topic.name)
                for p in topic.partitions:
                    answer.partitions.add(partition=p.partition, error_code=(error or Errors.NONE).code)
                    if error is None:
                        group.offsets[(topic.name, p.partition)] = p.committed_offset
            return response

    def offset_fetch(self, broker_id: int, request: kafka_pb2.OffsetFetchRequest) -> kafka_pb2.OffsetFetchResponse:
        with self.lock:
            error = self._group_request(broker_id, "OffsetFetch", request, request.group_id)
            if error is not None:
                return kafka_pb2.OffsetFetchResponse(error_code=error.code)
            group = self.groups.get(request.group_id)
            offsets = group.offsets if group else {}
            wanted = [(t.name, p) for t in request.topics for p in t.partitions] or sorted(offsets)
            response = kafka_pb2.OffsetFetchResponse()
            for name in dict.fromkeys(t for t, _ in wanted):
                answer = response.topics.add(name=name)
                for topic, partition in wanted:
                    if topic == name:
                        answer.partitions.add(partition=partition, committed_offset=offsets.get((topic, partition), -1),
                                              committed_leader_epoch=-1)
            return response

    def describe_groups(self, broker_id: int, request: kafka_pb2.DescribeGroupsRequest
                        ) -> kafka_pb2.DescribeGroupsResponse:
        with self.lock:
            error = self._group_request(broker_id, "DescribeGroups", request, None)
            if error is not None:
                return kafka_pb2.DescribeGroupsResponse(error_code=error.code)
            response = kafka_pb2.DescribeGroupsResponse()
            for group_id in request.groups:
                described = response.groups.add(group_id=group_id, coordinator_id=self.coordinator_of(group_id))
                group = self.groups.get(group_id)
                if self.coordinator_of(group_id) != broker_id:
                    described.error_code = Errors.NOT_COORDINATOR.code
                elif group is None:
                    described.group_state = "Dead"
                else:
                    described.group_state, described.protocol_type = group.state, "consumer"
                    described.protocol_data, described.generation_id = group.protocol, group.generation
                    described.leader = group.leader
                    for m in group.members.values():
                        described.members.add(
                            member_id=m.member_id, group_instance_id=m.group_instance_id, client_id=m.client_id,
                            client_host="/127.0.0.1", member_metadata=dict(m.protocols).get(group.protocol, b""),
                            member_assignment=m.assignment,
                        )
            return response

    def list_groups(self, broker_id: int, request: kafka_pb2.ListGroupsRequest) -> kafka_pb2.ListGroupsResponse:
        with self.lock:
            error = self._group_request(broker_id, "ListGroups", request, None)
            if error is not None:
                return kafka_pb2.ListGroupsResponse(error_code=error.code)
            response = kafka_pb2.ListGroupsResponse()
            for group_id, group in sorted(self.groups.items()):
                if self.coordinator_of(group_id) == broker_id:
                    response.groups.add(group_id=group_id, protocol_type="consumer", group_state=group.state)
            return response


class FakeCluster(_GroupCoordinator):
    """Brokers on 127.0.0.1 that answer Metadata, Produce, Fetch, ListOffsets and InitProducerId
    from one shared state, as a real cluster would but with scripted failures."""

    def __init__(self, broker_ids: tuple[int, ...] = (1, 2, 3)) -> None:
        self.lock = threading.Condition()
        self.partitions: dict[tuple[str, int], FakePartition] = {}
        self.produce_seen: list[ProduceSeen] = []
        self.fetch_seen: list[tuple[int, kafka_pb2.FetchRequest]] = []
        self.metadata_requests = 0
        self.produce_script: dict[tuple[str, int], deque[Scripted]] = defaultdict(deque)
        self.fetch_script: dict[tuple[str, int], deque[Scripted]] = defaultdict(deque)
        self.fail_every_produce: Errors | None = None
        self.leader_hints = True
        self.release = threading.Event()  # Produce answers wait for it while `holding`
        self.release.set()
        self.in_flight: dict[tuple[str, int], int] = defaultdict(int)
        self.max_in_flight: dict[tuple[str, int], int] = defaultdict(int)
        self.max_total_in_flight = 0
        self.next_producer_id = 1000
        self.servers: dict[int, tuple[grpc.Server, int]] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.group_coordinators: dict[str, int] = {}  # where a group's coordinator is, if not the default
        self.default_coordinator = min(broker_ids)
        self.group_script: dict[str, deque[Errors]] = defaultdict(deque)
        self.group_seen: list[GroupRequestSeen] = []
        self.next_member_number = 0
        self.closing = False
        for broker_id in broker_ids:
            self.start_broker(broker_id)

    # -- set-up and scripting --------------------------------------------------------------------

    def start_broker(self, broker_id: int, port: int = 0) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        kafka_pb2_grpc.add_DataServicer_to_server(_Data(self, broker_id), server)
        kafka_pb2_grpc.add_AdminServicer_to_server(_Admin(self, broker_id), server)
        kafka_pb2_grpc.add_GroupServicer_to_server(_Group(self, broker_id), server)
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        self.servers[broker_id] = (server, bound)

    def stop_broker(self, broker_id: int) -> None:
        # It stays in the metadata, as a broker whose ZooKeeper session has not expired yet.
        self.servers[broker_id][0].stop(0).wait()

    def address(self, broker_id: int) -> str:
        return f"127.0.0.1:{self.servers[broker_id][1]}"

    @property
    def bootstrap(self) -> str:
        return self.address(min(self.servers))

    def create_topic(self, name: str, leaders: list[int]) -> None:
        with self.lock:
            for partition, leader in enumerate(leaders):
                self.partitions[(name, partition)] = FakePartition(leader)

    def move_leader(self, tp: tuple[str, int], leader: int) -> None:
        with self.lock:
            self.partitions[tp].leader = leader
            self.partitions[tp].epoch += 1
            self.lock.notify_all()

    def append(self, tp: tuple[str, int], values: list[bytes], keys: list[bytes | None] | None = None) -> int:
        """Records written by someone else, in one batch; its base offset."""
        with self.lock:
            p = self.partitions[tp]
            batch = bytearray(build_batch(list(zip(keys or [None] * len(values), values, strict=True)), 1000))
            stamp(batch, 0, p.end, p.epoch)
            p.log.append(bytes(batch))
            base, p.end = p.end, p.end + len(values)
            self.lock.notify_all()
            return base

    def log_records(self, tp: tuple[str, int]) -> list:  # type: ignore[type-arg]
        with self.lock:
            return read_records(b"".join(self.partitions[tp].log))

    def close(self) -> None:
        with self.lock:
            self.closing = True  # parked JoinGroups and SyncGroups give up
            self.lock.notify_all()
        self.release.set()
        for server, _ in self.servers.values():
            server.stop(0).wait()

    # -- groups: set-up and inspection -----------------------------------------------------------------

    def move_coordinator(self, group_id: str, broker_id: int) -> None:
        """The group's coordinator is elsewhere now; the old one answers NOT_COORDINATOR."""
        with self.lock:
            self.group_coordinators[group_id] = broker_id
            self.lock.notify_all()

    def trigger_rebalance(self, group_id: str) -> None:
        """As if a member joined: heartbeats answer REBALANCE_IN_PROGRESS until everyone rejoined."""
        with self.lock:
            group = self.groups[group_id]
            self._prepare_rebalance(group)

    def expire_member(self, group_id: str, member_id: str) -> None:
        """As when a member's session expires: it is removed and the others rebalance."""
        with self.lock:
            group = self.groups[group_id]
            del group.members[member_id]
            self._prepare_rebalance(group)

    def set_committed(self, group_id: str, offsets: dict[tuple[str, int], int]) -> None:
        with self.lock:
            self.groups.setdefault(group_id, FakeGroup(group_id)).offsets.update(offsets)

    def seen(self, api: str, broker_id: int | None = None) -> list[Any]:
        """The requests of `api` received so far (by `broker_id`), oldest first."""
        with self.lock:
            return [r.request for r in self.group_seen if r.api == api and broker_id in (None, r.broker_id)]

    def seen_at(self, api: str) -> list[float]:
        with self.lock:
            return [r.at for r in self.group_seen if r.api == api]

    def committed(self, group_id: str) -> dict[tuple[str, int], int]:
        with self.lock:
            group = self.groups.get(group_id)
            return dict(group.offsets) if group else {}

    # -- what the brokers do ------------------------------------------------------------------------

    def metadata(self, request: kafka_pb2.MetadataRequest) -> kafka_pb2.MetadataResponse:
        with self.lock:
            self.metadata_requests += 1
            response = kafka_pb2.MetadataResponse(cluster_id="fake", controller_id=min(self.servers))
            for broker_id in sorted(self.servers):
                response.brokers.add(broker_id=broker_id, host="127.0.0.1", port=self.servers[broker_id][1])
            names = list(request.topics) or sorted({t for t, _ in self.partitions})
            for name in names:
                parts = sorted((p, s) for (t, p), s in self.partitions.items() if t == name)
                if not parts:
                    response.topics.add(name=name, error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION.code)
                    continue
                topic = response.topics.add(name=name)
                for partition, state in parts:
                    topic.partitions.add(partition=partition, leader=state.leader, leader_epoch=state.epoch,
                                         replicas=sorted(self.servers), isr=sorted(self.servers))
            return response

    def produce(self, broker_id: int, request: kafka_pb2.ProduceRequest) -> kafka_pb2.ProduceResponse:
        tps = [(t.name, p.partition) for t in request.topics for p in t.partitions]
        with self.lock:
            for topic in request.topics:
                for data in topic.partitions:
                    self.produce_seen.append(ProduceSeen(broker_id, request.acks, topic.name, data.partition,
                                                         data.records))
            for tp in tps:
                self.in_flight[tp] += 1
                self.max_in_flight[tp] = max(self.max_in_flight[tp], self.in_flight[tp])
            self.max_total_in_flight = max(self.max_total_in_flight, sum(self.in_flight.values()))
            self.lock.notify_all()
        self.release.wait(10)
        response = kafka_pb2.ProduceResponse()
        with self.lock:
            for topic in request.topics:
                answer = response.topics.add(name=topic.name)
                for data in topic.partitions:
                    answer.partitions.append(self._append(broker_id, (topic.name, data.partition), data.records))
            for tp in tps:
                self.in_flight[tp] -= 1
            self.lock.notify_all()
        return response

    def _append(self, broker_id: int, tp: tuple[str, int], records: bytes) -> kafka_pb2.ProducePartitionResponse:
        answer = kafka_pb2.ProducePartitionResponse(partition=tp[1], base_offset=-1, current_leader_id=-1,
                                                    current_leader_epoch=-1)
        script = self.produce_script[tp]
        scripted = script.popleft() if script else None
        if scripted is None and self.fail_every_produce is not None:
            scripted = Scripted(self.fail_every_produce)
        if scripted is not None and not scripted.after_append:
            answer.error_code = scripted.error.code
            answer.current_leader_id, answer.current_leader_epoch = scripted.leader_hint, scripted.epoch_hint
            return answer
        p = self.partitions.get(tp)
        if p is None:
            answer.error_code = Errors.UNKNOWN_TOPIC_OR_PARTITION.code
            return answer
        if p.leader != broker_id:
            answer.error_code = Errors.NOT_LEADER_OR_FOLLOWER.code
            if self.leader_hints:
                answer.current_leader_id, answer.current_leader_epoch = p.leader, p.epoch
            return answer
        header = read_header(records)
        key = (header.producer_id, header.base_sequence)
        if header.producer_id >= 0 and key in p.sequences:
            answer.base_offset = p.sequences[key]  # a retry of a batch in the log: its first offset again
            return answer
        batch = bytearray(records)
        stamp(batch, 0, p.end, p.epoch)
        p.log.append(bytes(batch))
        if header.producer_id >= 0:
            p.sequences[key] = p.end
        answer.base_offset, p.end = p.end, p.end + header.records_count
        self.lock.notify_all()
        if scripted is not None:
            answer.error_code, answer.base_offset = scripted.error.code, -1
        return answer

    def fetch(self, broker_id: int, request: kafka_pb2.FetchRequest) -> kafka_pb2.FetchResponse:
        deadline = time.monotonic() + request.max_wait_ms / 1000
        with self.lock:
            self.fetch_seen.append((broker_id, request))
            self.lock.notify_all()
            while True:
                response = kafka_pb2.FetchResponse()
                size = 0
                for topic in request.topics:
                    answer = response.topics.add(topic=topic.topic)
                    for p in topic.partitions:
                        partition = self._fetch_partition(broker_id, (topic.topic, p.partition), p)
                        answer.partitions.append(partition)
                        size += len(partition.records) + (1 if partition.error_code else 0)
                remaining = deadline - time.monotonic()
                if size >= request.min_bytes or remaining <= 0:
                    return response
                self.lock.wait(remaining)

    def _fetch_partition(self, broker_id: int, tp: tuple[str, int],
                         request: kafka_pb2.FetchPartition) -> kafka_pb2.FetchPartitionResponse:
        answer = kafka_pb2.FetchPartitionResponse(partition=tp[1], high_watermark=-1, current_leader_id=-1,
                                                  current_leader_epoch=-1)
        script = self.fetch_script[tp]
        if script:
            scripted = script.popleft()
            answer.error_code = scripted.error.code
            answer.current_leader_id, answer.current_leader_epoch = scripted.leader_hint, scripted.epoch_hint
            return answer
        p = self.partitions.get(tp)
        if p is None:
            answer.error_code = Errors.UNKNOWN_TOPIC_OR_PARTITION.code
        elif p.leader != broker_id:
            answer.error_code = Errors.NOT_LEADER_OR_FOLLOWER.code
        elif request.current_leader_epoch >= 0 and request.current_leader_epoch < p.epoch:
            answer.error_code = Errors.FENCED_LEADER_EPOCH.code
        elif request.current_leader_epoch > p.epoch:
            answer.error_code = Errors.UNKNOWN_LEADER_EPOCH.code
        elif not p.log_start <= request.fetch_offset <= p.end:
            answer.error_code = Errors.OFFSET_OUT_OF_RANGE.code
            answer.log_start_offset, answer.high_watermark = p.log_start, p.end
        else:
            answer.log_start_offset, answer.high_watermark = p.log_start, p.end
            chosen: list[bytes] = []
            for batch in p.log:
                header = read_header(batch)
                if header.next_offset <= request.fetch_offset:
                    continue
                if chosen and sum(map(len, chosen)) + len(batch) > request.partition_max_bytes:
                    break
                chosen.append(batch)
            answer.records = b"".join(chosen)
        return answer

    def list_offsets(self, broker_id: int, request: kafka_pb2.ListOffsetsRequest) -> kafka_pb2.ListOffsetsResponse:
        response = kafka_pb2.ListOffsetsResponse()
        with self.lock:
            for topic in request.topics:
                answer = response.topics.add(name=topic.name)
                for p in topic.partitions:
                    state = self.partitions.get((topic.name, p.partition))
                    if state is None:
                        answer.partitions.add(partition=p.partition, error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION.code)
                    elif state.leader != broker_id:
                        answer.partitions.add(partition=p.partition, error_code=Errors.NOT_LEADER_OR_FOLLOWER.code)
                    else:
                        offset = state.log_start if p.timestamp == -2 else state.end
                        answer.partitions.add(partition=p.partition, offset=offset, leader_epoch=state.epoch)
        return response

    def init_producer_id(self) -> kafka_pb2.InitProducerIdResponse:
        with self.lock:
            self.next_producer_id += 1
            return kafka_pb2.InitProducerIdResponse(producer_id=self.next_producer_id - 1, producer_epoch=0)


class _Data(kafka_pb2_grpc.DataServicer):
    def __init__(self, cluster: FakeCluster, broker_id: int) -> None:
        self.cluster, self.broker_id = cluster, broker_id

    def Produce(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.produce(self.broker_id, request)

    def Fetch(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.fetch(self.broker_id, request)

    def ListOffsets(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.list_offsets(self.broker_id, request)

    def InitProducerId(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.init_producer_id()


class _Admin(kafka_pb2_grpc.AdminServicer):
    def __init__(self, cluster: FakeCluster, broker_id: int) -> None:
        self.cluster, self.broker_id = cluster, broker_id

    def Metadata(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.metadata(request)


class _Group(kafka_pb2_grpc.GroupServicer):
    def __init__(self, cluster: FakeCluster, broker_id: int) -> None:
        self.cluster, self.broker_id = cluster, broker_id

    def FindCoordinator(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.find_coordinator(self.broker_id, request)

    def JoinGroup(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.join_group(self.broker_id, request)

    def SyncGroup(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.sync_group(self.broker_id, request)

    def Heartbeat(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.heartbeat(self.broker_id, request)

    def LeaveGroup(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.leave_group(self.broker_id, request)

    def OffsetCommit(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.offset_commit(self.broker_id, request)

    def OffsetFetch(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.offset_fetch(self.broker_id, request)

    def DescribeGroups(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.describe_groups(self.broker_id, request)

    def ListGroups(self, request, context):  # type: ignore[no-untyped-def]
        return self.cluster.list_groups(self.broker_id, request)


def running(partition_leaders: list[int], topic: str = "t") -> Iterator[FakeCluster]:
    """A fake cluster with one topic whose partitions have these leaders, closed at the end: the
    body of the client tests' `cluster` fixtures."""
    fake = FakeCluster()
    fake.create_topic(topic, partition_leaders)
    yield fake
    fake.close()


C = TypeVar("C")


def made(make_client: Callable[..., C], close: Callable[[C], object]) -> Iterator[Callable[..., C]]:
    """A factory of clients for a fixture to yield, each client closed at the end."""
    clients: list[C] = []

    def make(**config: object) -> C:
        client = make_client(len(clients), **config)
        clients.append(client)
        return client

    yield make
    for client in clients:
        close(client)
