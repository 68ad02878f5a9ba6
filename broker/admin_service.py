"""The Admin gRPC service: requests in, Kafka error codes out."""

from __future__ import annotations

import logging

import grpc

from broker.errors import Errors
from broker.zk.kafka_zk_client import KafkaZkClient
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)

# How long a request may wait for ZooKeeper before it is answered with an error.
ZK_READ_DEADLINE_S = 3.0


class AdminService(kafka_pb2_grpc.AdminServicer):
    def __init__(self, broker_id: int, zk: KafkaZkClient, cluster_id: str) -> None:
        self._broker_id = broker_id
        self._zk = zk
        self._cluster_id = cluster_id

    def DescribeCluster(
        self, request: kafka_pb2.DescribeClusterRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DescribeClusterResponse:
        # Read from ZooKeeper at request time: every broker sees the same truth. The metadata
        # cache that Kafka answers from arrives with UpdateMetadata.
        try:
            snapshot = self._zk.describe_cluster(self._cluster_id, deadline_s=ZK_READ_DEADLINE_S)
        except Exception as e:
            log.warning("DescribeCluster failed: %s", e or type(e).__name__)
            return kafka_pb2.DescribeClusterResponse(
                error_code=Errors.REQUEST_TIMED_OUT.code,
                error_message=f"broker {self._broker_id} cannot reach ZooKeeper",
                responding_broker_id=self._broker_id,
            )
        response = kafka_pb2.DescribeClusterResponse(
            error_code=Errors.NONE.code,
            cluster_id=snapshot.cluster_id or "",
            controller_id=snapshot.controller_id,
            controller_epoch=snapshot.controller_epoch,
            responding_broker_id=self._broker_id,
        )
        for broker in snapshot.brokers:
            host, port = broker.endpoint()
            node = response.brokers.add(
                broker_id=broker.broker_id,
                host=host,
                port=port,
                broker_epoch=broker.broker_epoch,
                endpoints=list(broker.endpoints),
            )
            if broker.rack is not None:
                node.rack = broker.rack
        return response
