"""One member of a classic consumer group (Kafka's MemberMetadata).

Kafka parks a member's JoinGroup and SyncGroup as callbacks on the member; here they are two flags,
``awaiting_join`` and ``awaiting_sync``, and the group coordinator keeps the parked requests by member id.
Kafka's DelayedHeartbeat becomes ``heartbeat_deadline_ms``, which the coordinator rules poll.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from minikafka_protocol import group as group_protocol

# (protocol name, protocol metadata), in the member's order of preference.
Protocol = tuple[str, bytes]


@dataclass
class MemberMetadata:
    """Kafka's MemberMetadata: who the member is, what it supports, and where it is in the rebalance."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    supported_protocols: list[Protocol]
    assignment: bytes = b""
    # Kafka's awaitingJoinCallback / awaitingSyncCallback: a JoinGroup or SyncGroup of this member is parked.
    awaiting_join: bool = False
    awaiting_sync: bool = False
    # Kafka's isNew: joined but not yet through a completed join phase; its liveness is the join timeout.
    is_new: bool = False
    last_heartbeat_ms: int = 0
    # When the member's current heartbeat expectation runs out; None while nothing is scheduled.
    heartbeat_deadline_ms: int | None = field(default=None)

    @property
    def is_static_member(self) -> bool:
        return self.group_instance_id is not None

    @property
    def protocols(self) -> set[str]:
        """Kafka's MemberMetadata.plainProtocolSet."""
        return {name for name, _ in self.supported_protocols}

    def metadata(self, protocol: str) -> bytes:
        """The member's metadata (for a consumer, its subscription) for ``protocol``."""
        for name, metadata in self.supported_protocols:
            if name == protocol:
                return metadata
        raise ValueError(f"Member {self.member_id} does not support protocol {protocol}")

    def matches(self, protocols: Sequence[Protocol]) -> bool:
        """Same protocols, same order, same metadata bytes: a rejoin that changes nothing."""
        return [(n, bytes(m)) for n, m in protocols] == [(n, bytes(m)) for n, m in self.supported_protocols]

    def vote(self, candidates: Iterable[str]) -> str:
        """The member's most preferred protocol among ``candidates``."""
        try:
            return group_protocol.vote([name for name, _ in self.supported_protocols], candidates)
        except ValueError:
            raise ValueError(f"Member {self.member_id} does not support any of the candidate protocols") from None

    @property
    def has_satisfied_heartbeat(self) -> bool:
        """Kafka's hasSatisfiedHeartbeat at the moment the expectation expires (no heartbeat since).

        A new member must finish its first join in time; a member parked in JoinGroup or SyncGroup is
        alive by definition (the coordinator holds its request); anyone else has missed its heartbeat."""
        if self.is_new:
            return False
        return self.awaiting_join or self.awaiting_sync

    def schedule_heartbeat(self, now_ms: int, timeout_ms: int) -> None:
        """Kafka's completeAndScheduleNextExpiration: the member is alive now, and must be again within
        ``timeout_ms``."""
        self.last_heartbeat_ms = now_ms
        self.heartbeat_deadline_ms = now_ms + timeout_ms
