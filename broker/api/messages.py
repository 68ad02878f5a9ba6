"""The requests and answers of the request layer, as plain data named after Kafka's messages.

Each holds what the API means, not how a transport lays it out: partitions are keyed by
TopicPartition (in request order), where Kafka's wire format nests them under their topics.
Per-partition answers reuse the replica manager's and the group coordinator's own results.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.fetch_session import FINAL_EPOCH, INVALID_SESSION_ID, PartitionData
from broker.group.group_coordinator_rules import MemberIdentity, OffsetFetchPartition
from broker.group.group_metadata import GroupSummary
from broker.metadata_cache import BrokerEndpoint, PartitionInfo
from broker.replica_results import FetchResult, ProduceResult
from broker.zk.zk_data import BrokerInfo
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors

# -- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProduceRequest:
    acks: int
    timeout_ms: int
    partitions: dict[TopicPartition, bytes]


@dataclass(frozen=True)
class ProduceResponse:
    partitions: dict[TopicPartition, ProduceResult]


@dataclass(frozen=True)
class FetchRequest:
    """A consumer's (replica_id -1) or a follower's fetch; with a session (KIP-227) when
    session_id or session_epoch say so, `partitions` holds only what changed."""

    replica_id: int
    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    partitions: dict[TopicPartition, PartitionData]
    replica_epoch: int = -1
    session_id: int = INVALID_SESSION_ID
    session_epoch: int = FINAL_EPOCH
    forgotten: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True)
class FetchResponse:
    error: Errors
    session_id: int
    partitions: dict[TopicPartition, FetchResult] = field(default_factory=dict)


@dataclass(frozen=True)
class ListOffsetsPartition:
    current_leader_epoch: int
    timestamp: int


@dataclass(frozen=True)
class ListOffsetsRequest:
    partitions: dict[TopicPartition, ListOffsetsPartition]
    replica_id: int = -1


@dataclass(frozen=True)
class ListedOffset:
    error: Errors
    offset: int = -1
    leader_epoch: int = -1
    timestamp: int = -1
    message: str = ""


@dataclass(frozen=True)
class ListOffsetsResponse:
    partitions: dict[TopicPartition, ListedOffset]


@dataclass(frozen=True)
class OffsetForLeaderEpochPartition:
    current_leader_epoch: int
    leader_epoch: int


@dataclass(frozen=True)
class OffsetForLeaderEpochRequest:
    partitions: dict[TopicPartition, OffsetForLeaderEpochPartition]


@dataclass(frozen=True)
class EpochEndOffset:
    error: Errors
    leader_epoch: int
    end_offset: int


@dataclass(frozen=True)
class OffsetForLeaderEpochResponse:
    partitions: dict[TopicPartition, EpochEndOffset]


@dataclass(frozen=True)
class InitProducerIdRequest:
    transactional_id: str | None = None  # None: an idempotent producer


@dataclass(frozen=True)
class InitProducerIdResponse:
    error: Errors
    producer_id: int = -1
    producer_epoch: int = -1
    message: str = ""


@dataclass(frozen=True)
class DescribeReplicasRequest:
    partitions: tuple[TopicPartition, ...] | None = None  # None: every partition this broker has


@dataclass(frozen=True)
class ReplicaState:
    broker_id: int
    log_end_offset: int
    last_caught_up_time_ms: int | None = None  # None for the leader itself


@dataclass(frozen=True)
class PartitionReplicas:
    tp: TopicPartition
    error: Errors
    leader_epoch: int = -1
    high_watermark: int = -1
    log_start_offset: int = -1
    replicas: tuple[ReplicaState, ...] = ()


@dataclass(frozen=True)
class DescribeReplicasResponse:
    responding_broker_id: int
    partitions: tuple[PartitionReplicas, ...]


# -- the controller's requests to brokers ----------------------------------------------------------


@dataclass(frozen=True)
class LeaderAndIsrRequest:
    controller_id: int
    controller_epoch: int
    broker_epoch: int
    partition_states: list[PartitionInfo]


@dataclass(frozen=True)
class UpdateMetadataRequest:
    controller_id: int
    controller_epoch: int
    broker_epoch: int
    live_brokers: list[BrokerEndpoint]
    partition_states: list[PartitionInfo]
    deleted_partitions: list[TopicPartition]


@dataclass(frozen=True)
class StopReplicaPartition:
    tp: TopicPartition
    leader_epoch: int
    delete_partition: bool


@dataclass(frozen=True)
class StopReplicaRequest:
    controller_id: int
    controller_epoch: int
    broker_epoch: int
    partitions: list[StopReplicaPartition]


@dataclass(frozen=True)
class ControlledShutdownRequest:
    broker_id: int
    broker_epoch: int


@dataclass(frozen=True)
class ControllerRequestResponse:
    """The answer to LeaderAndIsr, UpdateMetadata and StopReplica: the request's error and each
    partition's."""

    error: Errors
    partition_errors: dict[TopicPartition, Errors] = field(default_factory=dict)


@dataclass(frozen=True)
class ControlledShutdownResponse:
    error: Errors
    message: str = ""
    remaining_partitions: tuple[TopicPartition, ...] = ()


# -- group coordinator lookup, membership and offsets ------------------------------------------------


@dataclass(frozen=True)
class FindCoordinatorRequest:
    key: str  # the group id


@dataclass(frozen=True)
class FindCoordinatorResponse:
    error: Errors
    message: str = ""
    node_id: int = -1
    host: str = ""
    port: int = 0
    partition: int = -1  # the group's __consumer_offsets partition, once known


@dataclass(frozen=True)
class HeartbeatRequest:
    group_id: str
    member_id: str
    generation_id: int
    group_instance_id: str | None = None


