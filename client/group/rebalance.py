"""One rebalance round of a consumer group member (AbstractCoordinator's JoinGroup and SyncGroup;
aiokafka's CoordinatorGroupRebalance): JoinGroup, again at once after MEMBER_ID_REQUIRED
(KIP-394), the leader's assignment, SyncGroup.

A new `RebalanceRound` per round, so an answer to an abandoned round is never taken for the
current one's. It does no blocking IO beyond its own calls: when this member is the leader, the
round stops with `NeedsAssignment` (the members and the protocol the group voted for), and its
owner, which holds the cluster metadata, computes the assignment and hands it back with
`assigned()`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc

from client.cluster import KafkaError
from client.group.heartbeat import HeartbeatTarget
from client.group.member import Generation, MemberState
from client.group.wire import (
    Coordinator,
    GroupClient,
    join_group_request,
    sync_group_request,
    transport_error,
)
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import deserialize_assignment
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import GroupApi, JoinGroupResponseMember
from minikafka_rpc import kafka_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JoinConfig:
    """What a member says of itself in each JoinGroup and SyncGroup."""

    group_id: str
    group_instance_id: str | None
    client_id: str
    session_timeout_ms: int
    rebalance_timeout_ms: int  # max.poll.interval.ms
    join_timeout_s: float  # how long a JoinGroup (or a follower's SyncGroup) may be held


@dataclass(frozen=True)
class Joined:
    generation: Generation
    leader_id: str
    assignment: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class Failed:
    api: str
    error: KafkaError
    member_id: str  # as the round left it: MEMBER_ID_REQUIRED may have given one


@dataclass(frozen=True)
class NeedsAssignment:
    """This member leads the new generation: the round waits for the assignment of `members`
    with `protocol` (ConsumerCoordinator.onLeaderElected), given by `RebalanceRound.assigned`."""

    generation_id: int
    protocol: str
    members: tuple[JoinGroupResponseMember, ...]


class RebalanceRound:
    """One JoinGroup + SyncGroup round. Driven by `advance(deadline)`, which waits for the call in
    flight no longer than the deadline and returns None while the round goes on, so poll() keeps
    its timeout during a rebalance."""

    def __init__(self, client: GroupClient, config: JoinConfig, coordinator: Coordinator, member_id: str,
                 protocols: Sequence[tuple[str, bytes]]) -> None:
        self._client = client
        self._config = config
        self.coordinator = coordinator
        self.member_id = member_id
        self._protocols = protocols
        self.generation: Generation | None = None  # once JoinGroup answered
        self.heartbeat_target: HeartbeatTarget | None = None  # one object, so heartbeats keep their pace
        self.leader_id = ""
        self.state = MemberState.PREPARING_REBALANCE
        self._api = GroupApi.JOIN_GROUP
        self._call: grpc.Future = self._send_join()

    def _send_join(self) -> grpc.Future:
        c = self._config
        request = join_group_request(
            group_id=c.group_id, member_id=self.member_id, group_instance_id=c.group_instance_id,
            client_id=c.client_id, session_timeout_ms=c.session_timeout_ms,
            rebalance_timeout_ms=c.rebalance_timeout_ms, protocols=self._protocols,
        )
        return self._client.stub(self.coordinator).JoinGroup.future(request, timeout=c.join_timeout_s)

    def _send_sync(self, assignments: Mapping[str, bytes]) -> None:
        assert self.generation is not None
        c = self._config
        self._api = GroupApi.SYNC_GROUP
        request = sync_group_request(
            group_id=c.group_id, generation_id=self.generation.generation_id, member_id=self.generation.member_id,
            group_instance_id=c.group_instance_id, protocol_name=self.generation.protocol, assignments=assignments,
        )
        # A follower's SyncGroup waits at the coordinator for the leader's: as long as a join may.
        self._call = self._client.stub(self.coordinator).SyncGroup.future(request, timeout=c.join_timeout_s)

    def cancel(self) -> None:
        self._call.cancel()

    def advance(self, deadline: float) -> Joined | Failed | NeedsAssignment | None:
        while True:
            try:
                response = self._call.result(timeout=max(0.0, deadline - time.monotonic()))
            except grpc.FutureTimeoutError:
                return None
            except (grpc.RpcError, grpc.FutureCancelledError) as e:
                return Failed(self._api, transport_error(e, f"{self._api} to {self.coordinator}"), self.member_id)
            outcome = self._on_join(response) if self._api == GroupApi.JOIN_GROUP else self._on_sync(response)
            if outcome is not None:
                return outcome

    def assigned(self, assignments: Mapping[str, bytes]) -> None:
        """The leader's assignment (each member id's Assignment bytes), after `NeedsAssignment`:
        SyncGroup goes out; `advance` waits for its answer."""
        assert self._api == GroupApi.JOIN_GROUP and self.generation is not None
        self._send_sync(assignments)

    def fail(self, error: KafkaError) -> Failed:
        """The leader could not compute the assignment (after `NeedsAssignment`): the round ends."""
        return Failed(GroupApi.JOIN_GROUP, error, self.member_id)

    def _on_join(self, response: kafka_pb2.JoinGroupResponse) -> Failed | NeedsAssignment | None:
        error = Errors.for_code(response.error_code)
        if error is Errors.MEMBER_ID_REQUIRED:
            # KIP-394: the coordinator named us and expects us back at once under that name.
            log.info("group %s: the coordinator asked member id %s to join again (MEMBER_ID_REQUIRED)",
                     self._config.group_id, response.member_id)
            self.member_id = response.member_id
            self._call = self._send_join()
            return None
        if error is not Errors.NONE:
            return Failed(GroupApi.JOIN_GROUP, KafkaError(error, response.error_message or "JoinGroup"),
                          self.member_id)
        self.member_id = response.member_id
        self.leader_id = response.leader
        self.generation = Generation(response.generation_id, response.member_id, response.protocol_name)
        self.heartbeat_target = HeartbeatTarget(self.coordinator, self.generation)
        self.state = MemberState.COMPLETING_REBALANCE
        if response.leader == response.member_id and not response.skip_assignment:
            members = tuple(JoinGroupResponseMember(
                m.member_id, m.group_instance_id if m.HasField("group_instance_id") else None, m.metadata,
            ) for m in response.members)
            return NeedsAssignment(response.generation_id, response.protocol_name, members)
        self._send_sync({})
        return None

    def _on_sync(self, response: kafka_pb2.SyncGroupResponse) -> Joined | Failed:
        error = Errors.for_code(response.error_code)
        if error is not Errors.NONE:
            return Failed(GroupApi.SYNC_GROUP, KafkaError(error, response.error_message or "SyncGroup"),
                          self.member_id)
        assert self.generation is not None
        try:
            assignment = deserialize_assignment(response.assignment) if response.assignment else None
        except ValueError as e:
            return Failed(GroupApi.SYNC_GROUP, KafkaError(Errors.INVALID_REQUEST, f"bad assignment: {e}"),
                          self.member_id)
        partitions = tuple(sorted(assignment.partitions)) if assignment else ()
        return Joined(self.generation, self.leader_id, partitions)
