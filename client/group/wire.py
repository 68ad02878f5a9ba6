"""The Group service on the wire, as a consumer group member uses it: FindCoordinator to any
broker, the rest (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
DescribeGroups, ListGroups) to the group's coordinator; transport failures turned into Kafka's
errors, and what a member does after each group API error (Kafka's response handlers, as a table:
`reaction_for`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc

from broker.grpc_options import target
from client.cluster import RETRIABLE_ERRORS, ClusterMetadata, KafkaError, error_from_rpc
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import deserialize_assignment
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import CONSUMER_PROTOCOL_TYPE, GroupApi
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Coordinator:
    """The broker coordinating a group (FindCoordinator's answer)."""

    node_id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        return target(self.host, self.port)

    def __str__(self) -> str:
        return f"broker {self.node_id} ({self.address})"


class Reaction(Enum):
    """What a member does after a group API answers an error (Kafka's response handlers)."""

    FIND_COORDINATOR = "mark the coordinator unknown, find it again after retry.backoff.ms and rejoin"
    RETRY = "try again after retry.backoff.ms"
    REJOIN = "rejoin the group now"
    REJOIN_NOW = "join again at once with the member id the coordinator gave"
    RESET_GENERATION = "forget the generation, keep the member id, rejoin now"
    RESET_MEMBER = "forget the member id and the generation, rejoin now"
    FATAL = "raise to the application"


# A lost connection is BROKER_NOT_AVAILABLE, an unanswered request REQUEST_TIMED_OUT (error_from_rpc).
COORDINATOR_LOST = dict.fromkeys(
    (Errors.COORDINATOR_NOT_AVAILABLE, Errors.NOT_COORDINATOR, Errors.COORDINATOR_LOAD_IN_PROGRESS,
     Errors.BROKER_NOT_AVAILABLE, Errors.REQUEST_TIMED_OUT),
    Reaction.FIND_COORDINATOR,
)
_MEMBERSHIP = {
    Errors.UNKNOWN_MEMBER_ID: Reaction.RESET_MEMBER,
    Errors.ILLEGAL_GENERATION: Reaction.RESET_GENERATION,
    Errors.REBALANCE_IN_PROGRESS: Reaction.REJOIN,
    Errors.FENCED_INSTANCE_ID: Reaction.FATAL,
}
REACTIONS: dict[str, dict[Errors, Reaction]] = {
    GroupApi.FIND_COORDINATOR: {Errors.COORDINATOR_NOT_AVAILABLE: Reaction.RETRY},
    GroupApi.JOIN_GROUP: {**COORDINATOR_LOST, **_MEMBERSHIP, Errors.MEMBER_ID_REQUIRED: Reaction.REJOIN_NOW},
    GroupApi.SYNC_GROUP: {**COORDINATOR_LOST, **_MEMBERSHIP},
    GroupApi.HEARTBEAT: {**COORDINATOR_LOST, **_MEMBERSHIP},
    GroupApi.OFFSET_COMMIT: {**COORDINATOR_LOST, **_MEMBERSHIP},
    GroupApi.OFFSET_FETCH: dict(COORDINATOR_LOST),
    GroupApi.LEAVE_GROUP: {},
}


def transport_error(e: grpc.RpcError | grpc.FutureCancelledError, who: str) -> KafkaError:
    """error_from_rpc, but a call cancelled under us (a broker shutting down ends its calls so) is a
    lost connection, BROKER_NOT_AVAILABLE; the client's own cancellations are never looked at."""
    code = e.code() if isinstance(e, grpc.RpcError) and hasattr(e, "code") else None
    if isinstance(e, grpc.FutureCancelledError) or code is grpc.StatusCode.CANCELLED:
        return KafkaError(Errors.BROKER_NOT_AVAILABLE, f"{who}: the call was cancelled (connection lost)")
    return error_from_rpc(e, who)


def reaction_for(api: str, error: Errors) -> Reaction:
    """The reaction to `error` answered to `api`: the table, else a retry for Kafka's retriable
    errors and FATAL for the rest (INCONSISTENT_GROUP_PROTOCOL, INVALID_SESSION_TIMEOUT,
    GROUP_MAX_SIZE_REACHED, INVALID_GROUP_ID, ...)."""
    reaction = REACTIONS[api].get(error)
    if reaction is not None:
        return reaction
    return Reaction.RETRY if error in RETRIABLE_ERRORS else Reaction.FATAL


# -- the requests ---------------------------------------------------------------------------------


def join_group_request(*, group_id: str, member_id: str, group_instance_id: str | None, client_id: str,
                       session_timeout_ms: int, rebalance_timeout_ms: int,
                       protocols: Sequence[tuple[str, bytes]]) -> kafka_pb2.JoinGroupRequest:
    return kafka_pb2.JoinGroupRequest(
        group_id=group_id, session_timeout_ms=session_timeout_ms, rebalance_timeout_ms=rebalance_timeout_ms,
        member_id=member_id, group_instance_id=group_instance_id, protocol_type=CONSUMER_PROTOCOL_TYPE,
        protocols=[kafka_pb2.JoinGroupProtocol(name=n, metadata=m) for n, m in protocols],
        client_id=client_id,
    )


def sync_group_request(*, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                       protocol_name: str | None, assignments: Mapping[str, bytes]) -> kafka_pb2.SyncGroupRequest:
    """The leader's SyncGroup carries every member's assignment; a follower's none."""
    return kafka_pb2.SyncGroupRequest(
        group_id=group_id, generation_id=generation_id, member_id=member_id,
        group_instance_id=group_instance_id, protocol_type=CONSUMER_PROTOCOL_TYPE, protocol_name=protocol_name,
        assignments=[kafka_pb2.SyncGroupAssignment(member_id=m, assignment=a) for m, a in assignments.items()],
    )


def heartbeat_request(*, group_id: str, generation_id: int, member_id: str,
                      group_instance_id: str | None) -> kafka_pb2.HeartbeatRequest:
    return kafka_pb2.HeartbeatRequest(group_id=group_id, generation_id=generation_id, member_id=member_id,
                                      group_instance_id=group_instance_id)


def offset_commit_request(offsets: Mapping[TopicPartition, int], *, group_id: str, generation_id: int,
                          member_id: str, group_instance_id: str | None) -> kafka_pb2.OffsetCommitRequest:
    """ValueError for a negative offset: nothing is sent."""
    for tp, offset in offsets.items():
        if offset < 0:
            raise ValueError(f"invalid offset {offset} for {tp}")
    topics: dict[str, list[kafka_pb2.OffsetCommitPartition]] = {}
    for tp, offset in sorted(offsets.items()):
        topics.setdefault(tp.topic, []).append(kafka_pb2.OffsetCommitPartition(
            partition=tp.partition, committed_offset=offset, committed_leader_epoch=-1))
    return kafka_pb2.OffsetCommitRequest(
        group_id=group_id, generation_id=generation_id, member_id=member_id,
        group_instance_id=group_instance_id if member_id else None,
        topics=[kafka_pb2.OffsetCommitTopic(name=t, partitions=ps) for t, ps in topics.items()],
    )


def offset_commit_error(response: kafka_pb2.OffsetCommitResponse) -> Errors:
    """The first error of an OffsetCommit answer, the group's then each partition's; NONE if none."""
    errors = [Errors.for_code(response.error_code)] + [
        Errors.for_code(p.error_code) for t in response.topics for p in t.partitions]
    return next((e for e in errors if e is not Errors.NONE), Errors.NONE)


def offset_fetch_request(group_id: str, partitions: Collection[TopicPartition]) -> kafka_pb2.OffsetFetchRequest:
    topics: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        topics.setdefault(tp.topic, []).append(tp.partition)
    return kafka_pb2.OffsetFetchRequest(group_id=group_id, topics=[
        kafka_pb2.OffsetFetchTopic(name=t, partitions=ps) for t, ps in topics.items()])


# -- the calls ------------------------------------------------------------------------------------


class GroupClient:
    """The Group service's calls: FindCoordinator to any broker, the rest to a coordinator."""

    def __init__(self, cluster: ClusterMetadata) -> None:
        self._cluster = cluster
        self._stubs: dict[str, kafka_pb2_grpc.GroupStub] = {}

    def find_coordinator(self, group_id: str) -> Coordinator:
        """The group's coordinator; KafkaError (retriable for COORDINATOR_NOT_AVAILABLE) if none."""
        request = kafka_pb2.FindCoordinatorRequest(key=group_id)
        response = self._cluster.call_any(
            "FindCoordinator",
            lambda channel, timeout: kafka_pb2_grpc.GroupStub(channel).FindCoordinator(request, timeout=timeout),
        )
        error = Errors.for_code(response.error_code)
        if error is not Errors.NONE:
            raise KafkaError(error, response.error_message or f"no coordinator for group '{group_id}'")
        return Coordinator(response.node_id, response.host, response.port)

    def stub(self, coordinator: Coordinator | str) -> kafka_pb2_grpc.GroupStub:
        address = coordinator if isinstance(coordinator, str) else coordinator.address
        stub = self._stubs.get(address)
        if stub is None:
            stub = self._stubs[address] = kafka_pb2_grpc.GroupStub(self._cluster.channel(address))
        return stub

    def call(self, coordinator: Coordinator | str, api: str, request: object, timeout_s: float) -> Any:
        """A blocking call; a transport failure raises as the Kafka error it means."""
        try:
            return getattr(self.stub(coordinator), api)(request, timeout=timeout_s)
        except grpc.RpcError as e:
            raise transport_error(e, f"{api} to {coordinator}") from None
        except ValueError as e:  # the channel was closed under us: the consumer is closing
            raise KafkaError(Errors.BROKER_NOT_AVAILABLE, f"{api} to {coordinator}: {e}") from None

    def leave_group(self, coordinator: Coordinator, group_id: str, member_id: str, timeout_s: float) -> None:
        """LeaveGroup for one dynamic member; a failure is logged, not raised: the member goes
        anyway, and the coordinator drops it after session.timeout.ms."""
        request = kafka_pb2.LeaveGroupRequest(group_id=group_id, members=[
            kafka_pb2.MemberIdentity(member_id=member_id)])
        try:
            self.call(coordinator, "LeaveGroup", request, timeout_s)
        except KafkaError as e:
            log.info("LeaveGroup of member %s failed: %s", member_id, e)


# -- DescribeGroups' answer -----------------------------------------------------------------------


@dataclass
class DescribedMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    host: str
    assignment: list[TopicPartition] = field(default_factory=list)


def describe_members(group: kafka_pb2.DescribedGroup) -> list[DescribedMember]:
    """The members of a DescribeGroups answer, with their assignments decoded when the group is a
    consumer group (ConsumerProtocol); undecodable bytes read as no partitions."""
    members = []
    for m in group.members:
        partitions: list[TopicPartition] = []
        if group.protocol_type == CONSUMER_PROTOCOL_TYPE and m.member_assignment:
            try:
                assignment = deserialize_assignment(m.member_assignment)
            except ValueError:
                assignment = None
            partitions = sorted(assignment.partitions) if assignment else []
        members.append(DescribedMember(m.member_id, m.group_instance_id if m.HasField("group_instance_id") else None,
                                       m.client_id, m.client_host, partitions))
    return members
