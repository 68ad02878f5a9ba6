"""A classic consumer group and its state machine (Kafka's GroupMetadata).

States and their legal previous states are a table, as in Kafka and h11; an illegal move raises
IllegalGroupStateChange with Kafka's assertValidTransition message. The group also carries the
coordinator's timers as plain deadlines (Kafka keeps them in purgatories): the pending join
(DelayedJoin / InitialDelayedJoin), the pending sync (DelayedSync) and the pending members' expiry.
Members are kept in insertion order, so "the first member" and "another member" are deterministic
where Kafka's HashMap order is arbitrary.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from broker.group.member_metadata import MemberMetadata, Protocol
from minikafka_protocol import group as group_protocol
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.group import JoinGroupResponseMember


class GroupState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"

    def __str__(self) -> str:
        return self.value


_S = GroupState
VALID_PREVIOUS_STATES: dict[GroupState, frozenset[GroupState]] = {
    # A join from a new member, a changed member, the leader, a leave or a failure starts a rebalance.
    _S.PREPARING_REBALANCE: frozenset({_S.STABLE, _S.COMPLETING_REBALANCE, _S.EMPTY}),
    # The join phase ended with members: waiting for the leader's assignment.
    _S.COMPLETING_REBALANCE: frozenset({_S.PREPARING_REBALANCE}),
    # The leader's assignment is stored.
    _S.STABLE: frozenset({_S.COMPLETING_REBALANCE}),
    # The join phase ended with no member left.
    _S.EMPTY: frozenset({_S.PREPARING_REBALANCE}),
    # Unloaded (the offsets partition moved) or deleted; Dead -> Dead is allowed, as in Kafka.
    _S.DEAD: frozenset({_S.STABLE, _S.PREPARING_REBALANCE, _S.COMPLETING_REBALANCE, _S.EMPTY, _S.DEAD}),
}
del _S


class IllegalGroupStateChange(Exception):
    """A transition the table forbids (Kafka throws IllegalStateException from assertValidTransition)."""

    def __init__(self, message: str, current: GroupState, target: GroupState):
        super().__init__(message)
        self.current = current
        self.target = target


def check_group_transition(group_id: str, current: GroupState, target: GroupState) -> None:
    valid = VALID_PREVIOUS_STATES[target]
    if current not in valid:
        listed = ",".join(str(s) for s in GroupState if s in valid)
        raise IllegalGroupStateChange(
            f"Group {group_id} should be in the {listed} states before moving to {target} state. "
            f"Instead it is in {current} state",
            current,
            target,
        )


@dataclass(frozen=True)
class OffsetAndMetadata:
    """Kafka's OffsetAndMetadata: one committed offset."""

    offset: int
    metadata: str = ""
    commit_timestamp_ms: int = -1
    leader_epoch: int | None = None
    # Only clients before KIP-211 set a per-offset expiry; it forces value version 1 in the log.
    expire_timestamp_ms: int | None = None


@dataclass(frozen=True)
class JoinDeadline:
    """The pending end of the join phase (Kafka's DelayedJoin, or InitialDelayedJoin when ``initial``).

    An initial delay is never completed early; when it expires and members arrived meanwhile it is
    extended by ``min(configured_delay_ms, remaining_ms)``, until the rebalance timeout is used up."""

    deadline_ms: int
    initial: bool = False
    configured_delay_ms: int = 0
    delay_ms: int = 0
    remaining_ms: int = 0


