"""A fake cluster for the clients' unit tests: in-process gRPC Admin, Data and Group services with
scripted answers.

Metadata, Produce, Fetch, ListOffsets and InitProducerId are the fake's own (no broker logic: the
live tests run real brokers). The group APIs are the broker's: one real group coordinator (the
coordinator thread over a replica manager on a temporary directory, the request layer and the
gRPC adapter) answers for every fake broker, behind a thin layer that records each request
(`group_seen`), answers the next request of an API with a scripted error instead (`group_script`)
and answers NOT_COORDINATOR at the brokers that do not coordinate the group (`group_coordinators`,
`default_coordinator`). Moving a group's coordinator re-elects the offsets partition, so that the
real coordinator unloads the group and loads it back from `__consumer_offsets`, as a newly elected
coordinator does."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import grpc

# The broker's internal names the fake depends on: the record format of the fake partitions, and the
# group coordinator stack (used in RealGroupCoordinator and, for GroupService, in _Group).
from broker.api.group_apis import GroupApis
from broker.api.kafka_apis import KafkaApis
from broker.group.group_coordinator import GroupCoordinator
from broker.group.group_coordinator_rules import GroupConfig, JoinGroupRequest
from broker.grpc_services.group import GroupService
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.log.record_batch import build_batch, read_header, read_records, stamp
from broker.metadata_cache import MetadataCache, PartitionInfo
from broker.replica_manager import ReplicaManager
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC
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
class GroupRequestSeen:
    broker_id: int
    api: str
    request: Any
    at: float  # time.monotonic()


GROUP_APIS = ("FindCoordinator", "JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetCommit", "OffsetFetch",
              "DescribeGroups", "ListGroups")


# -- the real group coordinator ---------------------------------------------------------------------

COORDINATOR_BROKER_ID = 0  # the real coordinator's own broker id; it answers for every fake broker
CONTROLLER = (9, 1)  # the controller id and epoch of the LeaderAndIsr requests that make it coordinate
OFFSETS_PARTITIONS = 1  # every group is in __consumer_offsets-0
GROUP_CONFIG = GroupConfig(
    group_min_session_timeout_ms=100,  # the tests' members have sessions shorter than Kafka's 6 s minimum
    group_initial_rebalance_delay_ms=0,  # a first join completes at once
)


class _InProcess:
    """The gRPC context of a call the fake makes to the real Group service itself."""

    def peer(self) -> str:
        return "ipv4:127.0.0.1:0"

    def is_active(self) -> bool:
        return True

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}  # a plaintext caller


IN_PROCESS: Any = _InProcess()


class _NoTopicCreation:
    """The fake answers FindCoordinator itself, so the offsets topic is never created on demand."""

    def ensure(self, live_brokers: list[int]) -> None:
        pass


class RealGroupCoordinator:
    """The broker's group coordinator at work, without ZooKeeper or a server: a replica manager
    leading __consumer_offsets in a temporary directory, the coordinator thread over it, the request
    layer and the gRPC adapter. Every use of the coordinator's internal names is here, but for
    _Group's subclassing of GroupService."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="fake-cluster-")
        self.metadata = MetadataCache()
        self.log_manager = LogManager([self.directory], LogConfig())
        self.replicas = ReplicaManager(COORDINATOR_BROKER_ID, lambda: 0, self.log_manager, self.metadata)
        self.replicas.start()
        self.group_coordinator = GroupCoordinator(COORDINATOR_BROKER_ID, self.replicas, lambda: OFFSETS_PARTITIONS,
                                                GROUP_CONFIG)
        self.group_coordinator.startup()
        self.apis = KafkaApis(GroupApis(COORDINATOR_BROKER_ID, self.metadata, self.group_coordinator,
                                        _NoTopicCreation()))  # type: ignore[arg-type]
        self.service = GroupService(self.apis)
        self.leader_epoch = -1
        self._lead(COORDINATOR_BROKER_ID)
        wait_for(self._loaded, what="the group coordinator to load __consumer_offsets")

    def _lead(self, leader: int) -> None:
        self.leader_epoch += 1
        isr = (leader,) if leader >= 0 else ()
        states = [PartitionInfo(OFFSETS_TOPIC, p, leader, self.leader_epoch, isr=isr,
                                replicas=(COORDINATOR_BROKER_ID,), zk_version=0) for p in range(OFFSETS_PARTITIONS)]
        error, errors = self.replicas.become_leader_or_follower(*CONTROLLER, -1, states)
        assert error is Errors.NONE and set(errors.values()) == {Errors.NONE}, (error, errors)

    def _loaded(self) -> bool:
        return self.group_coordinator.owned_partitions().result(5) == (list(range(OFFSETS_PARTITIONS)), [])

    def reelect(self) -> None:
        """A new leader epoch of __consumer_offsets after a moment without a leader: the coordinator
        unloads its groups (answering their parked requests NOT_COORDINATOR) and loads them back
        from the log, as a newly elected coordinator does."""
        self._lead(-1)
        self._lead(COORDINATOR_BROKER_ID)
        wait_for(self._loaded, what="the group coordinator to load __consumer_offsets again")

    def add_partitions(self, topic: str, leaders: list[int]) -> None:
        """The topic's partitions in the metadata cache: OffsetCommit refuses partitions it does not know."""
        self.metadata.update(*CONTROLLER, [], [PartitionInfo(topic, p, leader, 0, (leader,), (leader,))
                                               for p, leader in enumerate(leaders)], [])

    def join_and_leave(self, group_id: str) -> None:
        """A new member joins, which makes the group prepare a rebalance, and leaves at once: the
        join phase then waits for the group's own members only."""
        described = self.describe(group_id)
        join = JoinGroupRequest(group_id=group_id, member_id="", client_id="fake-cluster",
                                protocol_type=described.protocol_type or "consumer",
                                protocols=[(described.protocol_data or "range", b"")],
                                session_timeout_ms=10000, rebalance_timeout_ms=10000)
        first = self.group_coordinator.join_group(join).result(5)
        assert first.error is Errors.MEMBER_ID_REQUIRED, first
        # It parks, the group preparing a rebalance, until the LeaveGroup queued behind it on the
        # coordinator's thread removes the member again.
        parked = self.group_coordinator.join_group(replace(join, member_id=first.member_id))
        self.leave(group_id, first.member_id)
        assert parked.result(5).error is Errors.UNKNOWN_MEMBER_ID

    def leave(self, group_id: str, member_id: str) -> None:
        answer = self.service.LeaveGroup(kafka_pb2.LeaveGroupRequest(
            group_id=group_id, members=[kafka_pb2.MemberIdentity(member_id=member_id)]), IN_PROCESS)
        errors = [answer.error_code, *(m.error_code for m in answer.members)]
        assert set(errors) == {Errors.NONE.code}, answer

    def describe(self, group_id: str) -> kafka_pb2.DescribedGroup:
        (described,) = self.service.DescribeGroups(kafka_pb2.DescribeGroupsRequest(groups=[group_id]),
                                                   IN_PROCESS).groups
        return described

    def commit(self, group_id: str, offsets: dict[tuple[str, int], int]) -> None:
        """A commit from outside the group (generation -1, no member id), as an admin tool makes."""
        request = kafka_pb2.OffsetCommitRequest(group_id=group_id, generation_id=-1)
        for name in dict.fromkeys(t for t, _ in offsets):
            request.topics.add(name=name, partitions=[
                kafka_pb2.OffsetCommitPartition(partition=p, committed_offset=o, committed_leader_epoch=-1)
                for (t, p), o in offsets.items() if t == name])
        answer = self.service.OffsetCommit(request, IN_PROCESS)
        errors = [p.error_code for t in answer.topics for p in t.partitions]
        assert set(errors) == {Errors.NONE.code}, answer

    def committed(self, group_id: str) -> dict[tuple[str, int], int]:
        answer = self.service.OffsetFetch(kafka_pb2.OffsetFetchRequest(group_id=group_id), IN_PROCESS)
        assert answer.error_code == Errors.NONE.code, answer
        return {(t.name, p.partition): p.committed_offset for t in answer.topics for p in t.partitions
                if p.committed_offset >= 0}

    def shutdown(self) -> None:
        self.group_coordinator.shutdown()  # parked JoinGroups and SyncGroups are answered NOT_COORDINATOR
        self.replicas.stop()
        self.log_manager.shutdown()
        shutil.rmtree(self.directory, ignore_errors=True)


