"""The rules of the group coordinator for classic groups (Kafka's GroupCoordinator, 2.8-3.x), pure.

``GroupCoordinatorRules`` holds the groups of the offsets partitions this broker leads and is fed
requests and the time; it answers with an ``Outcome``: the immediate answer, or the member id under
which the request is parked, plus everything else that became due: answers to parked JoinGroups and
SyncGroups, and the stores to make in ``__consumer_offsets`` as plain data (``StoreGroup``: the group
as its record will hold it; ``StoreOffsets``: the offsets to commit). The records themselves are
built and appended by the GroupMetadataManager; once an append is done the coordinator calls back
``on_group_stored`` / ``on_offsets_stored`` with its error, as Kafka's storeGroup / storeOffsets
callbacks do.

Kafka's purgatories become deadlines kept in the state: a member's heartbeat expectation, a pending
member's expiry, the end of the join phase (DelayedJoin / InitialDelayedJoin) and of the sync phase
(DelayedSync). ``poll(now_ms)`` fires those that passed, in deadline order and at their own time, and
every handler first fires its group's, so the answers are those of a coordinator at ``now_ms``.
``next_deadline_ms()`` says when to poll next. Nothing here blocks, sleeps or does IO.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from broker.group.group_metadata import (
    GroupMetadata,
    GroupSnapshot,
    GroupState,
    JoinDeadline,
    OffsetAndMetadata,
    TopicPartition,
)
from broker.group.member_metadata import MemberMetadata, Protocol
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import NO_GENERATION, UNKNOWN_MEMBER_ID, GroupApi, JoinGroupResponseMember

log = logging.getLogger("broker.group.coordinator")

NO_LEADER = ""
INVALID_OFFSET = -1
# A new member cannot heartbeat before its first JoinGroup answer; this bounds how long it may wait for it.
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000

_S = GroupState


@dataclass(frozen=True)
class GroupConfig:
    """Kafka's GroupConfig: the broker's group.* settings, with Kafka's defaults."""

    group_min_session_timeout_ms: int = 6000  # group.min.session.timeout.ms
    group_max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms
    group_max_size: int = 2**31 - 1  # group.max.size (unbounded)
    group_initial_rebalance_delay_ms: int = 3000  # group.initial.rebalance.delay.ms


# Kafka's protocol and its offsets log write a group id as an int16-length string: a longer one
# cannot be sent to Kafka at all, and here it is refused rather than left to fail in the log.
MAX_GROUP_ID_BYTES = 32767

# For backwards compatibility Kafka lets these name the empty group id; the others must name a group.
_EMPTY_GROUP_ID_ALLOWED = frozenset(
    {GroupApi.OFFSET_COMMIT, GroupApi.OFFSET_FETCH, GroupApi.DESCRIBE_GROUPS, GroupApi.DELETE_GROUPS}
)


def validate_group_status(group_id: str, api: GroupApi, *, is_active: bool = True, is_loading: bool = False,
                          is_local: bool = True) -> Errors | None:
    """Kafka's validateGroupStatus, and what each API answers for it: None means carry on.

    While the offsets partition loads, a SyncGroup is told REBALANCE_IN_PROGRESS (the rebalance's
    state is lost, older clients do not know COORDINATOR_LOAD_IN_PROGRESS) and a Heartbeat NONE."""
    if not group_id and api not in _EMPTY_GROUP_ID_ALLOWED:
        return Errors.INVALID_GROUP_ID
    if len(group_id) > MAX_GROUP_ID_BYTES // 4 and len(group_id.encode()) > MAX_GROUP_ID_BYTES:
        return Errors.INVALID_GROUP_ID
    if not is_active:
        return Errors.COORDINATOR_NOT_AVAILABLE
    if is_loading:
        if api is GroupApi.SYNC_GROUP:
            return Errors.REBALANCE_IN_PROGRESS
        if api is GroupApi.HEARTBEAT:
            return Errors.NONE
        return Errors.COORDINATOR_LOAD_IN_PROGRESS
    if not is_local:
        return Errors.NOT_COORDINATOR
    return None


