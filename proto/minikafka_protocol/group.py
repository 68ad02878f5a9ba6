"""The group protocol's constants and rules that the coordinator and its members must agree on:
where a group's coordinator is, the ids of a member that has none yet, and the protocol vote."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from minikafka_protocol.java import abs_java, hash_map_order, java_string_hash

OFFSETS_TOPIC = "__consumer_offsets"  # the group coordinators' topic: group metadata and committed offsets
DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS = 50  # offsets.topic.num.partitions
UNKNOWN_MEMBER_ID = ""  # JoinGroupRequest.UNKNOWN_MEMBER_ID: a first join
NO_GENERATION = -1
CONSUMER_PROTOCOL_TYPE = "consumer"  # ConsumerProtocol.PROTOCOL_TYPE, the JoinGroup protocol type


class GroupApi(StrEnum):
    FIND_COORDINATOR = "FindCoordinator"
    JOIN_GROUP = "JoinGroup"
    SYNC_GROUP = "SyncGroup"
    HEARTBEAT = "Heartbeat"
    LEAVE_GROUP = "LeaveGroup"
    OFFSET_COMMIT = "OffsetCommit"
    OFFSET_FETCH = "OffsetFetch"
    DESCRIBE_GROUPS = "DescribeGroups"
    DELETE_GROUPS = "DeleteGroups"


@dataclass(frozen=True)
class JoinGroupResponseMember:
    """One member of the leader's JoinGroup answer, with its metadata for the chosen protocol:
    what the coordinator sends and the leader's assignor reads."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


def partition_for(group_id: str, num_partitions: int = DEFAULT_OFFSETS_TOPIC_NUM_PARTITIONS) -> int:
    """Which `__consumer_offsets` partition holds a group (Kafka's GroupMetadataManager.partitionFor):
    ``Utils.abs(groupId.hashCode) % offsets.topic.num.partitions``. Its leader is the group's
    coordinator, so every broker must agree on this number with Kafka's clients and tools: it is
    Java's String.hashCode exactly, not Python's hash."""
    if num_partitions <= 0:
        raise ValueError(f"offsets.topic.num.partitions must be positive, got {num_partitions}")
    return abs_java(java_string_hash(group_id)) % num_partitions


def vote(preferences: Sequence[str], candidates: Iterable[str]) -> str:
    """A member's vote (MemberMetadata.vote): its most preferred protocol among `candidates`."""
    candidate_set = set(candidates)
    for protocol in preferences:
        if protocol in candidate_set:
            return protocol
    raise ValueError("the member supports none of the candidate protocols")


def select_protocol(member_protocols: Iterable[Sequence[str]]) -> str:
    """The coordinator's vote (ClassicGroup.selectProtocol): among the protocols every member
    supports, each member votes for the first in its order of preference; most votes wins. Kafka
    counts the votes in a java.util.HashMap and takes the first maximum in its iteration order,
    so a tie goes to the first in that order of the protocol names, not to the first voted for."""
    preferences = [list(protocols) for protocols in member_protocols]
    if not preferences:
        raise ValueError("cannot select a protocol for an empty group")
    candidates = set(preferences[0]).intersection(*preferences[1:])
    if not candidates:
        raise ValueError("no protocol is supported by all members (INCONSISTENT_GROUP_PROTOCOL)")
    votes: dict[str, int] = {}
    for protocols in preferences:
        chosen = vote(protocols, candidates)
        votes[chosen] = votes.get(chosen, 0) + 1
    best = max(votes.values())
    return next(protocol for protocol in hash_map_order(votes, java_string_hash) if votes[protocol] == best)