class FakeCluster:
    """Brokers on 127.0.0.1 that answer Metadata, Produce, Fetch, ListOffsets and InitProducerId
    from one shared state, as a real cluster would but with scripted failures, and the group APIs
    from one real group coordinator."""

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
        self.real_groups = RealGroupCoordinator()
        self.group_coordinators: dict[str, int] = {}  # where a group's coordinator is, if not the default
        self.default_coordinator = min(broker_ids)
        self.group_script: dict[str, deque[Errors]] = defaultdict(deque)
        self.group_seen: list[GroupRequestSeen] = []
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
        self.real_groups.add_partitions(name, leaders)

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
        self.release.set()
        self.real_groups.shutdown()
        for server, _ in self.servers.values():
            server.stop(0).wait()

    # -- groups: placement, set-up and inspection --------------------------------------------------

    def coordinator_of(self, group_id: str) -> int:
        return self.group_coordinators.get(group_id, self.default_coordinator)

    def group_request(self, broker_id: int, api: str, request: Any, group_id: str | None) -> Errors | None:
        """Record the request; the error to answer instead (scripted, or NOT_COORDINATOR), if any."""
        with self.lock:
            self.group_seen.append(GroupRequestSeen(broker_id, api, request, time.monotonic()))
            self.lock.notify_all()
            if self.group_script[api]:
                return self.group_script[api].popleft()
            if group_id is not None and self.coordinator_of(group_id) != broker_id:
                return Errors.NOT_COORDINATOR
            return None

    def move_coordinator(self, group_id: str, broker_id: int) -> None:
        """The group's coordinator is elsewhere now: the old one answers NOT_COORDINATOR, the new one
        has loaded the group from __consumer_offsets."""
        with self.lock:
            moved = self.coordinator_of(group_id) != broker_id
            self.group_coordinators[group_id] = broker_id
            self.lock.notify_all()
        if moved:
            self.real_groups.reelect()

    def trigger_rebalance(self, group_id: str) -> None:
        """As if a member joined: heartbeats answer REBALANCE_IN_PROGRESS until everyone rejoined."""
        self.real_groups.join_and_leave(group_id)

    def expire_member(self, group_id: str, member_id: str) -> None:
        """As when a member's session expires: it is removed and the others rebalance (Kafka removes
        an expired member as it removes one that leaves)."""
        self.real_groups.leave(group_id, member_id)

    def set_committed(self, group_id: str, offsets: dict[tuple[str, int], int]) -> None:
        self.real_groups.commit(group_id, offsets)

    def seen(self, api: str, broker_id: int | None = None) -> list[Any]:
        """The requests of `api` received so far (by `broker_id`), oldest first."""
        with self.lock:
            return [r.request for r in self.group_seen if r.api == api and broker_id in (None, r.broker_id)]

    def seen_at(self, api: str) -> list[float]:
        with self.lock:
            return [r.at for r in self.group_seen if r.api == api]

    def committed(self, group_id: str) -> dict[tuple[str, int], int]:
        return self.real_groups.committed(group_id)

    def group_state(self, group_id: str) -> str:
        """Empty, PreparingRebalance, CompletingRebalance, Stable, or Dead for a group the
        coordinator does not have."""
        return self.real_groups.describe(group_id).group_state

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