@dataclass(frozen=True)
class HeartbeatResponse:
    error: Errors


@dataclass(frozen=True)
class LeaveGroupRequest:
    group_id: str
    members: tuple[MemberIdentity, ...]


@dataclass(frozen=True)
class CommittedOffset:
    offset: int
    metadata: str = ""
    leader_epoch: int | None = None


@dataclass(frozen=True)
class OffsetCommitRequest:
    group_id: str
    member_id: str
    generation_id: int
    offsets: dict[TopicPartition, CommittedOffset]
    group_instance_id: str | None = None


@dataclass(frozen=True)
class OffsetCommitResponse:
    errors: dict[TopicPartition, Errors]  # sorted by partition


@dataclass(frozen=True)
class OffsetFetchRequest:
    group_id: str
    partitions: tuple[TopicPartition, ...] | None = None  # None: every partition the group committed


@dataclass(frozen=True)
class OffsetFetchResponse:
    error: Errors
    offsets: dict[TopicPartition, OffsetFetchPartition] = field(default_factory=dict)  # sorted by partition


@dataclass(frozen=True)
class DescribeGroupsRequest:
    groups: tuple[str, ...]


@dataclass(frozen=True)
class DescribeGroupsResponse:
    coordinator_id: int
    groups: list[tuple[Errors, GroupSummary]]


@dataclass(frozen=True)
class ListGroupsRequest:
    pass


@dataclass(frozen=True)
class ListGroupsResponse:
    error: Errors
    groups: list[GroupSummary] = field(default_factory=list)


# -- the cluster and its topics ------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataRequest:
    topics: tuple[str, ...] | None = None  # None: every topic


@dataclass(frozen=True)
class PartitionMetadata:
    error: Errors
    state: PartitionInfo


@dataclass(frozen=True)
class TopicMetadata:
    name: str
    error: Errors
    is_internal: bool = False
    configs: dict[str, str] = field(default_factory=dict)
    partitions: tuple[PartitionMetadata, ...] = ()


@dataclass(frozen=True)
class MetadataResponse:
    cluster_id: str
    controller_id: int
    responding_broker_id: int
    brokers: tuple[BrokerEndpoint, ...]
    topics: tuple[TopicMetadata, ...]


@dataclass(frozen=True)
class CreatableTopic:
    name: str
    num_partitions: int = -1  # -1: num.partitions
    replication_factor: int = -1  # -1: default.replication.factor
    configs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateTopicsRequest:
    topics: tuple[CreatableTopic, ...]
    timeout_ms: int = 0  # 0: the default
    validate_only: bool = False


@dataclass(frozen=True)
class CreatableTopicResult:
    name: str
    error: Errors
    message: str = ""
    num_partitions: int = -1
    replication_factor: int = -1


@dataclass(frozen=True)
class CreateTopicsResponse:
    topics: tuple[CreatableTopicResult, ...]


@dataclass(frozen=True)
class DeleteTopicsRequest:
    topic_names: tuple[str, ...]
    timeout_ms: int = 0


@dataclass(frozen=True)
class DeletableTopicResult:
    name: str
    error: Errors
    message: str = ""


@dataclass(frozen=True)
class DeleteTopicsResponse:
    results: tuple[DeletableTopicResult, ...]


@dataclass(frozen=True)
class ElectLeadersRequest:
    election_type: str  # "PREFERRED" or "UNCLEAN", Kafka's ElectionType
    partitions: tuple[TopicPartition, ...] | None = None  # None: every partition
    timeout_ms: int = 0


@dataclass(frozen=True)
class ElectLeadersResponse:
    error: Errors
    results: dict[TopicPartition, Errors] = field(default_factory=dict)  # sorted by partition


@dataclass(frozen=True)
class DescribeClusterRequest:
    pass


@dataclass(frozen=True)
class DescribeClusterResponse:
    error: Errors
    responding_broker_id: int
    message: str = ""
    cluster_id: str = ""
    controller_id: int = -1
    controller_epoch: int = -1
    brokers: tuple[BrokerInfo, ...] = ()
    listener_name: str = "PLAINTEXT"  # whose endpoints to give as each broker's host and port


@dataclass(frozen=True)
class BrokerMetricsRequest:
    pass


@dataclass(frozen=True)
class BrokerMetricsResponse:
    """Each gauge and counter by its name, and the latest truncations a follower reported."""

    values: dict[str, int]
    truncations: tuple[str, ...] = ()


# -- ACLs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AclBindingCodes:
    """One ACL, or a filter of ACLs, as the wire carries it: Kafka's codes (broker/authorizer/
    acl.py) for the resource type, pattern type, operation and permission; in a filter, None
    names and 1 (ANY) codes match anything. The request layer validates them."""

    resource_type: int
    resource_name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission_type: int


@dataclass(frozen=True)
class CreateAclsRequest:
    creations: tuple[AclBindingCodes, ...]


@dataclass(frozen=True)
class AclResult:
    error: Errors
    message: str = ""


@dataclass(frozen=True)
class CreateAclsResponse:
    results: tuple[AclResult, ...]  # one per creation, in order


@dataclass(frozen=True)
class DescribeAclsRequest:
    filter: AclBindingCodes


@dataclass(frozen=True)
class DescribeAclsResponse:
    error: Errors
    message: str = ""
    acls: tuple[AclBindingCodes, ...] = ()


@dataclass(frozen=True)
class DeleteAclsRequest:
    filters: tuple[AclBindingCodes, ...]


@dataclass(frozen=True)
class DeleteAclsFilterResult:
    error: Errors
    message: str = ""
    deleted: tuple[AclBindingCodes, ...] = ()


@dataclass(frozen=True)
class DeleteAclsResponse:
    results: tuple[DeleteAclsFilterResult, ...]  # one per filter, in order
