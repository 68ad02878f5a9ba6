"""The Group gRPC service: group coordinator lookup, membership and offsets, converted to and
from the request layer (broker/api/group_apis.py)."""

from __future__ import annotations

import grpc

from broker.api import messages as m
from broker.group.group_coordinator_rules import JoinGroupRequest, LeaveGroupResult, MemberIdentity, SyncGroupRequest
from broker.grpc_services import adapter as grpc_adapter
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

NO_LEADER_EPOCH = -1


def _optional(message: object, name: str) -> str | None:
    return getattr(message, name) if message.HasField(name) else None  # type: ignore[attr-defined]


class GroupService(grpc_adapter.Answering, kafka_pb2_grpc.GroupServicer):
    def _answer(self, request: object, context: grpc.ServicerContext, gone: object = None) -> object:  # type: ignore[override]
        """The layer's answer; `gone` if the client goes away while the request is parked."""
        return grpc_adapter.wait(self._handle(request, context), context, gone)

    def FindCoordinator(
        self, request: kafka_pb2.FindCoordinatorRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.FindCoordinatorResponse:
        answer = self._answer(m.FindCoordinatorRequest(request.key), context, None)
        assert isinstance(answer, m.FindCoordinatorResponse)
        return kafka_pb2.FindCoordinatorResponse(
            error_code=answer.error.code, error_message=answer.message, node_id=answer.node_id, host=answer.host,
            port=answer.port, partition=max(answer.partition, 0),
        )

    # -- membership ------------------------------------------------------------------------------

    def JoinGroup(self, request: kafka_pb2.JoinGroupRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.JoinGroupResponse:
        result = self._answer(JoinGroupRequest(
            group_id=request.group_id, member_id=request.member_id, client_id=request.client_id,
            protocol_type=request.protocol_type,
            protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
            session_timeout_ms=request.session_timeout_ms, rebalance_timeout_ms=request.rebalance_timeout_ms,
            group_instance_id=_optional(request, "group_instance_id"),
        ), context, None)
        if result is None:
            return kafka_pb2.JoinGroupResponse(error_code=Errors.REQUEST_TIMED_OUT.code, generation_id=-1)
        response = kafka_pb2.JoinGroupResponse(
            error_code=result.error.code, generation_id=result.generation_id,
            protocol_type=result.protocol_type or "", protocol_name=result.protocol_name or "",
            leader=result.leader_id, member_id=result.member_id, skip_assignment=result.skip_assignment,
        )
        for member in result.members:
            entry = response.members.add(member_id=member.member_id, metadata=member.metadata)
            if member.group_instance_id is not None:
                entry.group_instance_id = member.group_instance_id
        return response

    def SyncGroup(self, request: kafka_pb2.SyncGroupRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.SyncGroupResponse:
        result = self._answer(SyncGroupRequest(
            group_id=request.group_id, generation_id=request.generation_id, member_id=request.member_id,
            assignments={a.member_id: bytes(a.assignment) for a in request.assignments},
            group_instance_id=_optional(request, "group_instance_id"),
            protocol_type=request.protocol_type or None, protocol_name=request.protocol_name or None,
        ), context, None)
        if result is None:
            return kafka_pb2.SyncGroupResponse(error_code=Errors.REQUEST_TIMED_OUT.code)
        return kafka_pb2.SyncGroupResponse(
            error_code=result.error.code, protocol_type=result.protocol_type or "",
            protocol_name=result.protocol_name or "", assignment=result.assignment,
        )

    def Heartbeat(self, request: kafka_pb2.HeartbeatRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.HeartbeatResponse:
        answer = self._answer(m.HeartbeatRequest(request.group_id, request.member_id, request.generation_id,
                                                 _optional(request, "group_instance_id")),
                              context, m.HeartbeatResponse(Errors.REQUEST_TIMED_OUT))
        assert isinstance(answer, m.HeartbeatResponse)
        return kafka_pb2.HeartbeatResponse(error_code=answer.error.code)

    def LeaveGroup(self, request: kafka_pb2.LeaveGroupRequest, context: grpc.ServicerContext
                   ) -> kafka_pb2.LeaveGroupResponse:
        members = tuple(MemberIdentity(member.member_id, _optional(member, "group_instance_id"))
                        for member in request.members)
        result = self._answer(m.LeaveGroupRequest(request.group_id, members), context,
                              LeaveGroupResult(Errors.REQUEST_TIMED_OUT))
        assert isinstance(result, LeaveGroupResult)
        response = kafka_pb2.LeaveGroupResponse(error_code=result.error.code)
        for member in result.members:
            entry = response.members.add(member_id=member.member_id, error_code=member.error.code)
            if member.group_instance_id is not None:
                entry.group_instance_id = member.group_instance_id
        return response

    # -- offsets ---------------------------------------------------------------------------------

    def OffsetCommit(self, request: kafka_pb2.OffsetCommitRequest, context: grpc.ServicerContext
                     ) -> kafka_pb2.OffsetCommitResponse:
        offsets = {
            TopicPartition(topic.name, p.partition): m.CommittedOffset(
                p.committed_offset, p.committed_metadata,
                p.committed_leader_epoch if p.committed_leader_epoch >= 0 else None,
            )
            for topic in request.topics for p in topic.partitions
        }
        answer = self._answer(
            m.OffsetCommitRequest(request.group_id, request.member_id, request.generation_id, offsets,
                                  _optional(request, "group_instance_id")),
            context, m.OffsetCommitResponse(dict.fromkeys(sorted(offsets), Errors.REQUEST_TIMED_OUT)),
        )
        assert isinstance(answer, m.OffsetCommitResponse)
        response = kafka_pb2.OffsetCommitResponse()
        entry = grpc_adapter.topic_entries(lambda name: response.topics.add(name=name))
        for (topic, partition), error in answer.errors.items():
            entry(topic).partitions.add(partition=partition, error_code=error.code)
        return response

    def OffsetFetch(self, request: kafka_pb2.OffsetFetchRequest, context: grpc.ServicerContext
                    ) -> kafka_pb2.OffsetFetchResponse:
        wanted = tuple(TopicPartition(t.name, p) for t in request.topics for p in t.partitions) \
            if request.topics else None
        answer = self._answer(m.OffsetFetchRequest(request.group_id, wanted), context,
                              m.OffsetFetchResponse(Errors.REQUEST_TIMED_OUT))
        assert isinstance(answer, m.OffsetFetchResponse)
        response = kafka_pb2.OffsetFetchResponse(error_code=answer.error.code)
        if answer.error is not Errors.NONE:
            return response
        entry = grpc_adapter.topic_entries(lambda name: response.topics.add(name=name))
        for (topic, partition), data in answer.offsets.items():
            entry(topic).partitions.add(
                partition=partition, committed_offset=data.offset, metadata=data.metadata or "",
                committed_leader_epoch=data.leader_epoch if data.leader_epoch is not None else NO_LEADER_EPOCH,
                error_code=data.error.code,
            )
        return response

    # -- views -----------------------------------------------------------------------------------

    def DescribeGroups(self, request: kafka_pb2.DescribeGroupsRequest, context: grpc.ServicerContext
                       ) -> kafka_pb2.DescribeGroupsResponse:
        answer = self._answer(m.DescribeGroupsRequest(tuple(request.groups)), context, None)
        response = kafka_pb2.DescribeGroupsResponse()
        if answer is None:
            return response
        assert isinstance(answer, m.DescribeGroupsResponse)
        for error, group in answer.groups:
            entry = response.groups.add(
                error_code=error.code, group_id=group.group_id, group_state=group.state,
                protocol_type=group.protocol_type, protocol_data=group.protocol_name,
                generation_id=group.generation_id, leader=group.leader_id, coordinator_id=answer.coordinator_id,
            )
            for member in group.members:
                described = entry.members.add(member_id=member.member_id, client_id=member.client_id,
                                              client_host=member.client_host, member_metadata=member.metadata,
                                              member_assignment=member.assignment)
                if member.group_instance_id is not None:
                    described.group_instance_id = member.group_instance_id
        return response

    def ListGroups(self, request: kafka_pb2.ListGroupsRequest, context: grpc.ServicerContext
                   ) -> kafka_pb2.ListGroupsResponse:
        answer = self._answer(m.ListGroupsRequest(), context, m.ListGroupsResponse(Errors.REQUEST_TIMED_OUT))
        assert isinstance(answer, m.ListGroupsResponse)
        response = kafka_pb2.ListGroupsResponse(error_code=answer.error.code)
        for group in answer.groups:
            response.groups.add(group_id=group.group_id, protocol_type=group.protocol_type, group_state=group.state)
        return response
