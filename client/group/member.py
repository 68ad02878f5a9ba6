"""The member as it knows itself: AbstractCoordinator's Generation and MemberState, and
`GroupState`, the whole picture for people and tests (`KafkaConsumer.group_state()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from client.group.wire import Coordinator
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.group import NO_GENERATION, UNKNOWN_MEMBER_ID


@dataclass(frozen=True)
class Generation:
    """AbstractCoordinator.Generation: what the last successful JoinGroup said."""

    generation_id: int = NO_GENERATION
    member_id: str = UNKNOWN_MEMBER_ID
    protocol: str | None = None

    @property
    def lost(self) -> bool:
        """Reset by an error: the partitions owned under it may already be someone else's."""
        return self.generation_id == NO_GENERATION or self.member_id == UNKNOWN_MEMBER_ID


class MemberState(Enum):
    """AbstractCoordinator.MemberState."""

    UNJOINED = "UNJOINED"  # no generation: the next poll() joins
    PREPARING_REBALANCE = "PREPARING_REBALANCE"  # JoinGroup sent
    COMPLETING_REBALANCE = "COMPLETING_REBALANCE"  # JoinGroup answered, SyncGroup under way
    STABLE = "STABLE"  # assignment received


@dataclass(frozen=True)
class GroupState:
    """The member as it sees itself, for people and tests (`KafkaConsumer.group_state()`)."""

    group_id: str
    group_instance_id: str | None
    client_id: str
    state: MemberState
    coordinator: Coordinator | None
    member_id: str
    generation_id: int
    leader_id: str
    is_leader: bool
    protocol: str | None  # the assignor the group voted for
    subscription: tuple[str, ...]
    assignment: tuple[TopicPartition, ...]
    rejoin_reason: str | None

