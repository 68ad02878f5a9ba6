"""The BrokerControl gRPC service: the controller's requests to this broker, and controlled
shutdown requests from other brokers when this broker is the controller."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc

from broker import heap
from broker.metadata_cache import BrokerEndpoint, MetadataCache, PartitionInfo
from broker.replica_manager import ReplicaManager, state_change_log
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)


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


def _partition_errors(results: dict[tuple[str, int], Errors]) -> list[kafka_pb2.PartitionError]:
    return [kafka_pb2.PartitionError(topic=t, partition=p, error_code=e.code) for (t, p), e in results.items()]


class BrokerControlService(kafka_pb2_grpc.BrokerControlServicer):
    def __init__(
        self,
        replica_manager: ReplicaManager,
        metadata_cache: MetadataCache,
        controlled_shutdown: Callable[[int, int], tuple[Errors, str, list[tuple[str, int]]]],
    ) -> None:
        self._replicas = replica_manager
        self._metadata = metadata_cache
        self._controlled_shutdown = controlled_shutdown

    def LeaderAndIsr(
        self, request: kafka_pb2.LeaderAndIsrRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.LeaderAndIsrResponse:
        states = [partition_info(s) for s in request.partition_states]
        error, results = self._replicas.become_leader_or_follower(
            request.controller_id, request.controller_epoch, request.broker_epoch, states
        )
        heap.settle()
        return kafka_pb2.LeaderAndIsrResponse(error_code=error.code, partition_errors=_partition_errors(results))

    def UpdateMetadata(
        self, request: kafka_pb2.UpdateMetadataRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.UpdateMetadataResponse:
        error = self._replicas.accept_controller_request(
            "UpdateMetadata", request.controller_id, request.controller_epoch, request.broker_epoch
        )
        if error is Errors.NONE:
            self._metadata.update(
                request.controller_id,
                request.controller_epoch,
                [broker_endpoint(b) for b in request.live_brokers],
                [partition_info(s) for s in request.partition_states],
                [(tp.topic, tp.partition) for tp in request.deleted_partitions],
            )
            state_change_log.info(
                "%s Add %d partitions and deleted %d partitions from metadata cache in response to "
                "UpdateMetadata request sent by controller %d epoch %d",
                self._replicas.prefix, len(request.partition_states), len(request.deleted_partitions),
                request.controller_id, request.controller_epoch,
            )
            self._replicas.fetchers.retry_pending()
            heap.settle()
        return kafka_pb2.UpdateMetadataResponse(error_code=error.code)

    def StopReplica(
        self, request: kafka_pb2.StopReplicaRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.StopReplicaResponse:
        error, results = self._replicas.stop_replicas(
            request.controller_id, request.controller_epoch, request.broker_epoch,
            [(p.topic, p.partition, p.leader_epoch, p.delete_partition) for p in request.partitions],
        )
        # A deleted partition's frozen objects may hold cycles only a full collection frees.
        heap.settle(reclaim=any(p.delete_partition for p in request.partitions))
        return kafka_pb2.StopReplicaResponse(error_code=error.code, partition_errors=_partition_errors(results))

    def ControlledShutdown(
        self, request: kafka_pb2.ControlledShutdownRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.ControlledShutdownResponse:
        error, message, remaining = self._controlled_shutdown(request.broker_id, request.broker_epoch)
        return kafka_pb2.ControlledShutdownResponse(
            error_code=error.code,
            error_message=message,
            remaining_partitions=[kafka_pb2.TopicPartition(topic=t, partition=p) for t, p in remaining],
        )