def group_store_error(append_error: Errors) -> Errors:
    """What a failed group-record append means to the members (Kafka's storeGroup callback)."""
    if append_error in (Errors.UNKNOWN_TOPIC_OR_PARTITION, Errors.NOT_ENOUGH_REPLICAS,
                        Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
        return Errors.COORDINATOR_NOT_AVAILABLE
    if append_error is Errors.NOT_LEADER_OR_FOLLOWER:
        return Errors.NOT_COORDINATOR
    if append_error is Errors.REQUEST_TIMED_OUT:
        return Errors.REBALANCE_IN_PROGRESS
    if append_error is Errors.MESSAGE_TOO_LARGE:
        return Errors.UNKNOWN_SERVER_ERROR
    return append_error


def offset_commit_error(append_error: Errors) -> Errors:
    """Kafka's maybeConvertOffsetCommitError."""
    if append_error in (Errors.UNKNOWN_TOPIC_OR_PARTITION, Errors.NOT_ENOUGH_REPLICAS,
                        Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
        return Errors.COORDINATOR_NOT_AVAILABLE
    if append_error is Errors.NOT_LEADER_OR_FOLLOWER:
        return Errors.NOT_COORDINATOR
    if append_error in (Errors.MESSAGE_TOO_LARGE, Errors.CORRUPT_MESSAGE):
        return Errors.INVALID_COMMIT_OFFSET_SIZE
    return append_error


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinGroupRequest:
    """What GroupCoordinator.handleJoinGroup takes from Kafka's JoinGroupRequest."""

    group_id: str
    member_id: str
    client_id: str
    protocol_type: str
    protocols: Sequence[Protocol]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    group_instance_id: str | None = None
    client_host: str = ""
    # JoinGroup v4+ (KIP-394): a first join is sent back for its member id before it counts.
    require_known_member_id: bool = True
    # JoinGroup v9+: a static leader rejoining a Stable group is told it leads but need not assign.
    supports_skipping_assignment: bool = False


@dataclass(frozen=True)
class SyncGroupRequest:
    """What GroupCoordinator.handleSyncGroup takes from Kafka's SyncGroupRequest; only the leader's
    ``assignments`` (member id -> assignment bytes) are used."""

    group_id: str
    generation_id: int
    member_id: str
    assignments: Mapping[str, bytes] = field(default_factory=dict)
    group_instance_id: str | None = None
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class MemberIdentity:
    """One member of a LeaveGroup (v3+ batches them; an admin may name only the instance id)."""

    member_id: str
    group_instance_id: str | None = None


# -- answers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JoinGroupResult:
    """Kafka's JoinGroupResult."""

    member_id: str
    error: Errors
    generation_id: int = NO_GENERATION
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = NO_LEADER
    # Only the leader's answer lists the members (with their metadata): it runs the assignor.
    members: tuple[JoinGroupResponseMember, ...] = ()
    skip_assignment: bool = False


@dataclass(frozen=True)
class SyncGroupResult:
    """Kafka's SyncGroupResult."""

    error: Errors
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class LeaveMemberResponse:
    """Kafka's LeaveMemberResponse: one member's outcome in a LeaveGroup."""

    member_id: str
    group_instance_id: str | None
    error: Errors


@dataclass(frozen=True)
class LeaveGroupResult:
    """Kafka's LeaveGroupResult: a top-level error, then one answer per member named."""

    error: Errors
    members: tuple[LeaveMemberResponse, ...] = ()


@dataclass(frozen=True)
class OffsetFetchPartition:
    """Kafka's OffsetFetchResponse.PartitionData."""

    offset: int
    metadata: str = ""
    leader_epoch: int | None = None
    error: Errors = Errors.NONE


# -- effects -----------------------------------------------------------------------------------


class StoreKind(Enum):
    """Why a group record is written: what ``on_group_stored`` does once it is (Kafka's storeGroup callbacks)."""

    SYNC_ASSIGNMENT = "SyncAssignment"  # the leader's assignment; the group turns Stable once written
    STATIC_MEMBER_REJOIN = "StaticMemberRejoin"  # a static member's new id, without a rebalance
    EMPTY_GROUP = "EmptyGroup"  # the join phase ended with nobody; nothing waits for this write


@dataclass(frozen=True)
class StaticRejoin:
    """What a static member's rejoin changed, to answer it once written or undo it if the write fails."""

    group_instance_id: str
    old_member_id: str
    new_member_id: str
    old_protocols: tuple[Protocol, ...]
    old_rebalance_timeout_ms: int
    old_session_timeout_ms: int
    leader_id_before: str | None
    supports_skipping_assignment: bool


@dataclass(frozen=True)
class StoreGroup:
    """Write ``group`` as the group's record in its offsets partition, then call ``on_group_stored``."""

    kind: StoreKind
    group: GroupSnapshot
    static_rejoin: StaticRejoin | None = None

    @property
    def group_id(self) -> str:
        return self.group.group_id

    @property
    def generation_id(self) -> int:
        return self.group.generation_id

    @property
    def assignment(self) -> dict[str, bytes]:
        return self.group.assignment


@dataclass(frozen=True)
class StoreOffsets:
    """Write ``offsets`` as offset commit records in the group's offsets partition, then call
    ``on_offsets_stored`` with the offsets actually written."""

    group_id: str
    offsets: Mapping[TopicPartition, OffsetAndMetadata]


# What the GroupMetadataManager writes to __consumer_offsets for the rules, in the order decided.
Store = StoreGroup | StoreOffsets


R = TypeVar("R")


@dataclass
class Outcome(Generic[R]):
    """What the coordinator decided at one step.

    ``response`` answers the request now; when it is None the request is parked under
    ``parked_member_id`` (a later parked request under the same id supersedes it) and its answer
    comes in ``joins`` / ``syncs`` of this or a later outcome, keyed by the id it was parked under.
    ``stores`` are appended in their order; an OffsetCommit that is not refused is answered by
    ``on_offsets_stored`` once its ``StoreOffsets`` is written."""

    response: R | None = None
    parked_member_id: str | None = None
    joins: dict[str, JoinGroupResult] = field(default_factory=dict)
    syncs: dict[str, SyncGroupResult] = field(default_factory=dict)
    stores: list[Store] = field(default_factory=list)

    @property
    def join_answer(self) -> JoinGroupResult | None:
        """The answer to the JoinGroup just handled, if it is known already."""
        if isinstance(self.response, JoinGroupResult):
            return self.response
        return self.joins.get(self.parked_member_id) if self.parked_member_id is not None else None

    @property
    def sync_answer(self) -> SyncGroupResult | None:
        """The answer to the SyncGroup just handled, if it is known already."""
        if isinstance(self.response, SyncGroupResult):
            return self.response
        return self.syncs.get(self.parked_member_id) if self.parked_member_id is not None else None


def _failed_join(member_id: str, error: Errors) -> JoinGroupResult:
    return JoinGroupResult(member_id=member_id, error=error)


# -- the rules ---------------------------------------------------------------------------------


class _Prefixed(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"{self.extra['prefix']}{msg}", kwargs  # type: ignore[index]



class GroupCoordinatorRules:
    """Kafka's GroupCoordinator decisions (membership and offsets of classic groups) over plain state."""

    def __init__(self, config: GroupConfig | None = None,
                 new_member_id_suffix: Callable[[], str] = lambda: str(uuid.uuid4()),
                 log_prefix: str = "", group_partition: Callable[[str], str | None] = lambda _group_id: None) -> None:
        """``log_prefix`` and ``group_partition`` (the offsets partition of a group, by name) make the
        log read like Kafka's: ``[GroupCoordinator 1]: Preparing to rebalance group g ... (__consumer_offsets-12)``."""
        self.config = config or GroupConfig()
        self._log = _Prefixed(log, {"prefix": log_prefix})
        self._group_partition = group_partition
        self.groups: dict[str, GroupMetadata] = {}
        self._new_member_id_suffix = new_member_id_suffix

    # -- JoinGroup -------------------------------------------------------------------------------

    def handle_join_group(self, req: JoinGroupRequest, now_ms: int) -> Outcome[JoinGroupResult]:
        out: Outcome[JoinGroupResult] = Outcome()
        error = validate_group_status(req.group_id, GroupApi.JOIN_GROUP)
        if error is not None:
            out.response = _failed_join(req.member_id, error)
            return out
        cfg = self.config
        if not cfg.group_min_session_timeout_ms <= req.session_timeout_ms <= cfg.group_max_session_timeout_ms:
            out.response = _failed_join(req.member_id, Errors.INVALID_SESSION_TIMEOUT)
            return out

        is_unknown_member = req.member_id == UNKNOWN_MEMBER_ID
        group = self.groups.get(req.group_id)
        if group is None:
            # Only a first join creates a group; a member id for a group we do not know is stale.
            if not is_unknown_member:
                out.response = _failed_join(req.member_id, Errors.UNKNOWN_MEMBER_ID)
                return out
            group = self.groups[req.group_id] = GroupMetadata(req.group_id, current_state_timestamp_ms=now_ms)
        else:
            self._fire_due(group, now_ms, out)

        if not self._accept_joining_member(group, req.member_id):
            group.remove_member(req.member_id)
            out.response = _failed_join(UNKNOWN_MEMBER_ID, Errors.GROUP_MAX_SIZE_REACHED)
        elif is_unknown_member:
            self._do_new_member_join(group, req, now_ms, out)
        else:
            self._do_current_member_join(group, req, now_ms, out)

        if group.is_(_S.PREPARING_REBALANCE):
            self._try_complete_join(group, now_ms, out)
        return out

    def _accept_joining_member(self, group: GroupMetadata, member_id: str) -> bool:
        max_size = self.config.group_max_size
        if group.state in (_S.EMPTY, _S.DEAD):
            return True
        if group.is_(_S.PREPARING_REBALANCE):
            # Counting the members already rejoined (not the group's size, which may exceed a lowered
            # max) lets the last to rejoin be the ones turned away.
            rejoined = group.has(member_id) and group.get(member_id).awaiting_join
            return rejoined or group.num_awaiting_join < max_size
        return group.has(member_id) or group.size < max_size

    def _do_new_member_join(self, group: GroupMetadata, req: JoinGroupRequest, now_ms: int,
                            out: Outcome[JoinGroupResult]) -> None:
        if group.is_(_S.DEAD):
            # The group moved to another coordinator meanwhile: the member should find it again.
            out.response = _failed_join(UNKNOWN_MEMBER_ID, Errors.COORDINATOR_NOT_AVAILABLE)
            return
        if not group.supports_protocols(req.protocol_type, (name for name, _ in req.protocols)):
            out.response = _failed_join(UNKNOWN_MEMBER_ID, Errors.INCONSISTENT_GROUP_PROTOCOL)
            return
        new_member_id = f"{req.group_instance_id or req.client_id}-{self._new_member_id_suffix()}"
        if req.group_instance_id is not None:
            old_member_id = group.current_static_member_id(req.group_instance_id)
            if old_member_id is not None:
                self._log.info("Static member with groupInstanceId=%s and unknown member id joins group %s in %s "
                               "state. Replacing previously mapped member %s with this groupInstanceId.",
                         req.group_instance_id, group.group_id, group.state, old_member_id)
                self._update_static_member_and_rebalance(group, old_member_id, new_member_id, req, now_ms, out)
            else:
                self._add_member_and_rebalance(group, new_member_id, req, now_ms, out)
        elif req.require_known_member_id:
            # KIP-394: hand out the id and count the member only when it comes back with it, so a
            # client that times out and retries does not leave defunct members in the rebalance.
            group.add_pending_member(new_member_id, now_ms + req.session_timeout_ms)
            out.response = _failed_join(new_member_id, Errors.MEMBER_ID_REQUIRED)
        else:
            self._add_member_and_rebalance(group, new_member_id, req, now_ms, out)

    def _do_current_member_join(self, group: GroupMetadata, req: JoinGroupRequest, now_ms: int,
                                out: Outcome[JoinGroupResult]) -> None:
        member_id = req.member_id
        if group.is_(_S.DEAD):
            out.response = _failed_join(member_id, Errors.COORDINATOR_NOT_AVAILABLE)
            return
        if not group.supports_protocols(req.protocol_type, (name for name, _ in req.protocols)):
            out.response = _failed_join(member_id, Errors.INCONSISTENT_GROUP_PROTOCOL)
            return
        if group.is_pending_member(member_id):
            if req.group_instance_id is not None:
                # A pending member id is only ever handed to a dynamic member (Kafka throws here).
                out.response = _failed_join(member_id, Errors.UNKNOWN_SERVER_ERROR)
            else:
                self._add_member_and_rebalance(group, member_id, req, now_ms, out)
            return
        error = self._validate_current_member(group, member_id, req.group_instance_id)
        if error is not None:
            out.response = _failed_join(member_id, error)
            return
        member = group.get(member_id)
        if group.is_(_S.PREPARING_REBALANCE):
            self._update_member_and_rebalance(group, member, req, now_ms, out, "member joining during rebalance")
        elif group.is_(_S.COMPLETING_REBALANCE):
            if member.matches(req.protocols):
                # The member lost our answer: give it the same one again.
                out.response = self._join_result(group, member_id, with_members=group.is_leader(member_id))
            else:
                self._update_member_and_rebalance(group, member, req, now_ms, out, "member changed its metadata")
        elif group.is_(_S.STABLE):
            if group.is_leader(member_id):
                # The leader rejoins to reassign (e.g. the subscribed topics' partitions changed).
                self._update_member_and_rebalance(group, member, req, now_ms, out, "leader rejoining")
            elif not member.matches(req.protocols):
                self._update_member_and_rebalance(group, member, req, now_ms, out, "member changed its metadata")
            else:
                out.response = self._join_result(group, member_id, with_members=False)
        else:
            self._log.warning("Attempt to add rejoining member %s of group %s in unexpected group state %s",
                        member_id, group.group_id, group.state)
            out.response = _failed_join(member_id, Errors.UNKNOWN_MEMBER_ID)

    def _join_result(self, group: GroupMetadata, member_id: str, with_members: bool,
                     leader_id: str | None = None, skip_assignment: bool = False) -> JoinGroupResult:
        return JoinGroupResult(
            member_id=member_id,
            error=Errors.NONE,
            generation_id=group.generation_id,
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            leader_id=(group.leader_id if leader_id is None else leader_id) or NO_LEADER,
            members=tuple(group.current_member_metadata()) if with_members else (),
            skip_assignment=skip_assignment,
        )

    def _add_member_and_rebalance(self, group: GroupMetadata, member_id: str, req: JoinGroupRequest, now_ms: int,
                                  out: Outcome[Any]) -> None:
        member = MemberMetadata(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            session_timeout_ms=req.session_timeout_ms,
            protocol_type=req.protocol_type,
            supported_protocols=list(req.protocols),
            awaiting_join=True,
            is_new=True,
        )
        # During the group's first rebalance every arrival extends the initial delay.
        if group.is_(_S.PREPARING_REBALANCE) and group.generation_id == 0:
            group.new_member_added = True
        group.add_member(member)
        member.schedule_heartbeat(now_ms, NEW_MEMBER_JOIN_TIMEOUT_MS)
        out.parked_member_id = member_id
        self._maybe_prepare_rebalance(group, now_ms, out, f"adding new member {member_id}")

    def _update_member_and_rebalance(self, group: GroupMetadata, member: MemberMetadata, req: JoinGroupRequest,
                                     now_ms: int, out: Outcome[Any], reason: str) -> None:
        group.update_member(member, req.protocols, req.rebalance_timeout_ms, req.session_timeout_ms,
                            awaiting_join=True)
        out.parked_member_id = member.member_id
        self._maybe_prepare_rebalance(group, now_ms, out, f"{reason} ({member.member_id})")

    def _update_static_member_and_rebalance(self, group: GroupMetadata, old_member_id: str, new_member_id: str,
                                            req: JoinGroupRequest, now_ms: int,
                                            out: Outcome[JoinGroupResult]) -> None:
        assert req.group_instance_id is not None
        member = group.get(old_member_id)
        # The old id's parked requests are fenced at once: only one process holds an instance id.
        if member.awaiting_join:
            out.joins[old_member_id] = _failed_join(old_member_id, Errors.FENCED_INSTANCE_ID)
        if member.awaiting_sync:
            out.syncs[old_member_id] = SyncGroupResult(Errors.FENCED_INSTANCE_ID)
        rejoin = StaticRejoin(
            group_instance_id=req.group_instance_id,
            old_member_id=old_member_id,
            new_member_id=new_member_id,
            old_protocols=tuple(member.supported_protocols),
            old_rebalance_timeout_ms=member.rebalance_timeout_ms,
            old_session_timeout_ms=member.session_timeout_ms,
            leader_id_before=group.leader_id,
            supports_skipping_assignment=req.supports_skipping_assignment,
        )
        group.replace_static_member(req.group_instance_id, old_member_id, new_member_id)
        member.schedule_heartbeat(now_ms, member.session_timeout_ms)
        group.update_member(member, req.protocols, req.rebalance_timeout_ms, req.session_timeout_ms,
                            awaiting_join=True)
        out.parked_member_id = new_member_id

        if group.is_(_S.STABLE):
            if group.select_protocol() == group.protocol_name:
                # Same protocol for the group: persist the new member id and skip the rebalance.
                assignment = {mid: m.assignment for mid, m in group.members.items()}
                out.stores.append(self._store(group, StoreKind.STATIC_MEMBER_REJOIN, assignment, rejoin))
            else:
                self._maybe_prepare_rebalance(group, now_ms, out, f"static member {new_member_id} changed protocol")
        elif group.is_(_S.COMPLETING_REBALANCE):
            # The leader may be assigning to the old member id: the assignment would miss the new one.
            self._prepare_rebalance(group, now_ms, out, f"static member {new_member_id} rejoined during sync")
        elif not group.is_(_S.PREPARING_REBALANCE):
            raise ValueError(f"Group {group.group_id} was not supposed to be in the state {group.state} "
                             f"when the known static member {req.group_instance_id} rejoins.")

    # -- the join phase --------------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, group: GroupMetadata, now_ms: int, out: Outcome[Any], reason: str) -> None:
        if group.can_rebalance:
            self._prepare_rebalance(group, now_ms, out, reason)

    def _prepare_rebalance(self, group: GroupMetadata, now_ms: int, out: Outcome[Any], reason: str) -> None:
        if group.is_(_S.COMPLETING_REBALANCE):
            # Members waiting for an assignment must rejoin instead.
            self._reset_and_propagate_assignment_error(group, Errors.REBALANCE_IN_PROGRESS, now_ms, out)
        group.pending_sync_members.clear()
        group.sync_deadline_ms = None

        if group.is_(_S.EMPTY):
            delay = self.config.group_initial_rebalance_delay_ms
            group.join_deadline = JoinDeadline(
                deadline_ms=now_ms + delay,
                initial=True,
                configured_delay_ms=delay,
                delay_ms=delay,
                remaining_ms=max(group.max_rebalance_timeout() - delay, 0),
            )
        else:
            group.join_deadline = JoinDeadline(deadline_ms=now_ms + group.max_rebalance_timeout())
        group.transition_to(_S.PREPARING_REBALANCE, now_ms)
        where = self._group_partition(group.group_id)
        self._log.info("Preparing to rebalance group %s in state %s with old generation %d%s (reason: %s)",
                       group.group_id, group.state, group.generation_id, f" ({where})" if where else "", reason)
        self._try_complete_join(group, now_ms, out)

    def _try_complete_join(self, group: GroupMetadata, now_ms: int, out: Outcome[Any]) -> None:
        """Kafka's DelayedJoin.tryComplete: end the join phase early once everyone is in (never during
        the initial delay, which exists to let more members arrive)."""
        deadline = group.join_deadline
        if (group.is_(_S.PREPARING_REBALANCE) and deadline is not None and not deadline.initial
                and group.has_all_members_joined()):
            self._complete_join(group, now_ms, out)

    def _on_join_deadline(self, group: GroupMetadata, deadline: JoinDeadline, now_ms: int, out: Outcome[Any]) -> None:
        if not group.is_(_S.PREPARING_REBALANCE):
            return
        if deadline.initial and group.new_member_added and deadline.remaining_ms != 0:
            group.new_member_added = False
            delay = min(deadline.configured_delay_ms, deadline.remaining_ms)
            group.join_deadline = JoinDeadline(
                deadline_ms=now_ms + delay,
                initial=True,
                configured_delay_ms=deadline.configured_delay_ms,
                delay_ms=delay,
                remaining_ms=max(deadline.remaining_ms - deadline.delay_ms, 0),
            )
        else:
            self._complete_join(group, now_ms, out)

    def _complete_join(self, group: GroupMetadata, now_ms: int, out: Outcome[Any]) -> None:
        """Kafka's onCompleteJoin."""
        group.join_deadline = None
        # Dynamic members that did not rejoin are gone; static ones keep their place until their
        # session expires, since they may come back under the same instance id.
        gone = [mid for mid, m in group.not_yet_rejoined_members().items() if not m.is_static_member]
        if gone:
            self._log.info("Group %s removed dynamic members who haven't joined: %s", group.group_id, gone)
        for member_id in gone:
            removed = group.remove_member(member_id)
            if removed is not None:
                removed.heartbeat_deadline_ms = None

        if group.is_(_S.DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined: wait another rebalance timeout, until sessions expire the silent members.
            self._log.error("Group %s could not complete rebalance because no members rejoined", group.group_id)
            # At least 1 ms later, so a zero rebalance timeout cannot refire at the same instant forever.
            group.join_deadline = JoinDeadline(deadline_ms=now_ms + max(group.max_rebalance_timeout(), 1))
            return

        group.init_next_generation(now_ms)
        if group.is_(_S.EMPTY):
            self._log.info("Group %s with generation %d is now empty", group.group_id, group.generation_id)
            out.stores.append(self._store(group, StoreKind.EMPTY_GROUP, {}))
            return
        self._log.info("Stabilized group %s generation %d with %d members, leader %s, protocol %s",
                 group.group_id, group.generation_id, group.size, group.leader_id, group.protocol_name)
        for member_id, member in group.members.items():
            if member.awaiting_join:
                out.joins[member_id] = self._join_result(group, member_id, with_members=group.is_leader(member_id))
                member.awaiting_join = False
            member.schedule_heartbeat(now_ms, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync_members.add(member_id)
        group.sync_deadline_ms = now_ms + group.max_rebalance_timeout()

    # -- SyncGroup -------------------------------------------------------------------------------

    def handle_sync_group(self, req: SyncGroupRequest, now_ms: int) -> Outcome[SyncGroupResult]:
        out: Outcome[SyncGroupResult] = Outcome()
        error = validate_group_status(req.group_id, GroupApi.SYNC_GROUP)
        if error is not None:
            out.response = SyncGroupResult(error)
            return out
        group = self.groups.get(req.group_id)
        if group is None:
            out.response = SyncGroupResult(Errors.UNKNOWN_MEMBER_ID)
            return out
        self._fire_due(group, now_ms, out)

        error = self._validate_sync_group(group, req)
        if error is not None:
            out.response = SyncGroupResult(error)
        elif group.is_(_S.EMPTY):
            out.response = SyncGroupResult(Errors.UNKNOWN_MEMBER_ID)
        elif group.is_(_S.PREPARING_REBALANCE):
            out.response = SyncGroupResult(Errors.REBALANCE_IN_PROGRESS)
        elif group.is_(_S.COMPLETING_REBALANCE):
            group.get(req.member_id).awaiting_sync = True
            out.parked_member_id = req.member_id
            self._remove_pending_sync_member(group, req.member_id)
            if group.is_leader(req.member_id):
                # Only the leader's assignments count; a member it left out gets an empty one.
                missing = [mid for mid in group.members if mid not in req.assignments]
                if missing:
                    self._log.warning("Setting empty assignments for members %s of %s for generation %d",
                                missing, group.group_id, group.generation_id)
                assignment = {mid: bytes(req.assignments.get(mid, b"")) for mid in group.members}
                self._log.info("Assignment received from leader %s for group %s for generation %d",
                         req.member_id, group.group_id, group.generation_id)
                out.stores.append(self._store(group, StoreKind.SYNC_ASSIGNMENT, assignment))
        elif group.is_(_S.STABLE):
            self._remove_pending_sync_member(group, req.member_id)
            member = group.get(req.member_id)
            out.response = SyncGroupResult(Errors.NONE, member.assignment, group.protocol_type, group.protocol_name)
            member.schedule_heartbeat(now_ms, member.session_timeout_ms)
        return out

    def _validate_sync_group(self, group: GroupMetadata, req: SyncGroupRequest) -> Errors | None:
        if group.is_(_S.DEAD):
            return Errors.COORDINATOR_NOT_AVAILABLE
        error = self._validate_current_member(group, req.member_id, req.group_instance_id)
        if error is not None:
            return error
        if req.generation_id != group.generation_id:
            return Errors.ILLEGAL_GENERATION
        if req.protocol_type is not None and req.protocol_type != group.protocol_type:
            return Errors.INCONSISTENT_GROUP_PROTOCOL
        if req.protocol_name is not None and req.protocol_name != group.protocol_name:
            return Errors.INCONSISTENT_GROUP_PROTOCOL
        return None

    def _remove_pending_sync_member(self, group: GroupMetadata, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            group.sync_deadline_ms = None  # Kafka's DelayedSync completes once everyone has synced

    def on_group_stored(self, store: StoreGroup, append_error: Errors, now_ms: int) -> Outcome[None]:
        """The group record of ``store`` was appended (or failed with ``append_error``)."""
        out: Outcome[None] = Outcome()
        error = group_store_error(append_error)
        group = self.groups.get(store.group_id)
        if group is None:
            return out
        self._fire_due(group, now_ms, out)

        if store.kind is StoreKind.SYNC_ASSIGNMENT:
            # The group may have moved on (a join, a leave) while the record was being written.
            if group.is_(_S.COMPLETING_REBALANCE) and group.generation_id == store.generation_id:
                if error is not Errors.NONE:
                    self._reset_and_propagate_assignment_error(group, error, now_ms, out)
                    self._maybe_prepare_rebalance(group, now_ms, out, f"error {error.name} storing the assignment")
                else:
                    for member_id, member in group.members.items():
                        member.assignment = bytes(store.assignment.get(member_id, b""))
                    self._propagate_assignment(group, Errors.NONE, now_ms, out)
                    group.transition_to(_S.STABLE, now_ms)
        elif store.kind is StoreKind.STATIC_MEMBER_REJOIN:
            assert store.static_rejoin is not None
            self._on_static_rejoin_stored(group, store.static_rejoin, error, now_ms, out)
        elif error is not Errors.NONE:
            # Safe to ignore: an empty generation has no members to mislead if the old record comes back.
            self._log.warning("Failed to write empty metadata for group %s: %s", group.group_id, error.name)
        return out

    def _on_static_rejoin_stored(self, group: GroupMetadata, rejoin: StaticRejoin, error: Errors, now_ms: int,
                                 out: Outcome[None]) -> None:
        new_id = rejoin.new_member_id
        if error is not Errors.NONE:
            self._log.warning("Failed to persist metadata for group %s: %s", group.group_id, error.name)
            if group.has(new_id):
                # Put the old member id back: the log still names it.
                member = group.get(new_id)
                group.update_member(member, rejoin.old_protocols, rejoin.old_rebalance_timeout_ms,
                                    rejoin.old_session_timeout_ms, awaiting_join=False)
                group.replace_static_member(rejoin.group_instance_id, new_id, rejoin.old_member_id)
                member.schedule_heartbeat(now_ms, member.session_timeout_ms)
            out.joins[new_id] = JoinGroupResult(
                member_id=UNKNOWN_MEMBER_ID,
                error=error,
                generation_id=group.generation_id,
                protocol_type=group.protocol_type,
                protocol_name=group.protocol_name,
                leader_id=rejoin.leader_id_before or NO_LEADER,
            )
            return
        if not (group.has(new_id) and group.get(new_id).awaiting_join):
            return
        member = group.get(new_id)
        if rejoin.supports_skipping_assignment:
            # v9+: the leader learns it leads (to keep watching metadata) but must not reassign.
            is_leader = group.is_leader(new_id)
            out.joins[new_id] = self._join_result(group, new_id, with_members=is_leader, skip_assignment=is_leader)
        else:
            # Older clients: name the old leader id so a rejoining static leader does not run an
            # assignment that a Stable group would never hand out.
            out.joins[new_id] = self._join_result(group, new_id, with_members=False,
                                                  leader_id=rejoin.leader_id_before or NO_LEADER)
        member.awaiting_join = False

    def _reset_and_propagate_assignment_error(self, group: GroupMetadata, error: Errors, now_ms: int,
                                              out: Outcome[Any]) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error, now_ms, out)

    def _propagate_assignment(self, group: GroupMetadata, error: Errors, now_ms: int, out: Outcome[Any]) -> None:
        ok = error is Errors.NONE
        for member_id, member in group.members.items():
            if not member.awaiting_sync:
                continue
            out.syncs[member_id] = SyncGroupResult(
                error,
                member.assignment,
                group.protocol_type if ok else None,
                group.protocol_name if ok else None,
            )
            member.awaiting_sync = False
            # Its session was on hold while it waited: it starts again from its answer.
            member.schedule_heartbeat(now_ms, member.session_timeout_ms)

    # -- Heartbeat -------------------------------------------------------------------------------

    def handle_heartbeat(self, group_id: str, member_id: str, generation_id: int, now_ms: int,
                         group_instance_id: str | None = None) -> Outcome[Errors]:
        out: Outcome[Errors] = Outcome()
        error = validate_group_status(group_id, GroupApi.HEARTBEAT)
        if error is not None:
            out.response = error
            return out
        group = self.groups.get(group_id)
        if group is None:
            out.response = Errors.UNKNOWN_MEMBER_ID
            return out
        self._fire_due(group, now_ms, out)

        if group.is_(_S.DEAD):
            out.response = Errors.COORDINATOR_NOT_AVAILABLE
            return out
        error = self._validate_current_member(group, member_id, group_instance_id)
        if error is None and generation_id != group.generation_id:
            error = Errors.ILLEGAL_GENERATION
        if error is not None:
            out.response = error
        elif group.is_(_S.EMPTY):
            out.response = Errors.UNKNOWN_MEMBER_ID
        else:
            member = group.get(member_id)
            member.schedule_heartbeat(now_ms, member.session_timeout_ms)
            # A heartbeat is how a Stable member learns it must rejoin.
            out.response = Errors.REBALANCE_IN_PROGRESS if group.is_(_S.PREPARING_REBALANCE) else Errors.NONE
        return out

    # -- LeaveGroup ------------------------------------------------------------------------------

    def handle_leave_group(self, group_id: str, leaving: Sequence[MemberIdentity],
                           now_ms: int) -> Outcome[LeaveGroupResult]:
        out: Outcome[LeaveGroupResult] = Outcome()
        error = validate_group_status(group_id, GroupApi.LEAVE_GROUP)
        if error is not None:
            out.response = LeaveGroupResult(error)
            return out
        group = self.groups.get(group_id)
        if group is None:
            out.response = LeaveGroupResult(Errors.NONE, tuple(
                LeaveMemberResponse(m.member_id, m.group_instance_id, Errors.UNKNOWN_MEMBER_ID) for m in leaving
            ))
            return out
        self._fire_due(group, now_ms, out)
        if group.is_(_S.DEAD):
            out.response = LeaveGroupResult(Errors.COORDINATOR_NOT_AVAILABLE)
            return out

        responses = []
        for leaver in leaving:
            if leaver.member_id == UNKNOWN_MEMBER_ID:
                # An admin removing a static member names only its instance id.
                current = (group.current_static_member_id(leaver.group_instance_id)
                           if leaver.group_instance_id is not None else None)
                if current is None:
                    member_error = Errors.UNKNOWN_MEMBER_ID
                else:
                    self._remove_member_and_update_group(group, group.get(current), now_ms, out, "LeaveGroup")
                    member_error = Errors.NONE
            elif group.is_pending_member(leaver.member_id):
                self._remove_pending_member_and_update_group(group, leaver.member_id, now_ms, out)
                member_error = Errors.NONE
            else:
                member_error = self._validate_current_member(group, leaver.member_id, leaver.group_instance_id)
                if member_error is None:
                    self._remove_member_and_update_group(group, group.get(leaver.member_id), now_ms, out,
                                                         "LeaveGroup")
                    member_error = Errors.NONE
            responses.append(LeaveMemberResponse(leaver.member_id, leaver.group_instance_id, member_error))
        out.response = LeaveGroupResult(Errors.NONE, tuple(responses))
        return out

    def _remove_member_and_update_group(self, group: GroupMetadata, member: MemberMetadata, now_ms: int,
                                        out: Outcome[Any], reason: str) -> None:
        self._log.info("Removing member %s from group %s in state %s (%s)", member.member_id, group.group_id,
                       group.state, reason)
        # A parked JoinGroup is answered so that, if the client is still alive, it joins again.
        if member.awaiting_join:
            out.joins[member.member_id] = _failed_join(UNKNOWN_MEMBER_ID, Errors.UNKNOWN_MEMBER_ID)
            member.awaiting_join = False
        if member.awaiting_sync:
            out.syncs[member.member_id] = SyncGroupResult(Errors.UNKNOWN_MEMBER_ID)
            member.awaiting_sync = False
        group.remove_member(member.member_id)
        member.heartbeat_deadline_ms = None
        if group.state in (_S.STABLE, _S.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance(group, now_ms, out, f"removing member {member.member_id} ({reason})")
        elif group.is_(_S.PREPARING_REBALANCE):
            self._try_complete_join(group, now_ms, out)

    def _remove_pending_member_and_update_group(self, group: GroupMetadata, member_id: str, now_ms: int,
                                                out: Outcome[Any]) -> None:
        group.remove_member(member_id)
        if group.is_(_S.PREPARING_REBALANCE):
            self._try_complete_join(group, now_ms, out)

    @staticmethod
    def _validate_current_member(group: GroupMetadata, member_id: str, group_instance_id: str | None) -> Errors | None:
        """The instance id, when given, must map to this member id; the member id must be a member."""
        if group_instance_id is not None:
            current = group.current_static_member_id(group_instance_id)
            if current is None:
                return Errors.UNKNOWN_MEMBER_ID
            if current != member_id:
                log.info("Request memberId=%s for static member with groupInstanceId=%s is fenced by current "
                         "memberId=%s", member_id, group_instance_id, current)
                return Errors.FENCED_INSTANCE_ID
        if not group.has(member_id):
            return Errors.UNKNOWN_MEMBER_ID
        return None

    # -- OffsetCommit / OffsetFetch --------------------------------------------------------------

    def handle_commit_offsets(self, group_id: str, member_id: str, generation_id: int,
                              offsets: Mapping[TopicPartition, OffsetAndMetadata], now_ms: int,
                              group_instance_id: str | None = None) -> Outcome[dict[TopicPartition, Errors]]:
        """Answers at once when the commit is refused; otherwise asks for the offsets to be stored
        (a ``StoreOffsets`` in ``stores``), and the answer comes from ``on_offsets_stored``."""
        out: Outcome[dict[TopicPartition, Errors]] = Outcome()

        def refuse(error: Errors) -> Outcome[dict[TopicPartition, Errors]]:
            out.response = dict.fromkeys(offsets, error)
            return out

        error = validate_group_status(group_id, GroupApi.OFFSET_COMMIT)
        if error is not None:
            return refuse(error)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                # A generation for a group we do not know: an old member's commit.
                return refuse(Errors.ILLEGAL_GENERATION)
            # A consumer that only stores offsets in Kafka, without group management.
            group = self.groups[group_id] = GroupMetadata(group_id, current_state_timestamp_ms=now_ms)
        else:
            self._fire_due(group, now_ms, out)

        error = self._validate_offset_commit(group, member_id, group_instance_id, generation_id)
        if error is not None:
            return refuse(error)
        if group.is_(_S.COMPLETING_REBALANCE):
            # The member has the new generation but not yet its assignment.
            return refuse(Errors.REBALANCE_IN_PROGRESS)
        if group.state in (_S.STABLE, _S.PREPARING_REBALANCE):
            # Still allowed while rebalancing: the heartbeat tells the member to rejoin. A commit is a sign of life.
            member = group.get(member_id)
            member.schedule_heartbeat(now_ms, member.session_timeout_ms)
        out.stores.append(StoreOffsets(group_id, dict(offsets)))
        return out

    @classmethod
    def _validate_offset_commit(cls, group: GroupMetadata, member_id: str, group_instance_id: str | None,
                                generation_id: int) -> Errors | None:
        if group.is_(_S.DEAD):
            return Errors.COORDINATOR_NOT_AVAILABLE
        if generation_id < 0 and group.is_(_S.EMPTY):
            # The admin client or a consumer without group management: fine while nobody is a member.
            return None
        if generation_id >= 0 or member_id != UNKNOWN_MEMBER_ID or group_instance_id is not None:
            error = cls._validate_current_member(group, member_id, group_instance_id)
            if error is None and generation_id != group.generation_id:
                error = Errors.ILLEGAL_GENERATION
            return error
        if not group.is_(_S.EMPTY):
            # Once the group has members, only they may commit.
            return Errors.UNKNOWN_MEMBER_ID
        return None

    def on_offsets_stored(self, store: StoreOffsets, append_error: Errors) -> dict[TopicPartition, Errors]:
        """The offsets of ``store`` were written (or failed): commit them and answer for them."""
        error = offset_commit_error(append_error)
        group = self.groups.get(store.group_id)
        if error is Errors.NONE and group is not None and not group.is_(_S.DEAD):
            group.commit(dict(store.offsets))
        return dict.fromkeys(store.offsets, error)

    def handle_fetch_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetFetchPartition]:
        """Committed offsets whatever the group's state (it may not use group management at all);
        ``partitions=None`` asks for all of them. No offset is -1."""
        group = self.groups.get(group_id)
        if group is None or group.is_(_S.DEAD):
            return {tp: OffsetFetchPartition(INVALID_OFFSET) for tp in partitions or ()}
        wanted = list(group.offsets) if partitions is None else list(partitions)
        result = {}
        for tp in wanted:
            committed = group.offset(tp)
            result[tp] = (OffsetFetchPartition(INVALID_OFFSET) if committed is None else
                          OffsetFetchPartition(committed.offset, committed.metadata, committed.leader_epoch))
        return result

    # -- loading and unloading -------------------------------------------------------------------

    def load_group(self, group: GroupMetadata, now_ms: int) -> Outcome[None]:
        """Kafka's onGroupLoaded: a group read back from the offsets log (Stable or Empty) is served
        from now on; its members must heartbeat within their session timeout."""
        out: Outcome[None] = Outcome()
        if group.state not in (_S.STABLE, _S.EMPTY):
            raise ValueError(f"Loaded group {group.group_id} must be Stable or Empty, not {group.state}")
        if group.group_id in self.groups:
            self._log.debug("Group %s is already cached; not replacing it with the one loaded", group.group_id)
            return out
        self.groups[group.group_id] = group
        self._log.info("Loading group metadata for %s with generation %d", group.group_id, group.generation_id)
        if group.size > self.config.group_max_size:
            self._prepare_rebalance(group, now_ms, out, f"freshly-loaded group is over capacity "
                                                        f"({self.config.group_max_size})")
        for member in group.members.values():
            member.schedule_heartbeat(now_ms, member.session_timeout_ms)
        return out

    def unload_group(self, group_id: str, now_ms: int) -> Outcome[None]:
        """Kafka's onGroupUnloaded: this broker no longer leads the group's offsets partition."""
        out: Outcome[None] = Outcome()
        group = self.groups.pop(group_id, None)
        if group is None:
            return out
        self._log.info("Unloading group metadata for %s with generation %d", group_id, group.generation_id)
        previous = group.state
        group.transition_to(_S.DEAD, now_ms)
        for member_id, member in group.members.items():
            if previous is _S.PREPARING_REBALANCE and member.awaiting_join:
                out.joins[member_id] = _failed_join(member_id, Errors.NOT_COORDINATOR)
            if previous in (_S.STABLE, _S.COMPLETING_REBALANCE) and member.awaiting_sync:
                out.syncs[member_id] = SyncGroupResult(Errors.NOT_COORDINATOR)
            member.awaiting_join = member.awaiting_sync = False
            member.heartbeat_deadline_ms = None
        group.join_deadline = None
        group.sync_deadline_ms = None
        group.pending_sync_members.clear()
        group.pending_members.clear()
        return out

    # -- timers ----------------------------------------------------------------------------------

    # At the same millisecond, failures are seen before the phase they would end.
    _TIMER_ORDER = {"pending": 0, "heartbeat": 1, "sync": 2, "join": 3}

    @classmethod
    def _deadlines(cls, group: GroupMetadata) -> list[tuple[int, int, str, str]]:
        timers: list[tuple[int, int, str, str]] = []
        for member_id, deadline in group.pending_members.items():
            timers.append((deadline, cls._TIMER_ORDER["pending"], "pending", member_id))
        for member_id, member in group.members.items():
            if member.heartbeat_deadline_ms is not None:
                timers.append((member.heartbeat_deadline_ms, cls._TIMER_ORDER["heartbeat"], "heartbeat", member_id))
        if group.sync_deadline_ms is not None:
            timers.append((group.sync_deadline_ms, cls._TIMER_ORDER["sync"], "sync", ""))
        if group.join_deadline is not None:
            timers.append((group.join_deadline.deadline_ms, cls._TIMER_ORDER["join"], "join", ""))
        return timers

    def next_deadline_ms(self) -> int | None:
        """The earliest deadline of any group: when ``poll`` next has something to do."""
        deadlines = [d[0] for g in self.groups.values() if not g.is_(_S.DEAD) for d in self._deadlines(g)]
        return min(deadlines, default=None)

    def poll(self, now_ms: int) -> Outcome[None]:
        """Fire every deadline that has passed, in order, each at its own time."""
        out: Outcome[None] = Outcome()
        for group in list(self.groups.values()):
            self._fire_due(group, now_ms, out)
        return out

    def _fire_due(self, group: GroupMetadata, now_ms: int, out: Outcome[Any]) -> None:
        # Each firing removes its timer or moves it later, so this ends.
        while not group.is_(_S.DEAD):
            due = [t for t in self._deadlines(group) if t[0] <= now_ms]
            if not due:
                return
            at, _, kind, key = min(due)
            if kind == "pending":
                self._log.info("Pending member %s in group %s has been removed after session timeout expiration.",
                         key, group.group_id)
                self._remove_pending_member_and_update_group(group, key, at, out)
            elif kind == "heartbeat":
                member = group.get(key)
                member.heartbeat_deadline_ms = None
                if not member.has_satisfied_heartbeat:
                    self._log.info("Member %s in group %s has failed, removing it from the group", key, group.group_id)
                    self._remove_member_and_update_group(group, member, at, out, "heartbeat expiration")
            elif kind == "sync":
                group.sync_deadline_ms = None
                self._on_sync_deadline(group, at, out)
            else:
                deadline = group.join_deadline
                assert deadline is not None
                group.join_deadline = None
                self._on_join_deadline(group, deadline, at, out)

    def _on_sync_deadline(self, group: GroupMetadata, now_ms: int, out: Outcome[Any]) -> None:
        """Kafka's onExpirePendingSync: members that never sent SyncGroup within the rebalance timeout
        are removed and the group rebalances without them."""
        if group.state not in (_S.COMPLETING_REBALANCE, _S.STABLE) or not group.pending_sync_members:
            return
        missing = [mid for mid in group.members if mid in group.pending_sync_members]
        for member_id in missing:
            removed = group.remove_member(member_id)
            if removed is not None:
                removed.heartbeat_deadline_ms = None
        group.pending_sync_members.clear()
        self._prepare_rebalance(group, now_ms, out, f"removing {missing} on pending sync request expiration")

    # -- stores ----------------------------------------------------------------------------------

    @staticmethod
    def _store(group: GroupMetadata, kind: StoreKind, assignment: dict[str, bytes],
               static_rejoin: StaticRejoin | None = None) -> StoreGroup:
        # The group as it is now: it may change again before the record is written.
        return StoreGroup(kind, group.snapshot(assignment), static_rejoin)
