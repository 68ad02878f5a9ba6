"""A fake cluster for the clients' unit tests: in-process gRPC Admin and Data services with
scripted answers (no broker logic: the live tests run real brokers)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from broker.errors import Errors
from broker.log.record_batch import build_batch, read_header, read_records, stamp
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


class FakeCluster:
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
        for broker_id in broker_ids:
            self.start_broker(broker_id)

    # -- set-up and scripting --------------------------------------------------------------------

    def start_broker(self, broker_id: int, port: int = 0) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        kafka_pb2_grpc.add_DataServicer_to_server(_Data(self, broker_id), server)
        kafka_pb2_grpc.add_AdminServicer_to_server(_Admin(self, broker_id), server)
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
        self.release.set()
        for server, _ in self.servers.values():
            server.stop(0).wait()

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