class _Group(GroupService):
    """A fake broker's Group service: the real adapter over the cluster's one real coordinator,
    behind the fake's recording, scripted errors and coordinator placement. Kafka's FindCoordinator
    names the leader of the group's offsets partition; here it names the placed coordinator."""

    def __init__(self, cluster: FakeCluster, broker_id: int) -> None:
        super().__init__(cluster.real_groups.apis)
        self.cluster, self.broker_id = cluster, broker_id

    def _refused(self, api: str, request: Any, group_id: str | None) -> Errors | None:
        return self.cluster.group_request(self.broker_id, api, request, group_id)

    def FindCoordinator(self, request: kafka_pb2.FindCoordinatorRequest, context: grpc.ServicerContext
                        ) -> kafka_pb2.FindCoordinatorResponse:
        error = self._refused("FindCoordinator", request, None)
        if error is not None:
            return kafka_pb2.FindCoordinatorResponse(error_code=error.code, node_id=-1)
        node = self.cluster.coordinator_of(request.key)
        return kafka_pb2.FindCoordinatorResponse(node_id=node, host="127.0.0.1", port=self.cluster.servers[node][1])

    def JoinGroup(self, request: kafka_pb2.JoinGroupRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.JoinGroupResponse:
        error = self._refused("JoinGroup", request, request.group_id)
        if error is not None:
            return kafka_pb2.JoinGroupResponse(error_code=error.code, member_id=request.member_id, generation_id=-1)
        return super().JoinGroup(request, context)

    def SyncGroup(self, request: kafka_pb2.SyncGroupRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.SyncGroupResponse:
        error = self._refused("SyncGroup", request, request.group_id)
        if error is not None:
            return kafka_pb2.SyncGroupResponse(error_code=error.code)
        return super().SyncGroup(request, context)

    def Heartbeat(self, request: kafka_pb2.HeartbeatRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.HeartbeatResponse:
        error = self._refused("Heartbeat", request, request.group_id)
        if error is not None:
            return kafka_pb2.HeartbeatResponse(error_code=error.code)
        return super().Heartbeat(request, context)

    def LeaveGroup(self, request: kafka_pb2.LeaveGroupRequest, context: grpc.ServicerContext
                   ) -> kafka_pb2.LeaveGroupResponse:
        error = self._refused("LeaveGroup", request, request.group_id)
        if error is not None:
            return kafka_pb2.LeaveGroupResponse(error_code=error.code)
        return super().LeaveGroup(request, context)

    def OffsetCommit(self, request: kafka_pb2.OffsetCommitRequest, context: grpc.ServicerContext
                     ) -> kafka_pb2.OffsetCommitResponse:
        error = self._refused("OffsetCommit", request, request.group_id)
        if error is None:
            return super().OffsetCommit(request, context)
        response = kafka_pb2.OffsetCommitResponse()
        for topic in request.topics:
            answer = response.topics.add(name=topic.name)
            for p in topic.partitions:
                answer.partitions.add(partition=p.partition, error_code=error.code)
        return response

    def OffsetFetch(self, request: kafka_pb2.OffsetFetchRequest, context: grpc.ServicerContext
                    ) -> kafka_pb2.OffsetFetchResponse:
        error = self._refused("OffsetFetch", request, request.group_id)
        if error is not None:
            return kafka_pb2.OffsetFetchResponse(error_code=error.code)
        return super().OffsetFetch(request, context)

    def DescribeGroups(self, request: kafka_pb2.DescribeGroupsRequest, context: grpc.ServicerContext
                       ) -> kafka_pb2.DescribeGroupsResponse:
        error = self._refused("DescribeGroups", request, None)
        if error is not None:
            return kafka_pb2.DescribeGroupsResponse(error_code=error.code)
        local = [g for g in request.groups if self.cluster.coordinator_of(g) == self.broker_id]
        described = {g.group_id: g for g in super().DescribeGroups(
            kafka_pb2.DescribeGroupsRequest(groups=local), context).groups} if local else {}
        response = kafka_pb2.DescribeGroupsResponse()
        for group_id in request.groups:
            # As the real coordinator answers a group it does not coordinate, with this broker's id.
            entry = response.groups.add(error_code=Errors.NOT_COORDINATOR.code, group_id=group_id,
                                        group_state="Dead", generation_id=-1)
            if group_id in described:
                entry.CopyFrom(described[group_id])
            entry.coordinator_id = self.broker_id
        return response

    def ListGroups(self, request: kafka_pb2.ListGroupsRequest, context: grpc.ServicerContext
                   ) -> kafka_pb2.ListGroupsResponse:
        error = self._refused("ListGroups", request, None)
        if error is not None:
            return kafka_pb2.ListGroupsResponse(error_code=error.code)
        response = super().ListGroups(request, context)
        kept = [g for g in response.groups if self.cluster.coordinator_of(g.group_id) == self.broker_id]
        del response.groups[:]
        response.groups.extend(kept)
        return response