@dataclass(frozen=True)
class MemberSnapshot:
    """One member as the group's record stores it: its metadata for the group's protocol and its assignment."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupSnapshot:
    """What a group record in ``__consumer_offsets`` holds (Kafka's GroupMetadataValue), taken when the
    coordinator decides to store the group: the group may move on before the record is written."""

    group_id: str
    protocol_type: str | None
    generation_id: int
    protocol_name: str | None
    leader_id: str | None
    current_state_timestamp_ms: int | None
    members: tuple[MemberSnapshot, ...]

    @property
    def assignment(self) -> dict[str, bytes]:
        return {m.member_id: m.assignment for m in self.members}


@dataclass(frozen=True)
class MemberSummary:
    """Kafka's MemberSummary: one member as DescribeGroups shows it."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupSummary:
    """Kafka's GroupSummary, plus the generation and the leader, which Kafka does not describe."""

    group_id: str
    state: str
    protocol_type: str
    protocol_name: str
    generation_id: int
    leader_id: str
    members: tuple[MemberSummary, ...]

    @classmethod
    def dead(cls, group_id: str) -> GroupSummary:
        """Kafka's GroupCoordinator.DeadGroup: a group this coordinator does not have."""
        return cls(group_id, str(GroupState.DEAD), "", "", -1, "", ())


@dataclass
class GroupMetadata:
    """Kafka's GroupMetadata: membership, the generation, the leader, the protocol and committed offsets."""

    group_id: str
    state: GroupState = GroupState.EMPTY
    current_state_timestamp_ms: int | None = None
    protocol_type: str | None = None
    protocol_name: str | None = None
    generation_id: int = 0
    leader_id: str | None = None
    members: dict[str, MemberMetadata] = field(default_factory=dict)
    # group.instance.id -> member id of the static members (KIP-345).
    static_members: dict[str, str] = field(default_factory=dict)
    # Member ids handed out with MEMBER_ID_REQUIRED (KIP-394) -> when they expire if they never join.
    pending_members: dict[str, int] = field(default_factory=dict)
    # Members of the current generation that have not sent their SyncGroup yet.
    pending_sync_members: set[str] = field(default_factory=set)
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    # Set when a member joins during the first rebalance, so the initial delay is extended.
    new_member_added: bool = False
    join_deadline: JoinDeadline | None = None
    sync_deadline_ms: int | None = None

    # -- state ---------------------------------------------------------------------------------

    def is_(self, state: GroupState) -> bool:
        """Kafka's ``is`` (a keyword in Python)."""
        return self.state == state

    def transition_to(self, target: GroupState, now_ms: int) -> None:
        check_group_transition(self.group_id, self.state, target)
        self.state = target
        self.current_state_timestamp_ms = now_ms

    @property
    def can_rebalance(self) -> bool:
        return self.state in VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    # -- members -------------------------------------------------------------------------------

    def has(self, member_id: str) -> bool:
        return member_id in self.members

    def get(self, member_id: str) -> MemberMetadata:
        return self.members[member_id]

    @property
    def size(self) -> int:
        return len(self.members)

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id is not None and self.leader_id == member_id

    def add_member(self, member: MemberMetadata) -> None:
        """Kafka's GroupMetadata.add: the first member added becomes the leader."""
        if member.group_instance_id is not None and member.group_instance_id in self.static_members:
            raise ValueError(
                f"Static member with groupInstanceId={member.group_instance_id} cannot be added to group "
                f"{self.group_id} since it is already a member"
            )
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.protocol_type != member.protocol_type:
            raise ValueError(
                f"Member protocol type {member.protocol_type} differs from the group's {self.protocol_type}"
            )
        if not self.supports_protocols(member.protocol_type, member.protocols):
            raise ValueError(f"Member {member.member_id} supports none of the group's protocols")
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.pending_members.pop(member.member_id, None)

    def remove_member(self, member_id: str) -> MemberMetadata | None:
        """Kafka's GroupMetadata.remove: a leaving leader hands over to the oldest remaining member."""
        member = self.members.pop(member_id, None)
        if member is not None and member.group_instance_id is not None:
            self.static_members.pop(member.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_members.pop(member_id, None)
        self.pending_sync_members.discard(member_id)
        return member

    def update_member(self, member: MemberMetadata, protocols: Sequence[Protocol], rebalance_timeout_ms: int,
                      session_timeout_ms: int, awaiting_join: bool) -> None:
        """Kafka's updateMember: new protocols and timeouts, and whether its JoinGroup is now parked."""
        member.supported_protocols = list(protocols)
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        member.awaiting_join = awaiting_join

    def replace_static_member(self, group_instance_id: str, old_member_id: str, new_member_id: str) -> MemberMetadata:
        """KIP-345: the static member keeps everything (its place, leadership, assignment) but its member id.

        Whatever the old member id had parked is fenced: the caller answers it with FENCED_INSTANCE_ID
        (checking ``awaiting_join`` / ``awaiting_sync`` first); here both flags are cleared."""
        if old_member_id not in self.members:
            raise ValueError(f"Cannot replace non-existing member id {old_member_id}")
        member = self.members[old_member_id]
        member.awaiting_join = False
        member.awaiting_sync = False
        member.member_id = new_member_id
        # Rebuilt rather than popped and re-added, so the member keeps its place in the join order.
        self.members = {(new_member_id if k == old_member_id else k): v for k, v in self.members.items()}
        if self.is_leader(old_member_id):
            self.leader_id = new_member_id
        if old_member_id in self.pending_sync_members:
            self.pending_sync_members.discard(old_member_id)
            self.pending_sync_members.add(new_member_id)
        self.static_members[group_instance_id] = new_member_id
        return member

    def has_static_member(self, group_instance_id: str) -> bool:
        return group_instance_id in self.static_members

    def current_static_member_id(self, group_instance_id: str) -> str | None:
        return self.static_members.get(group_instance_id)

    def is_pending_member(self, member_id: str) -> bool:
        return member_id in self.pending_members

    def add_pending_member(self, member_id: str, deadline_ms: int) -> None:
        if self.has(member_id):
            raise ValueError(f"Attempt to add pending member {member_id} which is already a stable member of the group")
        self.pending_members[member_id] = deadline_ms

    @property
    def num_awaiting_join(self) -> int:
        return sum(1 for m in self.members.values() if m.awaiting_join)

    def has_all_members_joined(self) -> bool:
        """Every known member has a JoinGroup parked, and no handed-out member id is still to join."""
        return all(m.awaiting_join for m in self.members.values()) and not self.pending_members

    def not_yet_rejoined_members(self) -> dict[str, MemberMetadata]:
        return {mid: m for mid, m in self.members.items() if not m.awaiting_join}

    def maybe_elect_new_joined_leader(self) -> bool:
        """If the leader did not rejoin, make the first member that did the leader.

        False when the group has no leader (no members) or nobody rejoined."""
        if self.leader_id is None:
            return False
        if self.get(self.leader_id).awaiting_join:
            return True
        for member_id, member in self.members.items():
            if member.awaiting_join:
                self.leader_id = member_id
                return True
        return False

    def max_rebalance_timeout(self) -> int:
        """Kafka's rebalanceTimeoutMs: the join phase waits for the slowest member's rebalance timeout."""
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    # -- protocol ------------------------------------------------------------------------------

    def candidate_protocols(self) -> set[str]:
        """The protocols every member supports."""
        sets = [m.protocols for m in self.members.values()]
        return set.intersection(*sets) if sets else set()

    def supports_protocols(self, member_protocol_type: str, member_protocols: Iterable[str]) -> bool:
        """Could a member with these protocols join? An Empty group takes any non-empty offer."""
        protocols = set(member_protocols)
        if self.is_(GroupState.EMPTY):
            return bool(member_protocol_type) and bool(protocols)
        if self.protocol_type != member_protocol_type:
            return False
        if not self.members:
            return bool(protocols)
        return bool(protocols & self.candidate_protocols())

    def select_protocol(self) -> str:
        """Kafka's vote (ClassicGroup.selectProtocol), the one the clients' tests run against too."""
        if not self.members:
            raise ValueError(f"Cannot select protocol for empty group {self.group_id}")
        return group_protocol.select_protocol(
            [name for name, _ in m.supported_protocols] for m in self.members.values()
        )

    def init_next_generation(self, now_ms: int) -> None:
        """End of the join phase: generation + 1 and the protocol chosen (CompletingRebalance), or
        Empty with no protocol when nobody is left."""
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def current_member_metadata(self) -> list[JoinGroupResponseMember]:
        """What the leader's JoinGroup response carries: every member's metadata for the chosen protocol."""
        if self.state in (GroupState.DEAD, GroupState.PREPARING_REBALANCE) or self.protocol_name is None:
            raise ValueError(f"Cannot obtain member metadata for group {self.group_id} in state {self.state}")
        return [
            JoinGroupResponseMember(mid, m.group_instance_id, m.metadata(self.protocol_name))
            for mid, m in self.members.items()
        ]

    # -- views ---------------------------------------------------------------------------------

    def snapshot(self, assignment: dict[str, bytes]) -> GroupSnapshot:
        """The group with ``assignment`` as its record will store it (the checks of Kafka's
        groupMetadataValue: a group with members has a protocol, and every member an assignment)."""
        if self.members and self.protocol_name is None:
            raise ValueError("Attempted to write non-empty group metadata with no defined protocol.")
        members = []
        for member_id, member in self.members.items():
            if member_id not in assignment:
                raise ValueError(f"Attempted to write member {member_id} of group {self.group_id} with no assignment.")
            assert self.protocol_name is not None
            members.append(MemberSnapshot(
                member_id, member.group_instance_id, member.client_id, member.client_host,
                member.rebalance_timeout_ms, member.session_timeout_ms, member.metadata(self.protocol_name),
                assignment[member_id],
            ))
        return GroupSnapshot(self.group_id, self.protocol_type, self.generation_id, self.protocol_name,
                             self.leader_id, self.current_state_timestamp_ms, tuple(members))

    def summary(self) -> GroupSummary:
        """Kafka's GroupMetadata.summary: member metadata and assignments only when Stable."""
        stable = self.is_(GroupState.STABLE)
        protocol = (self.protocol_name or "") if stable else ""
        members = tuple(
            MemberSummary(
                m.member_id, m.group_instance_id, m.client_id, m.client_host,
                m.metadata(protocol) if stable and protocol else b"", m.assignment if stable else b"",
            )
            for m in self.members.values()
        )
        return GroupSummary(self.group_id, str(self.state), self.protocol_type or "", protocol,
                            self.generation_id, self.leader_id or "", members)

    # -- offsets -------------------------------------------------------------------------------

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Offsets whose records are in the offsets log (Kafka's onOffsetCommitAppend)."""
        self.offsets.update(offsets)

    def remove_offsets(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, OffsetAndMetadata]:
        removed: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp in partitions:
            offset = self.offsets.pop(tp, None)
            if offset is not None:
                removed[tp] = offset
        return removed

    def offset(self, tp: TopicPartition) -> OffsetAndMetadata | None:
        return self.offsets.get(tp)

    # -- loading -------------------------------------------------------------------------------

    @classmethod
    def load_group(cls, group_id: str, generation_id: int, protocol_type: str, protocol_name: str | None,
                   leader_id: str | None, current_state_timestamp_ms: int | None,
                   members: Iterable[MemberMetadata]) -> GroupMetadata:
        """Kafka's GroupMetadata.loadGroup: a group read back from the offsets log is Stable, or Empty
        when its last record had no members."""
        members = list(members)
        group = cls(
            group_id,
            state=GroupState.STABLE if members else GroupState.EMPTY,
            current_state_timestamp_ms=current_state_timestamp_ms,
            protocol_type=protocol_type or None,
            protocol_name=protocol_name,
            generation_id=generation_id,
            leader_id=leader_id,
        )
        for member in members:
            group.add_member(member)
        return group
