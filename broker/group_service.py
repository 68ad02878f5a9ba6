"""The Group gRPC service: group coordinator lookup, and membership and offsets translated to and
from the group coordinator (broker/group/group_metadata_manager.py).

FindCoordinator is answered by any broker from its metadata cache: the leader of the group's
``__consumer_offsets`` partition. The first lookup creates the topic (Kafka's ZooKeeper-mode
createInternalTopic), and the answer is COORDINATOR_NOT_AVAILABLE until its partitions have leaders.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TypeVar

import grpc
from kazoo.exceptions import NodeExistsError

from broker import grpc_adapter
from broker.group.coordinator_rules import (
    MAX_GROUP_ID_BYTES,
    JoinGroupRequest,
    MemberIdentity,
    SyncGroupRequest,
)
from broker.group.group_metadata import OffsetAndMetadata, TopicPartition
from broker.group.group_metadata_manager import GroupMetadataManager
from broker.metadata_cache import MetadataCache
from broker.replica_assignment import assign_replicas_to_brokers
from broker.zk import zk_data
from broker.zk.kafka_zk_client import KafkaZkClient
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC, partition_for
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)
R = TypeVar("R")

NO_LEADER_EPOCH = -1


class OffsetsTopicCreator:
    """Creates ``__consumer_offsets`` once, as Kafka's broker does on the first FindCoordinator.

    Kafka's topic configs for it: compaction, offsets.topic.segment.bytes and the producer's
    compression. minikafka does not compact logs, so it also keeps them forever (retention.ms -1):
    time-based deletion would drop the committed offsets that compaction keeps."""

    def __init__(self, zk: KafkaZkClient, num_partitions: int, replication_factor: int, segment_bytes: int) -> None:
        self._zk = zk
        self._num_partitions = num_partitions
        self._replication_factor = replication_factor
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._created = False

    def ensure(self, live_brokers: list[int]) -> None:
        with self._lock:
            if self._created or not live_brokers:
                return
            replication = self._replication_factor
            if len(live_brokers) < replication:
                log.warning(
                    "Creating %s with replication factor %d: only %d brokers are alive, fewer than "
                    "offsets.topic.replication.factor=%d", OFFSETS_TOPIC, len(live_brokers), len(live_brokers),
                    replication,
                )
                replication = len(live_brokers)
            assignment = assign_replicas_to_brokers(sorted(live_brokers), self._num_partitions, replication)
            configs = {"cleanup.policy": "compact", "compression.type": "producer",
                       "segment.bytes": str(self._segment_bytes), "retention.ms": "-1"}
            try:
                self._zk.create_topic(
                    zk_data.TopicAssignment(OFFSETS_TOPIC, {p: tuple(r) for p, r in assignment.items()},
                                            zk_data.new_uuid()),
                    configs,
                )
                log.info("Created topic %s with %d partitions and replication factor %d", OFFSETS_TOPIC,
                         self._num_partitions, replication)
            except NodeExistsError:
                pass  # another broker was first
            self._created = True


class GroupService(kafka_pb2_grpc.GroupServicer):
    def __init__(self, broker_id: int, metadata: MetadataCache, coordinator: GroupMetadataManager,
                 offsets_topic: OffsetsTopicCreator) -> None:
        self._broker_id = broker_id
        self._metadata = metadata
        self._coordinator = coordinator
        self._offsets_topic = offsets_topic

    # -- group coordinator lookup ----------------------------------------------------------------

    def FindCoordinator(
        self, request: kafka_pb2.FindCoordinatorRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.FindCoordinatorResponse:
        if len(request.key.encode()) > MAX_GROUP_ID_BYTES:
            return kafka_pb2.FindCoordinatorResponse(
                error_code=Errors.INVALID_GROUP_ID.code, node_id=-1,
                error_message=f"Group id is longer than {MAX_GROUP_ID_BYTES} bytes",
            )
        snapshot = self._metadata.snapshot()
        partitions = snapshot.partitions_of(OFFSETS_TOPIC)
        if not partitions:
            try:
                self._offsets_topic.ensure(sorted(snapshot.brokers))
            except Exception as e:  # ZooKeeper away: the client retries
                log.warning("Cannot create %s: %s", OFFSETS_TOPIC, e)
            return kafka_pb2.FindCoordinatorResponse(
                error_code=Errors.COORDINATOR_NOT_AVAILABLE.code, node_id=-1,
                error_message=f"The {OFFSETS_TOPIC} topic is being created",
            )
        partition = partition_for(request.key, len(partitions))
        info = snapshot.partitions.get((OFFSETS_TOPIC, partition))
        broker = snapshot.brokers.get(info.leader) if info is not None else None
        if broker is None:
            return kafka_pb2.FindCoordinatorResponse(
                error_code=Errors.COORDINATOR_NOT_AVAILABLE.code, node_id=-1, partition=partition,
                error_message=f"{OFFSETS_TOPIC}-{partition} has no leader",
            )
        return kafka_pb2.FindCoordinatorResponse(node_id=broker.broker_id, host=broker.host, port=broker.port,
                                                 partition=partition)

    # -- membership ------------------------------------------------------------------------------

    def JoinGroup(self, request: kafka_pb2.JoinGroupRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.JoinGroupResponse:
        req = JoinGroupRequest(
            group_id=request.group_id, member_id=request.member_id, client_id=request.client_id,
            protocol_type=request.protocol_type,
            protocols=[(p.name, bytes(p.metadata)) for p in request.protocols],
            session_timeout_ms=request.session_timeout_ms, rebalance_timeout_ms=request.rebalance_timeout_ms,
            group_instance_id=request.group_instance_id if request.HasField("group_instance_id") else None,
            client_host=grpc_adapter.client_host(context),
        )
        result = grpc_adapter.wait(self._coordinator.join_group(req), context, None)
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
        req = SyncGroupRequest(
            group_id=request.group_id, generation_id=request.generation_id, member_id=request.member_id,
            assignments={a.member_id: bytes(a.assignment) for a in request.assignments},
            group_instance_id=request.group_instance_id if request.HasField("group_instance_id") else None,
            protocol_type=request.protocol_type or None, protocol_name=request.protocol_name or None,
        )
        result = grpc_adapter.wait(self._coordinator.sync_group(req), context, None)
        if result is None:
            return kafka_pb2.SyncGroupResponse(error_code=Errors.REQUEST_TIMED_OUT.code)
        return kafka_pb2.SyncGroupResponse(
            error_code=result.error.code, protocol_type=result.protocol_type or "",
            protocol_name=result.protocol_name or "", assignment=result.assignment,
        )

    def Heartbeat(self, request: kafka_pb2.HeartbeatRequest, context: grpc.ServicerContext
                  ) -> kafka_pb2.HeartbeatResponse:
        instance = request.group_instance_id if request.HasField("group_instance_id") else None
        future = self._coordinator.heartbeat(request.group_id, request.member_id, request.generation_id, instance)
        return kafka_pb2.HeartbeatResponse(error_code=grpc_adapter.wait(future, context, Errors.REQUEST_TIMED_OUT).code)

    def LeaveGroup(self, request: kafka_pb2.LeaveGroupRequest, context: grpc.ServicerContext
                   ) -> kafka_pb2.LeaveGroupResponse:
        members = [MemberIdentity(m.member_id, m.group_instance_id if m.HasField("group_instance_id") else None)
                   for m in request.members]
        if not members:
            return kafka_pb2.LeaveGroupResponse(error_code=Errors.INVALID_REQUEST.code)
        result = grpc_adapter.wait(self._coordinator.leave_group(request.group_id, members), context, None)
        if result is None:
            return kafka_pb2.LeaveGroupResponse(error_code=Errors.REQUEST_TIMED_OUT.code)
        response = kafka_pb2.LeaveGroupResponse(error_code=result.error.code)
        for member in result.members:
            entry = response.members.add(member_id=member.member_id, error_code=member.error.code)
            if member.group_instance_id is not None:
                entry.group_instance_id = member.group_instance_id
        return response

    # -- offsets ---------------------------------------------------------------------------------

    def OffsetCommit(self, request: kafka_pb2.OffsetCommitRequest, context: grpc.ServicerContext
                     ) -> kafka_pb2.OffsetCommitResponse:
        """KafkaApis first answers UNKNOWN_TOPIC_OR_PARTITION for partitions the cluster does not have."""
        known = self._metadata.snapshot().partitions
        now = int(time.time() * 1000)  # Kafka's commit timestamp is the broker's clock
        errors: dict[TopicPartition, Errors] = {}
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for topic in request.topics:
            for p in topic.partitions:
                tp = (topic.name, p.partition)
                if tp not in known:
                    errors[tp] = Errors.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    epoch = p.committed_leader_epoch if p.committed_leader_epoch >= 0 else None
                    offsets[tp] = OffsetAndMetadata(p.committed_offset, p.committed_metadata, now, epoch)
        if offsets or not errors:
            instance = request.group_instance_id if request.HasField("group_instance_id") else None
            future = self._coordinator.commit_offsets(request.group_id, request.member_id, request.generation_id,
                                                      offsets, instance)
            errors.update(grpc_adapter.wait(future, context, dict.fromkeys(offsets, Errors.REQUEST_TIMED_OUT)))
        response = kafka_pb2.OffsetCommitResponse()
        by_topic: dict[str, kafka_pb2.OffsetCommitTopicResponse] = {}
        for (topic, partition), error in sorted(errors.items()):
            entry = by_topic.get(topic)
            if entry is None:
                entry = by_topic[topic] = response.topics.add(name=topic)
            entry.partitions.add(partition=partition, error_code=error.code)
        return response

    def OffsetFetch(self, request: kafka_pb2.OffsetFetchRequest, context: grpc.ServicerContext
                    ) -> kafka_pb2.OffsetFetchResponse:
        wanted = [(t.name, p) for t in request.topics for p in t.partitions] if request.topics else None
        error, offsets = grpc_adapter.wait(self._coordinator.fetch_offsets(request.group_id, wanted), context,
                               (Errors.REQUEST_TIMED_OUT, {}))
        response = kafka_pb2.OffsetFetchResponse(error_code=error.code)
        if error is not Errors.NONE:
            return response
        by_topic: dict[str, kafka_pb2.OffsetFetchTopicResponse] = {}
        for (topic, partition), data in sorted(offsets.items()):
            entry = by_topic.get(topic)
            if entry is None:
                entry = by_topic[topic] = response.topics.add(name=topic)
            entry.partitions.add(
                partition=partition, committed_offset=data.offset, metadata=data.metadata or "",
                committed_leader_epoch=data.leader_epoch if data.leader_epoch is not None else NO_LEADER_EPOCH,
                error_code=data.error.code,
            )
        return response

    # -- views -----------------------------------------------------------------------------------

    def DescribeGroups(self, request: kafka_pb2.DescribeGroupsRequest, context: grpc.ServicerContext
                       ) -> kafka_pb2.DescribeGroupsResponse:
        described = grpc_adapter.wait(self._coordinator.describe_groups(list(request.groups)), context, [])
        response = kafka_pb2.DescribeGroupsResponse()
        for error, group in described:
            entry = response.groups.add(
                error_code=error.code, group_id=group.group_id, group_state=group.state,
                protocol_type=group.protocol_type, protocol_data=group.protocol_name,
                generation_id=group.generation_id, leader=group.leader_id, coordinator_id=self._broker_id,
            )
            for member in group.members:
                m = entry.members.add(member_id=member.member_id, client_id=member.client_id,
                                      client_host=member.client_host, member_metadata=member.metadata,
                                      member_assignment=member.assignment)
                if member.group_instance_id is not None:
                    m.group_instance_id = member.group_instance_id
        return response

    def ListGroups(self, request: kafka_pb2.ListGroupsRequest, context: grpc.ServicerContext
                   ) -> kafka_pb2.ListGroupsResponse:
        error, groups = grpc_adapter.wait(self._coordinator.list_groups(), context, (Errors.REQUEST_TIMED_OUT, []))
        response = kafka_pb2.ListGroupsResponse(error_code=error.code)
        for group in groups:
            response.groups.add(group_id=group.group_id, protocol_type=group.protocol_type, group_state=group.state)
        return response
