"""The group APIs: the coordinator lookup (FindCoordinator), membership (JoinGroup, SyncGroup,
Heartbeat, LeaveGroup), offsets (OffsetCommit, OffsetFetch) and the group views, over the group
coordinator, whose answers are futures completed on its own thread."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import replace

from broker.api import messages as m
from broker.api.authorization import ALLOW_EVERYTHING, Authorizer, allowed
from broker.api.context import RequestContext
from broker.api.futures import done, then
from broker.api.kafka_apis import Handler
from broker.authorizer.acl import CLUSTER_NAME, Operation, ResourceType
from broker.group.group_coordinator import GroupCoordinator
from broker.group.group_coordinator_rules import (
    MAX_GROUP_ID_BYTES,
    JoinGroupRequest,
    JoinGroupResult,
    LeaveGroupResult,
    OffsetFetchPartition,
    SyncGroupRequest,
    SyncGroupResult,
)
from broker.group.group_metadata import GroupSummary, OffsetAndMetadata
from broker.group.offsets_topic import OffsetsTopicCreator
from broker.metadata_cache import MetadataCache
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC, partition_for

log = logging.getLogger(__name__)


class GroupApis:
    def __init__(self, broker_id: int, metadata_cache: MetadataCache, group_coordinator: GroupCoordinator,
                 offsets_topic: OffsetsTopicCreator, authorizer: Authorizer = ALLOW_EVERYTHING) -> None:
        self.broker_id = broker_id
        self._authorizer = authorizer
        self._metadata = metadata_cache
        self._group_coordinator = group_coordinator
        self._offsets_topic = offsets_topic

    def handlers(self) -> dict[type, Handler]:
        return {
            m.FindCoordinatorRequest: self.handle_find_coordinator,
            JoinGroupRequest: self.handle_join_group,
            SyncGroupRequest: self.handle_sync_group,
            m.HeartbeatRequest: self.handle_heartbeat,
            m.LeaveGroupRequest: self.handle_leave_group,
            m.OffsetCommitRequest: self.handle_offset_commit,
            m.OffsetFetchRequest: self.handle_offset_fetch,
            m.DescribeGroupsRequest: self.handle_describe_groups,
            m.ListGroupsRequest: self.handle_list_groups,
        }

    def _may(self, context: RequestContext, operation: Operation, resource_type: ResourceType, name: str,
             request: str, log_if_denied: bool = True) -> bool:
        return allowed(self._authorizer, context, operation, resource_type, name, request, log_if_denied)

    # -- group coordinator lookup ----------------------------------------------------------------

    def handle_find_coordinator(
        self, context: RequestContext, request: m.FindCoordinatorRequest
    ) -> m.FindCoordinatorResponse:
        """Answered by any broker from its metadata cache: the leader of the group's
        __consumer_offsets partition. The first lookup creates the topic (Kafka's ZooKeeper-mode
        createInternalTopic), and the answer is COORDINATOR_NOT_AVAILABLE until its partitions have leaders."""
        if len(request.key.encode()) > MAX_GROUP_ID_BYTES:
            return m.FindCoordinatorResponse(Errors.INVALID_GROUP_ID,
                                             f"Group id is longer than {MAX_GROUP_ID_BYTES} bytes")
        if not self._may(context, Operation.DESCRIBE, ResourceType.GROUP, request.key, "FIND_COORDINATOR"):
            return m.FindCoordinatorResponse(Errors.GROUP_AUTHORIZATION_FAILED)
        snapshot = self._metadata.snapshot()
        partitions = snapshot.partitions_of(OFFSETS_TOPIC)
        if not partitions:
            try:
                self._offsets_topic.ensure(sorted(snapshot.brokers))
            except Exception as e:  # ZooKeeper away: the client retries
                log.warning("Cannot create %s: %s", OFFSETS_TOPIC, e)
            return m.FindCoordinatorResponse(Errors.COORDINATOR_NOT_AVAILABLE,
                                             f"The {OFFSETS_TOPIC} topic is being created")
        partition = partition_for(request.key, len(partitions))
        info = snapshot.partitions.get((OFFSETS_TOPIC, partition))
        leader = snapshot.brokers.get(info.leader) if info is not None else None
        if leader is None:
            return m.FindCoordinatorResponse(Errors.COORDINATOR_NOT_AVAILABLE,
                                             f"{OFFSETS_TOPIC}-{partition} has no leader", partition=partition)
        broker = leader.on_listener(context.listener_name)
        if broker is None:
            return m.FindCoordinatorResponse(
                Errors.COORDINATOR_NOT_AVAILABLE,
                f"The coordinator, broker {leader.broker_id}, has no listener {context.listener_name}",
                partition=partition)
        return m.FindCoordinatorResponse(Errors.NONE, node_id=broker.broker_id, host=broker.host, port=broker.port,
                                         partition=partition)

    # -- membership ------------------------------------------------------------------------------

    def handle_join_group(
        self, context: RequestContext, request: JoinGroupRequest
    ) -> JoinGroupResult | Future[JoinGroupResult]:
        if not self._may(context, Operation.READ, ResourceType.GROUP, request.group_id, "JOIN_GROUP"):
            return JoinGroupResult(request.member_id, Errors.GROUP_AUTHORIZATION_FAILED)
        # The member's host is the caller's, as the transport saw it, not what the request says.
        return self._group_coordinator.join_group(replace(request, client_host=context.client_host))

    def handle_sync_group(
        self, context: RequestContext, request: SyncGroupRequest
    ) -> SyncGroupResult | Future[SyncGroupResult]:
        if not self._may(context, Operation.READ, ResourceType.GROUP, request.group_id, "SYNC_GROUP"):
            return SyncGroupResult(Errors.GROUP_AUTHORIZATION_FAILED)
        return self._group_coordinator.sync_group(request)

    def handle_heartbeat(
        self, context: RequestContext, request: m.HeartbeatRequest
    ) -> m.HeartbeatResponse | Future[m.HeartbeatResponse]:
        if not self._may(context, Operation.READ, ResourceType.GROUP, request.group_id, "HEARTBEAT"):
            return m.HeartbeatResponse(Errors.GROUP_AUTHORIZATION_FAILED)
        return then(self._group_coordinator.heartbeat(request.group_id, request.member_id, request.generation_id,
                                                      request.group_instance_id), m.HeartbeatResponse)

    def handle_leave_group(
        self, context: RequestContext, request: m.LeaveGroupRequest
    ) -> LeaveGroupResult | Future[LeaveGroupResult]:
        if not self._may(context, Operation.READ, ResourceType.GROUP, request.group_id, "LEAVE_GROUP"):
            return LeaveGroupResult(Errors.GROUP_AUTHORIZATION_FAILED)
        if not request.members:
            return LeaveGroupResult(Errors.INVALID_REQUEST)
        return self._group_coordinator.leave_group(request.group_id, list(request.members))

    # -- offsets ---------------------------------------------------------------------------------

    def handle_offset_commit(
        self, context: RequestContext, request: m.OffsetCommitRequest
    ) -> Future[m.OffsetCommitResponse]:
        """Read on the group, then per topic Read (TOPIC_AUTHORIZATION_FAILED) and existence
        (UNKNOWN_TOPIC_OR_PARTITION), as KafkaApis checks them before the coordinator sees the commit."""
        if not self._may(context, Operation.READ, ResourceType.GROUP, request.group_id, "OFFSET_COMMIT"):
            return done(m.OffsetCommitResponse(dict.fromkeys(sorted(request.offsets),
                                                             Errors.GROUP_AUTHORIZATION_FAILED)))
        known = self._metadata.snapshot().partitions
        now = int(time.time() * 1000)  # Kafka's commit timestamp is the broker's clock
        errors: dict[TopicPartition, Errors] = {}
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, committed in request.offsets.items():
            if not self._may(context, Operation.READ, ResourceType.TOPIC, tp[0], "OFFSET_COMMIT"):
                errors[tp] = Errors.TOPIC_AUTHORIZATION_FAILED
            elif tp not in known:
                errors[tp] = Errors.UNKNOWN_TOPIC_OR_PARTITION
            else:
                offsets[tp] = OffsetAndMetadata(committed.offset, committed.metadata, now, committed.leader_epoch)

        def answer(stored: dict[TopicPartition, Errors]) -> m.OffsetCommitResponse:
            return m.OffsetCommitResponse(dict(sorted({**errors, **stored}.items())))

        if not offsets and errors:
            return then(done({}), answer)
        return then(self._group_coordinator.commit_offsets(request.group_id, request.member_id,
                                                           request.generation_id, offsets, request.group_instance_id),
                    answer)

    def handle_offset_fetch(
        self, context: RequestContext, request: m.OffsetFetchRequest
    ) -> Future[m.OffsetFetchResponse]:
        """Describe on the group, then on each topic: a named partition of a topic the caller may
        not describe is TOPIC_AUTHORIZATION_FAILED; from a fetch of everything it is left out."""
        if not self._may(context, Operation.DESCRIBE, ResourceType.GROUP, request.group_id, "OFFSET_FETCH"):
            return done(m.OffsetFetchResponse(Errors.GROUP_AUTHORIZATION_FAILED))
        wanted = list(request.partitions) if request.partitions is not None else None

        def answer(found: tuple[Errors, dict[TopicPartition, OffsetFetchPartition]]) -> m.OffsetFetchResponse:
            offsets: dict[TopicPartition, OffsetFetchPartition] = {}
            for tp, partition in sorted(found[1].items()):
                if self._may(context, Operation.DESCRIBE, ResourceType.TOPIC, tp[0], "OFFSET_FETCH",
                             log_if_denied=wanted is not None):
                    offsets[tp] = partition
                elif wanted is not None:
                    offsets[tp] = OffsetFetchPartition(-1, error=Errors.TOPIC_AUTHORIZATION_FAILED)
            return m.OffsetFetchResponse(found[0], offsets)

        return then(self._group_coordinator.fetch_offsets(request.group_id, wanted), answer)

    # -- views -----------------------------------------------------------------------------------

    def handle_describe_groups(
        self, context: RequestContext, request: m.DescribeGroupsRequest
    ) -> Future[m.DescribeGroupsResponse]:
        groups = list(request.groups)
        refused = {g for g in groups if not self._may(context, Operation.DESCRIBE, ResourceType.GROUP, g,
                                                      "DESCRIBE_GROUPS")}

        def answer(described: list[tuple[Errors, GroupSummary]]) -> m.DescribeGroupsResponse:
            return m.DescribeGroupsResponse(self.broker_id, [
                (Errors.GROUP_AUTHORIZATION_FAILED, GroupSummary.dead(g)) if g in refused else entry
                for g, entry in zip(groups, described, strict=True)])

        return then(self._group_coordinator.describe_groups(groups), answer)

    def handle_list_groups(self, context: RequestContext, request: m.ListGroupsRequest) -> Future[m.ListGroupsResponse]:
        """Every group with Describe on the cluster, else only those the caller may describe."""
        everything = self._may(context, Operation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME, "LIST_GROUPS",
                               log_if_denied=False)

        def answer(listed: tuple[Errors, list[GroupSummary]]) -> m.ListGroupsResponse:
            return m.ListGroupsResponse(listed[0], [g for g in listed[1] if everything or self._may(
                context, Operation.DESCRIBE, ResourceType.GROUP, g.group_id, "LIST_GROUPS", log_if_denied=False)])

        return then(self._group_coordinator.list_groups(), answer)

