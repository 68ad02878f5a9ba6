"""Kafka's error codes (clients/src/main/java/org/apache/kafka/common/protocol/Errors.java)."""

from __future__ import annotations

from enum import Enum


class Errors(Enum):
    UNKNOWN_SERVER_ERROR = (-1, "The server experienced an unexpected error when processing the request.")
    NONE = (0, "")
    OFFSET_OUT_OF_RANGE = (1, "The requested offset is not within the range of offsets maintained by the server.")
    CORRUPT_MESSAGE = (2, "This message has failed its CRC checksum, exceeds the valid size, or is otherwise corrupt.")
    UNKNOWN_TOPIC_OR_PARTITION = (3, "This server does not host this topic-partition.")
    LEADER_NOT_AVAILABLE = (5, "There is no leader for this topic-partition as we are in the middle of a leadership election.")
    NOT_LEADER_OR_FOLLOWER = (6, "For requests intended only for the leader, this error indicates that the broker is not the current leader.")
    REQUEST_TIMED_OUT = (7, "The request timed out.")
    BROKER_NOT_AVAILABLE = (8, "The broker is not available.")
    MESSAGE_TOO_LARGE = (10, "The request included a message larger than the max message size the server will accept.")
    STALE_CONTROLLER_EPOCH = (11, "The controller moved to another broker.")
    OFFSET_METADATA_TOO_LARGE = (12, "The metadata field of the offset request was too large.")
    COORDINATOR_LOAD_IN_PROGRESS = (14, "The coordinator is loading and hence can't process requests.")
    COORDINATOR_NOT_AVAILABLE = (15, "The coordinator is not available.")
    NOT_COORDINATOR = (16, "This is not the correct coordinator.")
    INVALID_TOPIC_EXCEPTION = (17, "The request attempted to perform an operation on an invalid topic.")
    NOT_ENOUGH_REPLICAS = (19, "Messages are rejected since there are fewer in-sync replicas than required.")
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = (20, "Messages are written to the log, but to fewer in-sync replicas than required.")
    INVALID_REQUIRED_ACKS = (21, "Produce request specified an invalid value for required acks.")
    ILLEGAL_GENERATION = (22, "Specified group generation id is not valid.")
    INCONSISTENT_GROUP_PROTOCOL = (23, "The group member's supported protocols are incompatible with those of existing members.")
    INVALID_GROUP_ID = (24, "The configured groupId is invalid.")
    UNKNOWN_MEMBER_ID = (25, "The coordinator is not aware of this member.")
    INVALID_SESSION_TIMEOUT = (26, "The session timeout is not within the range allowed by the broker.")
    REBALANCE_IN_PROGRESS = (27, "The group is rebalancing, so a rejoin is needed.")
    INVALID_COMMIT_OFFSET_SIZE = (28, "The committing offset data size is not valid.")
    TOPIC_AUTHORIZATION_FAILED = (29, "Topic authorization failed.")
    GROUP_AUTHORIZATION_FAILED = (30, "Group authorization failed.")
    CLUSTER_AUTHORIZATION_FAILED = (31, "Cluster authorization failed.")
    TOPIC_ALREADY_EXISTS = (36, "Topic with this name already exists.")
    INVALID_PARTITIONS = (37, "Number of partitions is below 1.")
    INVALID_REPLICATION_FACTOR = (38, "Replication factor is below 1 or larger than the number of available brokers.")
    INVALID_CONFIG = (40, "Configuration is invalid.")
    NOT_CONTROLLER = (41, "This is not the correct controller for this cluster.")
    INVALID_REQUEST = (42, "This most likely occurs because of a request being malformed by the client library.")
    SECURITY_DISABLED = (54, "Security features are disabled.")
    GROUP_ID_NOT_FOUND = (69, "The group id does not exist.")
    FETCH_SESSION_ID_NOT_FOUND = (70, "The fetch session ID was not found.")
    INVALID_FETCH_SESSION_EPOCH = (71, "The fetch session epoch is invalid.")
    OUT_OF_ORDER_SEQUENCE_NUMBER = (45, "The broker received an out of order sequence number.")
    INVALID_PRODUCER_EPOCH = (47, "Producer attempted to produce with an old epoch.")
    UNKNOWN_PRODUCER_ID = (59, "This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question.")
    FENCED_LEADER_EPOCH = (74, "The leader epoch in the request is older than the epoch on the broker.")
    STALE_BROKER_EPOCH = (77, "Broker epoch has changed.")
    MEMBER_ID_REQUIRED = (79, "The group member needs to have a valid member id before actually entering a consumer group.")
    PREFERRED_LEADER_NOT_AVAILABLE = (80, "The preferred leader was not available.")
    GROUP_MAX_SIZE_REACHED = (81, "The consumer group has reached its max size.")
    FENCED_INSTANCE_ID = (82, "The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.")
    UNKNOWN_LEADER_EPOCH = (75, "The leader epoch in the request is newer than the epoch on the broker.")
    UNSUPPORTED_COMPRESSION_TYPE = (76, "The requesting client does not support the compression type of given partition.")
    ELECTION_NOT_NEEDED = (84, "Leader election not needed for topic partition.")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]

    @classmethod
    def for_code(cls, code: int) -> Errors:
        for error in cls:
            if error.code == code:
                return error
        return cls.UNKNOWN_SERVER_ERROR
