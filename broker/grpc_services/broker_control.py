"""The BrokerControl gRPC service: the controller's requests to this broker, and controlled
shutdown requests from other brokers when this broker is the controller, converted to and from
the request layer."""

from __future__ import annotations

import grpc

from broker.api import messages as m
from broker.grpc_services import adapter as grpc_adapter
from broker.metadata_cache import BrokerEndpoint, PartitionInfo
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc


def partition_info(state: kafka_pb2.PartitionState) -> PartitionInfo:
    return PartitionInfo(
        state.topic, state.partition, state.leader, state.leader_epoch, tuple(state.isr), tuple(state.replicas),
        tuple(state.offline_replicas), state.zk_version, state.controller_epoch,
    )


def broker_endpoint(node: kafka_pb2.BrokerNode) -> BrokerEndpoint:
    return BrokerEndpoint(
        broker_id=node.broker_id, host=node.host, port=node.port, rack=node.rack if node.HasField("rack") else None,
        broker_epoch=node.broker_epoch, endpoints=tuple(node.endpoints),
    )


def _partition_errors(results: dict[TopicPartition, Errors]) -> list[kafka_pb2.PartitionError]:
    return [kafka_pb2.PartitionError(topic=t, partition=p, error_code=e.code) for (t, p), e in results.items()]


class BrokerControlService(grpc_adapter.Answering, kafka_pb2_grpc.BrokerControlServicer):
    def LeaderAndIsr(
        self, request: kafka_pb2.LeaderAndIsrRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.LeaderAndIsrResponse:
        answer = self._answer(m.LeaderAndIsrRequest(
            request.controller_id, request.controller_epoch, request.broker_epoch,
            [partition_info(s) for s in request.partition_states],
        ), context)
        assert isinstance(answer, m.ControllerRequestResponse)
        return kafka_pb2.LeaderAndIsrResponse(error_code=answer.error.code,
                                              partition_errors=_partition_errors(answer.partition_errors))

    def UpdateMetadata(
        self, request: kafka_pb2.UpdateMetadataRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.UpdateMetadataResponse:
        answer = self._answer(m.UpdateMetadataRequest(
            request.controller_id, request.controller_epoch, request.broker_epoch,
            [broker_endpoint(b) for b in request.live_brokers],
            [partition_info(s) for s in request.partition_states],
            [TopicPartition(tp.topic, tp.partition) for tp in request.deleted_partitions],
        ), context)
        assert isinstance(answer, m.ControllerRequestResponse)
        return kafka_pb2.UpdateMetadataResponse(error_code=answer.error.code)

    def StopReplica(
        self, request: kafka_pb2.StopReplicaRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.StopReplicaResponse:
        answer = self._answer(m.StopReplicaRequest(
            request.controller_id, request.controller_epoch, request.broker_epoch,
            [m.StopReplicaPartition(TopicPartition(p.topic, p.partition), p.leader_epoch, p.delete_partition)
             for p in request.partitions],
        ), context)
        assert isinstance(answer, m.ControllerRequestResponse)
        return kafka_pb2.StopReplicaResponse(error_code=answer.error.code,
                                             partition_errors=_partition_errors(answer.partition_errors))

    def ControlledShutdown(
        self, request: kafka_pb2.ControlledShutdownRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.ControlledShutdownResponse:
        answer = self._answer(m.ControlledShutdownRequest(request.broker_id, request.broker_epoch), context)
        assert isinstance(answer, m.ControlledShutdownResponse)
        return kafka_pb2.ControlledShutdownResponse(
            error_code=answer.error.code, error_message=answer.message,
            remaining_partitions=[kafka_pb2.TopicPartition(topic=t, partition=p)
                                  for t, p in answer.remaining_partitions],
        )
