"""The Data gRPC service: produce, fetch and offsets, translated to and from the replica manager.

Request checks a broker makes before touching a log live here, as in Kafka's KafkaApis: acks
must be 0, 1 or -1 (INVALID_REQUIRED_ACKS); a partition that does not exist in the metadata is
UNKNOWN_TOPIC_OR_PARTITION; the rest is the replica manager's.
"""

from __future__ import annotations

import logging
import threading

import grpc

from broker.fetch_session import FINAL_EPOCH, INVALID_SESSION_ID, FetchKind, PartitionData
from broker.metadata_cache import MetadataCache, TopicPartition
from broker.partition import caught_up_ms
from broker.replica_manager import FetchRequestPartition, FetchResult, ReplicaManager
from broker.zk.kafka_zk_client import KafkaZkClient
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)

VALID_ACKS = (0, 1, -1)
# Kafka's fetch.max.wait.ms ceiling is the request timeout; a broker must not hold a thread forever.
MAX_WAIT_CAP_MS = 30000


class ProducerIdManager:
    """Hands out producer ids from blocks reserved in ZooKeeper (Kafka's ZkProducerIdManager)."""

    def __init__(self, broker_id: int, zk: KafkaZkClient) -> None:
        self._broker_id = broker_id
        self._zk = zk
        self._lock = threading.Lock()
        self._next = 0
        self._last = -1

    def generate(self) -> int:
        with self._lock:
            if self._next > self._last:
                block = self._zk.allocate_producer_id_block(self._broker_id)
                log.info("Acquired new producerId block %d-%d by writing to Zk", block.first, block.last)
                self._next, self._last = block.first, block.last
            self._next += 1
            return self._next - 1


