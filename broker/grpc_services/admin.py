"""The Admin gRPC service: the cluster, its metadata and topics, and the broker's metrics,
converted to and from the request layer (broker/api/admin_apis.py)."""

from __future__ import annotations

import grpc

from broker.api import messages as m
from broker.grpc_services import adapter as grpc_adapter
from minikafka_protocol.common import TopicPartition
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc


class AdminService(grpc_adapter.Answering, kafka_pb2_grpc.AdminServicer):
    def BrokerMetrics(
        self, request: kafka_pb2.BrokerMetricsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.BrokerMetricsResponse:
        answer = self._answer(m.BrokerMetricsRequest(), context)
        assert isinstance(answer, m.BrokerMetricsResponse)
        return kafka_pb2.BrokerMetricsResponse(**answer.values, truncations=list(answer.truncations))

    def DescribeCluster(
        self, request: kafka_pb2.DescribeClusterRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DescribeClusterResponse:
        answer = self._answer(m.DescribeClusterRequest(), context)
        assert isinstance(answer, m.DescribeClusterResponse)
        response = kafka_pb2.DescribeClusterResponse(
            error_code=answer.error.code, error_message=answer.message, cluster_id=answer.cluster_id,
            controller_id=answer.controller_id, controller_epoch=answer.controller_epoch,
            responding_broker_id=answer.responding_broker_id,
        )
        for broker in answer.brokers:
            host, port = broker.endpoint(answer.listener_name)
            node = response.brokers.add(broker_id=broker.broker_id, host=host, port=port,
                                        broker_epoch=broker.broker_epoch, endpoints=list(broker.endpoints))
            if broker.rack is not None:
                node.rack = broker.rack
        return response

    def Metadata(self, request: kafka_pb2.MetadataRequest, context: grpc.ServicerContext) -> kafka_pb2.MetadataResponse:
        answer = self._answer(m.MetadataRequest(tuple(request.topics) or None), context)
        assert isinstance(answer, m.MetadataResponse)
        response = kafka_pb2.MetadataResponse(cluster_id=answer.cluster_id, controller_id=answer.controller_id,
                                              responding_broker_id=answer.responding_broker_id)
        for broker in answer.brokers:
            node = response.brokers.add(broker_id=broker.broker_id, host=broker.host, port=broker.port,
                                        broker_epoch=broker.broker_epoch, endpoints=list(broker.endpoints))
            if broker.rack is not None:
                node.rack = broker.rack
        for t in answer.topics:
            topic = response.topics.add(name=t.name, is_internal=t.is_internal, error_code=t.error.code)
            topic.configs.update(t.configs)
            for p in t.partitions:
                s = p.state
                topic.partitions.add(error_code=p.error.code, partition=s.partition, leader=s.leader,
                                     leader_epoch=s.leader_epoch, replicas=list(s.replicas), isr=list(s.isr),
                                     offline_replicas=list(s.offline_replicas))
        return response

    def CreateTopics(
        self, request: kafka_pb2.CreateTopicsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.CreateTopicsResponse:
        answer = self._answer(m.CreateTopicsRequest(
            tuple(m.CreatableTopic(t.name, t.num_partitions, t.replication_factor, dict(t.configs))
                  for t in request.topics),
            request.timeout_ms, request.validate_only,
        ), context)
        assert isinstance(answer, m.CreateTopicsResponse)
        response = kafka_pb2.CreateTopicsResponse()
        for r in answer.topics:
            result = response.topics.add(name=r.name, error_code=r.error.code, error_message=r.message)
            if r.num_partitions > 0:
                result.num_partitions, result.replication_factor = r.num_partitions, r.replication_factor
        return response

    def DeleteTopics(
        self, request: kafka_pb2.DeleteTopicsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DeleteTopicsResponse:
        answer = self._answer(m.DeleteTopicsRequest(tuple(request.topic_names), request.timeout_ms), context)
        assert isinstance(answer, m.DeleteTopicsResponse)
        response = kafka_pb2.DeleteTopicsResponse()
        for r in answer.results:
            response.responses.add(name=r.name, error_code=r.error.code, error_message=r.message)
        return response

    def ElectLeaders(
        self, request: kafka_pb2.ElectLeadersRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.ElectLeadersResponse:
        answer = self._answer(m.ElectLeadersRequest(
            kafka_pb2.ElectionType.Name(request.election_type),
            tuple(TopicPartition(tp.topic, tp.partition) for tp in request.partitions) or None,
            request.timeout_ms,
        ), context)
        assert isinstance(answer, m.ElectLeadersResponse)
        response = kafka_pb2.ElectLeadersResponse(error_code=answer.error.code)
        for (topic, partition), error in answer.results.items():
            response.results.add(topic=topic, partition=partition, error_code=error.code, error_message=error.message)
        return response

    def CreateAcls(
        self, request: kafka_pb2.CreateAclsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.CreateAclsResponse:
        answer = self._answer(m.CreateAclsRequest(tuple(_codes(b) for b in request.creations)), context)
        assert isinstance(answer, m.CreateAclsResponse)
        return kafka_pb2.CreateAclsResponse(results=[
            kafka_pb2.AclResult(error_code=r.error.code, error_message=r.message) for r in answer.results])

    def DescribeAcls(
        self, request: kafka_pb2.DescribeAclsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DescribeAclsResponse:
        answer = self._answer(m.DescribeAclsRequest(_codes(request.filter)), context)
        assert isinstance(answer, m.DescribeAclsResponse)
        return kafka_pb2.DescribeAclsResponse(error_code=answer.error.code, error_message=answer.message,
                                              acls=[_binding(b) for b in answer.acls])

    def DeleteAcls(
        self, request: kafka_pb2.DeleteAclsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DeleteAclsResponse:
        answer = self._answer(m.DeleteAclsRequest(tuple(_codes(f) for f in request.filters)), context)
        assert isinstance(answer, m.DeleteAclsResponse)
        return kafka_pb2.DeleteAclsResponse(results=[
            kafka_pb2.DeleteAclsFilterResult(error_code=r.error.code, error_message=r.message,
                                             deleted=[_binding(b) for b in r.deleted])
            for r in answer.results])


def _codes(binding: kafka_pb2.AclBinding) -> m.AclBindingCodes:
    def text(field: str) -> str | None:
        return getattr(binding, field) if binding.HasField(field) else None

    return m.AclBindingCodes(binding.resource_type, text("resource_name"), binding.pattern_type, text("principal"),
                             text("host"), binding.operation, binding.permission_type)


def _binding(codes: m.AclBindingCodes) -> kafka_pb2.AclBinding:
    return kafka_pb2.AclBinding(resource_type=codes.resource_type, resource_name=codes.resource_name,
                                pattern_type=codes.pattern_type, principal=codes.principal, host=codes.host,
                                operation=codes.operation, permission_type=codes.permission_type)
