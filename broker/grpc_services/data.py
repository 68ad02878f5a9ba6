"""The Data gRPC service: produce, fetch and offsets, converted to and from the request layer."""

from __future__ import annotations

import grpc

from broker.api import messages as m
from broker.api.data_apis import DEFAULT_PARTITION_MAX_BYTES
from broker.fetch_session import FINAL_EPOCH, PartitionData
from broker.grpc_services import adapter as grpc_adapter
from broker.replica_results import FetchResult, ProduceResult
from minikafka_protocol.common import TopicPartition
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc


class DataService(grpc_adapter.Answering, kafka_pb2_grpc.DataServicer):
    def Produce(self, request: kafka_pb2.ProduceRequest, context: grpc.ServicerContext) -> kafka_pb2.ProduceResponse:
        answer = self._answer(m.ProduceRequest(request.acks, request.timeout_ms, {
            TopicPartition(topic.name, data.partition): data.records
            for topic in request.topics for data in topic.partitions
        }), context)
        assert isinstance(answer, m.ProduceResponse)
        response = kafka_pb2.ProduceResponse()
        entry = grpc_adapter.topic_entries(lambda name: response.topics.add(name=name))
        for tp, result in answer.partitions.items():
            entry(tp[0]).partitions.append(_produce_partition(tp[1], result))
        return response

    def Fetch(self, request: kafka_pb2.FetchRequest, context: grpc.ServicerContext) -> kafka_pb2.FetchResponse:
        answer = self._answer(m.FetchRequest(
            replica_id=request.replica_id, max_wait_ms=request.max_wait_ms, min_bytes=request.min_bytes,
            max_bytes=request.max_bytes, replica_epoch=request.replica_epoch, session_id=request.session_id,
            session_epoch=request.session_epoch if request.HasField("session_epoch") else FINAL_EPOCH,
            partitions={
                # 0 is protobuf's "not set"
                TopicPartition(topic.topic, p.partition): PartitionData(
                    p.fetch_offset, p.current_leader_epoch, p.partition_max_bytes or DEFAULT_PARTITION_MAX_BYTES
                )
                for topic in request.topics for p in topic.partitions
            },
            forgotten=tuple(TopicPartition(topic.topic, p) for topic in request.forgotten_topics
                            for p in topic.partitions),
        ), context)
        assert isinstance(answer, m.FetchResponse)
        response = kafka_pb2.FetchResponse(error_code=answer.error.code, session_id=answer.session_id)
        entry = grpc_adapter.topic_entries(lambda name: response.topics.add(topic=name))
        for tp, r in answer.partitions.items():
            entry(tp[0]).partitions.append(_fetch_partition(tp[1], r))
        return response

    def ListOffsets(
        self, request: kafka_pb2.ListOffsetsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.ListOffsetsResponse:
        answer = self._answer(m.ListOffsetsRequest({
            TopicPartition(topic.name, p.partition): m.ListOffsetsPartition(p.current_leader_epoch, p.timestamp)
            for topic in request.topics for p in topic.partitions
        }, request.replica_id), context)
        assert isinstance(answer, m.ListOffsetsResponse)
        response = kafka_pb2.ListOffsetsResponse()
        entry = grpc_adapter.topic_entries(lambda name: response.topics.add(name=name))
        for tp, listed in answer.partitions.items():
            entry(tp[0]).partitions.add(partition=tp[1], error_code=listed.error.code, timestamp=listed.timestamp,
                                        offset=listed.offset, leader_epoch=listed.leader_epoch,
                                        error_message=listed.message)
        return response

    def OffsetForLeaderEpoch(
        self, request: kafka_pb2.OffsetForLeaderEpochRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.OffsetForLeaderEpochResponse:
        answer = self._answer(m.OffsetForLeaderEpochRequest({
            TopicPartition(topic.topic, p.partition): m.OffsetForLeaderEpochPartition(p.current_leader_epoch,
                                                                                      p.leader_epoch)
            for topic in request.topics for p in topic.partitions
        }), context)
        assert isinstance(answer, m.OffsetForLeaderEpochResponse)
        response = kafka_pb2.OffsetForLeaderEpochResponse()
        entry = grpc_adapter.topic_entries(lambda name: response.topics.add(topic=name))
        for tp, end in answer.partitions.items():
            entry(tp[0]).partitions.add(partition=tp[1], error_code=end.error.code, leader_epoch=end.leader_epoch,
                                        end_offset=end.end_offset)
        return response

    def InitProducerId(
        self, request: kafka_pb2.InitProducerIdRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.InitProducerIdResponse:
        answer = self._answer(m.InitProducerIdRequest(), context)
        assert isinstance(answer, m.InitProducerIdResponse)
        return kafka_pb2.InitProducerIdResponse(
            error_code=answer.error.code, error_message=answer.message, producer_id=answer.producer_id,
            producer_epoch=answer.producer_epoch,
        )

    def DescribeReplicas(
        self, request: kafka_pb2.DescribeReplicasRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DescribeReplicasResponse:
        wanted = tuple(TopicPartition(tp.topic, tp.partition) for tp in request.partitions) or None
        answer = self._answer(m.DescribeReplicasRequest(wanted), context)
        assert isinstance(answer, m.DescribeReplicasResponse)
        response = kafka_pb2.DescribeReplicasResponse(responding_broker_id=answer.responding_broker_id)
        for p in answer.partitions:
            if p.error.code:
                response.partitions.add(topic=p.tp[0], partition=p.tp[1], error_code=p.error.code)
                continue
            entry = response.partitions.add(topic=p.tp[0], partition=p.tp[1], leader_epoch=p.leader_epoch,
                                            high_watermark=p.high_watermark, log_start_offset=p.log_start_offset)
            for r in p.replicas:
                replica = entry.replicas.add(broker_id=r.broker_id, log_end_offset=r.log_end_offset)
                if r.last_caught_up_time_ms is not None:
                    replica.last_caught_up_time_ms = r.last_caught_up_time_ms
        return response


def _produce_partition(partition: int, r: ProduceResult) -> kafka_pb2.ProducePartitionResponse:
    return kafka_pb2.ProducePartitionResponse(
        partition=partition, error_code=r.error.code, error_message=r.message, base_offset=r.base_offset,
        log_start_offset=r.log_start_offset, current_leader_id=r.leader_id, current_leader_epoch=r.leader_epoch,
    )


def _fetch_partition(partition: int, r: FetchResult) -> kafka_pb2.FetchPartitionResponse:
    return kafka_pb2.FetchPartitionResponse(
        partition=partition, error_code=r.error.code, error_message=r.message, high_watermark=r.high_watermark,
        log_start_offset=r.log_start_offset, records=r.records, current_leader_id=r.leader_id,
        current_leader_epoch=r.leader_epoch, log_end_offset=r.log_end_offset,
    )