class DataService(kafka_pb2_grpc.DataServicer):
    def __init__(self, broker_id: int, replica_manager: ReplicaManager, metadata: MetadataCache,
                 producer_ids: ProducerIdManager) -> None:
        self._broker_id = broker_id
        self._replicas = replica_manager
        self._metadata = metadata
        self._producer_ids = producer_ids

    def _known(self, tp: TopicPartition) -> bool:
        return tp in self._metadata.snapshot().partitions or self._replicas.partition(tp) is not None

    def Produce(self, request: kafka_pb2.ProduceRequest, context: grpc.ServicerContext) -> kafka_pb2.ProduceResponse:
        response = kafka_pb2.ProduceResponse()
        entries: dict[TopicPartition, bytes] = {}
        answers: dict[TopicPartition, kafka_pb2.ProducePartitionResponse] = {}
        for topic in request.topics:
            for data in topic.partitions:
                tp = (topic.name, data.partition)
                if request.acks not in VALID_ACKS:
                    answers[tp] = _produce_error(data.partition, Errors.INVALID_REQUIRED_ACKS,
                                                 f"acks must be 0, 1 or -1, not {request.acks}")
                elif not self._known(tp):
                    answers[tp] = _produce_error(data.partition, Errors.UNKNOWN_TOPIC_OR_PARTITION,
                                                 f"This server does not host {tp[0]}-{tp[1]}")
                else:
                    entries[tp] = data.records
        timeout_ms = max(0, min(request.timeout_ms or 30000, 300000))
        for tp, result in self._replicas.append_records(request.acks, timeout_ms, entries).result().items():
            answers[tp] = kafka_pb2.ProducePartitionResponse(
                partition=tp[1], error_code=result.error.code, error_message=result.message,
                base_offset=result.base_offset, log_start_offset=result.log_start_offset,
                current_leader_id=result.leader_id, current_leader_epoch=result.leader_epoch,
            )
        by_topic: dict[str, kafka_pb2.ProduceTopicResponse] = {}
        for (topic, _), answer in answers.items():
            if topic not in by_topic:
                by_topic[topic] = response.topics.add(name=topic)
            by_topic[topic].partitions.append(answer)
        return response

    def Fetch(self, request: kafka_pb2.FetchRequest, context: grpc.ServicerContext) -> kafka_pb2.FetchResponse:
        epoch = request.session_epoch if request.HasField("session_epoch") else FINAL_EPOCH
        max_wait_ms = min(max(request.max_wait_ms, 0), MAX_WAIT_CAP_MS)
        min_bytes, max_bytes = max(request.min_bytes, 0), request.max_bytes or 52428800
        if epoch == FINAL_EPOCH and request.session_id == INVALID_SESSION_ID:
            return self._fetch_without_session(request, max_wait_ms, min_bytes, max_bytes)
        named = {
            (topic.topic, p.partition): PartitionData(p.fetch_offset, p.current_leader_epoch,
                                                      p.partition_max_bytes or 1048576)
            for topic in request.topics for p in topic.partitions
        }
        forgotten = [(topic.topic, p) for topic in request.forgotten_topics for p in topic.partitions]
        fetch = self._replicas.new_fetch_context(request.replica_id, request.session_id, epoch, named, forgotten)
        if fetch.kind is FetchKind.ERROR:
            log.info("Fetch session %d of replica %d refused at epoch %d: %s", request.session_id,
                     request.replica_id, epoch, fetch.error.name)
            return kafka_pb2.FetchResponse(error_code=fetch.error.code, session_id=INVALID_SESSION_ID)
        if fetch.kind is FetchKind.SESSIONLESS:
            return self._fetch_without_session(request, max_wait_ms, min_bytes, max_bytes)
        session_id, results = self._replicas.fetch_session_messages(fetch, max_wait_ms, min_bytes, max_bytes)
        response = kafka_pb2.FetchResponse(session_id=session_id)
        _add_fetch_results(response, [], results)
        return response

    def _fetch_without_session(
        self, request: kafka_pb2.FetchRequest, max_wait_ms: int, min_bytes: int, max_bytes: int
    ) -> kafka_pb2.FetchResponse:
        wanted: list[FetchRequestPartition] = []
        unknown: list[TopicPartition] = []
        for topic in request.topics:
            for p in topic.partitions:
                tp = (topic.topic, p.partition)
                if not self._known(tp):
                    unknown.append(tp)
                    continue
                wanted.append(FetchRequestPartition(tp, p.fetch_offset, p.current_leader_epoch,
                                                    p.partition_max_bytes or 1048576))
        results = self._replicas.fetch_messages(
            request.replica_id, max_wait_ms, min_bytes, max_bytes, wanted
        ) if wanted else {}
        response = kafka_pb2.FetchResponse(session_id=INVALID_SESSION_ID)
        _add_fetch_results(response, unknown, results)
        return response

    def ListOffsets(
        self, request: kafka_pb2.ListOffsetsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.ListOffsetsResponse:
        response = kafka_pb2.ListOffsetsResponse()
        for topic in request.topics:
            answer = response.topics.add(name=topic.name)
            for p in topic.partitions:
                tp = (topic.name, p.partition)
                if not self._known(tp):
                    error, offset, epoch = Errors.UNKNOWN_TOPIC_OR_PARTITION, -1, -1
                else:
                    error, offset, epoch = self._replicas.list_offset(tp, p.current_leader_epoch, p.timestamp)
                answer.partitions.add(
                    partition=p.partition, error_code=error.code, timestamp=-1, offset=offset, leader_epoch=epoch,
                    error_message="" if error is not Errors.INVALID_REQUEST
                    else "only -1 (latest) and -2 (earliest) are supported as timestamps",
                )
        return response

    def OffsetForLeaderEpoch(
        self, request: kafka_pb2.OffsetForLeaderEpochRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.OffsetForLeaderEpochResponse:
        response = kafka_pb2.OffsetForLeaderEpochResponse()
        for topic in request.topics:
            answer = response.topics.add(topic=topic.topic)
            for p in topic.partitions:
                error, epoch, end_offset = self._replicas.last_offset_for_leader_epoch(
                    (topic.topic, p.partition), p.current_leader_epoch, p.leader_epoch
                )
                answer.partitions.add(partition=p.partition, error_code=error.code, leader_epoch=epoch,
                                      end_offset=end_offset)
        return response

    def InitProducerId(
        self, request: kafka_pb2.InitProducerIdRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.InitProducerIdResponse:
        try:
            producer_id = self._producer_ids.generate()
        except Exception as e:
            log.warning("Cannot allocate a producer id: %s", e)
            return kafka_pb2.InitProducerIdResponse(
                error_code=Errors.COORDINATOR_NOT_AVAILABLE.code, error_message=str(e), producer_id=-1,
                producer_epoch=-1,
            )
        return kafka_pb2.InitProducerIdResponse(producer_id=producer_id, producer_epoch=0)

    def DescribeReplicas(
        self, request: kafka_pb2.DescribeReplicasRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DescribeReplicasResponse:
        tps = [(tp.topic, tp.partition) for tp in request.partitions] or None
        response = kafka_pb2.DescribeReplicasResponse(responding_broker_id=self._broker_id)
        for tp, partition in self._replicas.replica_states(tps):
            with partition.lock:
                if not partition.is_leader:
                    response.partitions.add(topic=tp[0], partition=tp[1],
                                            error_code=Errors.NOT_LEADER_OR_FOLLOWER.code)
                    continue
                answer = response.partitions.add(
                    topic=tp[0], partition=tp[1], leader_epoch=partition.leader_epoch,
                    high_watermark=partition.high_watermark, log_start_offset=partition.log.log_start_offset,
                )
                answer.replicas.add(broker_id=self._broker_id, log_end_offset=partition.log.log_end_offset)
                for broker_id, state in sorted(partition.followers.items()):
                    answer.replicas.add(broker_id=broker_id, log_end_offset=state.log_end_offset,
                                        last_caught_up_time_ms=caught_up_ms(state))
        return response


def _produce_error(partition: int, error: Errors, message: str) -> kafka_pb2.ProducePartitionResponse:
    return kafka_pb2.ProducePartitionResponse(
        partition=partition, error_code=error.code, error_message=message, base_offset=-1, log_start_offset=-1,
        current_leader_id=-1, current_leader_epoch=-1,
    )


def _add_fetch_results(
    response: kafka_pb2.FetchResponse, unknown: list[TopicPartition], results: dict[TopicPartition, FetchResult]
) -> None:
    by_topic: dict[str, kafka_pb2.FetchTopicResponse] = {}

    def topic_of(name: str) -> kafka_pb2.FetchTopicResponse:
        if name not in by_topic:
            by_topic[name] = response.topics.add(topic=name)
        return by_topic[name]

    for tp in unknown:
        topic_of(tp[0]).partitions.add(
            partition=tp[1], error_code=Errors.UNKNOWN_TOPIC_OR_PARTITION.code, high_watermark=-1,
            log_start_offset=-1, log_end_offset=-1, current_leader_id=-1, current_leader_epoch=-1,
        )
    for tp, r in results.items():
        topic_of(tp[0]).partitions.add(
            partition=tp[1], error_code=r.error.code, error_message=r.message, high_watermark=r.high_watermark,
            log_start_offset=r.log_start_offset, records=r.records, current_leader_id=r.leader_id,
            current_leader_epoch=r.leader_epoch, log_end_offset=r.log_end_offset,
        )
