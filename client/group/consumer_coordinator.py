"""The consumer's side of a consumer group (Kafka's ConsumerCoordinator): `ConsumerCoordinator`,
owned by the consumer's thread, finds the coordinator, runs one `RebalanceRound` per rebalance
and computes the assignment when it leads, calls the rebalance listener, heartbeats through its
`HeartbeatThread` and commits offsets. What the heartbeat thread and asynchronous commits learn
is queued for the consumer's next poll(), so the consumer's thread stays the one owner of the
group state. Beside it, the decisions over plain data: `join_protocols` (the JoinGroup metadata
of each assignor) and `leader_assignment` (what the group leader hands out).

Losing the coordinator (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
a lost connection or a request timeout) is Kafka's markCoordinatorUnknown: the member finds the
coordinator again and goes on heartbeating there with the generation it has, as the new
coordinator loaded the group Stable from the offsets log (onGroupLoaded). It rejoins only if the
coordinator answers that it does not know the member or the generation, or is rebalancing; a
rebalance round cut short by the loss is started again.

Kafka's configuration names and defaults: `session.timeout.ms` 45000, `heartbeat.interval.ms`
3000, `max.poll.interval.ms` 300000 (the rebalance timeout), `partition.assignment.strategy`
[range] (Kafka 3.x adds cooperative-sticky, which is not implemented here), `enable.auto.commit`
true, `auto.commit.interval.ms` 5000, `retry.backoff.ms` 100, `group.instance.id` (static
membership, KIP-345).

Differences from Kafka, on purpose:
- The heartbeat thread does not look for a new coordinator itself (see `client.group.heartbeat`).
- Only the eager rebalance protocol (revoke everything before a rejoin); no cooperative rebalancing.
- The leader does not watch the metadata for partition count changes of subscribed topics.
"""

from __future__ import annotations

import itertools
import logging
import queue
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NoReturn

import grpc

from client.cluster import ClusterMetadata, KafkaError
from client.group.assignors import ASSIGNORS, assignor_for
from client.group.assignors.sticky import serialize_topic_partition_assignment
from client.group.heartbeat import HeartbeatFailed, HeartbeatTarget, HeartbeatThread, PollTimeout
from client.group.member import Generation, GroupState, MemberState
from client.group.rebalance import Failed, JoinConfig, Joined, NeedsAssignment, RebalanceRound
from client.group.wire import (
    COORDINATOR_LOST,
    Coordinator,
    GroupClient,
    Reaction,
    offset_commit_error,
    offset_commit_request,
    offset_fetch_request,
    reaction_for,
    transport_error,
)
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.consumer_protocol import (
    Subscription,
    deserialize_subscription,
    serialize_assignment,
    serialize_subscription,
)
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import NO_GENERATION, UNKNOWN_MEMBER_ID, GroupApi, JoinGroupResponseMember
from minikafka_rpc import kafka_pb2

log = logging.getLogger(__name__)

SUBSCRIPTION_VERSION = 3  # ConsumerProtocolSubscription v3, as Kafka 3.x writes it
# AbstractCoordinator.JOIN_GROUP_TIMEOUT_LAPSE: a JoinGroup may be held the rebalance timeout, and then some.
JOIN_GROUP_TIMEOUT_LAPSE_S = 5.0
_client_ids = itertools.count(1)


# -- decisions over plain data --------------------------------------------------------------------


def join_protocols(strategies: Sequence[str], topics: Sequence[str], generation_id: int,
                   last_assignment: Sequence[TopicPartition]) -> list[tuple[str, bytes]]:
    """The JoinGroup protocols, in order of preference: each assignor's name and subscription.

    Eager rebalancing revoked every partition before the join, so no partitions are owned (as in
    Kafka); the sticky assignor gets its previous assignment in its user data instead
    (StickyAssignor.subscriptionUserData)."""
    protocols = []
    for name in strategies:
        user_data = None
        if name == "sticky" and generation_id != NO_GENERATION:
            user_data = serialize_topic_partition_assignment(last_assignment, generation_id)
        subscription = Subscription(topics, user_data=user_data, generation_id=generation_id)
        protocols.append((name, serialize_subscription(subscription, SUBSCRIPTION_VERSION)))
    return protocols


def group_subscriptions(members: Iterable[JoinGroupResponseMember]) -> dict[str, Subscription]:
    """Each member's subscription, decoded from its JoinGroup metadata."""
    return {m.member_id: deserialize_subscription(m.metadata, m.group_instance_id) for m in members}


def subscribed_topics(subscriptions: Mapping[str, Subscription]) -> set[str]:
    return {topic for subscription in subscriptions.values() for topic in subscription.topics}


def leader_assignment(protocol: str, subscriptions: Mapping[str, Subscription],
                      partitions_per_topic: Mapping[str, int]) -> dict[str, list[TopicPartition]]:
    """ConsumerCoordinator.onLeaderElected: the assignor the group voted for, over every member's
    subscription and the partition counts the leader's metadata gives (unknown topics count 0)."""
    return assignor_for(protocol).assign(partitions_per_topic, subscriptions)


def format_partitions(partitions: Iterable[tuple[str, int]]) -> str:
    names = [f"{topic}-{partition}" for topic, partition in sorted(partitions)]
    return ",".join(names) if names else "none"


class CommitFailedError(KafkaError):
    """Kafka's CommitFailedException: the group moved on (a rebalance, or this member was removed),
    so the offsets were not committed; the partitions may be another member's by now."""

    def __init__(self, error: Errors, detail: str = "") -> None:
        super().__init__(error, "Commit cannot be completed since the group has already rebalanced and assigned "
                                "the partitions to another member" + (f" ({detail})" if detail else ""))


class ConsumerRebalanceListener:
    """Kafka's ConsumerRebalanceListener; called from poll() in the consumer's thread. Eager
    rebalancing: every partition is revoked before a rejoin (with the offsets committed first if
    enable.auto.commit), and the whole new assignment is given after it."""

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before a rejoin or on close, while the partitions are still this member's."""

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """After each join, before any record of the new assignment is fetched."""

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        """The member was dropped from its generation: the partitions may already be someone
        else's, so nothing can be committed for them. Kafka's default calls revoked."""
        self.on_partitions_revoked(lost)


@dataclass(frozen=True)
class CommitDone:
    """An asynchronous OffsetCommit answered, for the consumer's thread to handle in its next poll()."""

    generation: Generation
    offsets: dict[TopicPartition, int]
    call: grpc.Future
    callback: Callable[[dict[TopicPartition, int], Exception | None], None] | None


# -- the coordinator ------------------------------------------------------------------------------


class ConsumerCoordinator:
    """The group membership of one KafkaConsumer (Kafka's ConsumerCoordinator). Called only from
    the consumer's thread; see the module docstring.

    The consumer gives it `assign` (install a new assignment: an empty one revokes), `consumed`
    (the positions to commit) and `wakeup` (interrupt a waiting poll() when the heartbeat thread
    has news)."""

    def __init__(
        self,
        cluster: ClusterMetadata,
        group_id: str,
        *,
        assign: Callable[[Sequence[TopicPartition]], None],
        consumed: Callable[[], dict[TopicPartition, int]],
        wakeup: Callable[[], None] = lambda: None,
        group_instance_id: str | None = None,
        client_id: str | None = None,
        session_timeout_ms: int = 45000,
        heartbeat_interval_ms: int = 3000,
        max_poll_interval_ms: int = 300000,
        partition_assignment_strategy: Sequence[str] = ("range",),
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5000,
        retry_backoff_ms: float = 100,
        request_timeout_ms: int = 30000,
    ) -> None:
        if not group_id:
            raise ValueError("group.id must not be empty")
        if group_instance_id is not None and not group_instance_id:
            raise ValueError("group.instance.id must not be empty")
        if heartbeat_interval_ms <= 0 or heartbeat_interval_ms >= session_timeout_ms:
            raise ValueError("heartbeat.interval.ms must be positive and lower than session.timeout.ms")
        if max_poll_interval_ms <= 0 or auto_commit_interval_ms <= 0:
            raise ValueError("max.poll.interval.ms and auto.commit.interval.ms must be positive")
        strategies = list(partition_assignment_strategy)
        unknown = [s for s in strategies if s not in ASSIGNORS]
        if not strategies or unknown:
            raise ValueError(f"partition.assignment.strategy must name assignors among {', '.join(ASSIGNORS)}, "
                             f"not {strategies!r}")
        self.group_id = group_id
        self.group_instance_id = group_instance_id
        self.client_id = client_id or f"consumer-{group_id}-{next(_client_ids)}"
        self.session_timeout_ms = session_timeout_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.strategies = tuple(strategies)
        self.enable_auto_commit = enable_auto_commit
        self._auto_commit_interval_s = auto_commit_interval_ms / 1000
        self._retry_backoff_s = retry_backoff_ms / 1000
        self._request_timeout_s = request_timeout_ms / 1000
        self.join_timeout_s = max(self._request_timeout_s, max_poll_interval_ms / 1000 + JOIN_GROUP_TIMEOUT_LAPSE_S)
        self._cluster = cluster
        self.client = GroupClient(cluster)
        self._join_config = JoinConfig(group_id, group_instance_id, self.client_id, session_timeout_ms,
                                       max_poll_interval_ms, self.join_timeout_s)
        self._assign = assign
        self._consumed = consumed
        self._wakeup = wakeup
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._heartbeat = HeartbeatThread(
            self.client, group_id, group_instance_id, heartbeat_interval_ms / 1000, session_timeout_ms / 1000,
            max_poll_interval_ms / 1000, self._request_timeout_s, self._report,
        )
        # The group state, owned by the consumer's thread.
        self._coordinator: Coordinator | None = None
        self._generation = Generation()
        self._leader_id = ""
        self._state = MemberState.UNJOINED
        self._subscription: tuple[str, ...] = ()
        self._listener: ConsumerRebalanceListener | None = None
        self._assignment: tuple[TopicPartition, ...] = ()
        self._last_assignment: tuple[TopicPartition, ...] = ()  # for the sticky assignor's user data
        self._round: RebalanceRound | None = None
        self._rejoin_reason: str | None = None
        self._needs_join_prepare = True
        self._prepare_deadline: float | None = None  # until when the commit before a rebalance is retried
        self._retry_at = 0.0
        self._next_auto_commit = time.monotonic() + self._auto_commit_interval_s
        self._fatal: KafkaError | None = None
        self._last_find_error: Errors | None = None
        self._closed = False

    # -- what people and tests look at ------------------------------------------------------------

    def state(self) -> GroupState:
        state = self._round.state if self._round is not None else self._state
        return GroupState(
            group_id=self.group_id, group_instance_id=self.group_instance_id, client_id=self.client_id, state=state,
            coordinator=self._coordinator, member_id=self._generation.member_id,
            generation_id=self._generation.generation_id, leader_id=self._leader_id,
            is_leader=bool(self._leader_id) and self._leader_id == self._generation.member_id,
            protocol=self._generation.protocol, subscription=self._subscription, assignment=self._assignment,
            rejoin_reason=self._rejoin_reason,
        )

    @property
    def subscribed(self) -> bool:
        return bool(self._subscription)

    def rejoin_needed(self) -> bool:
        return self.subscribed and (self._round is not None or self._rejoin_reason is not None
                                    or self._state is not MemberState.STABLE)

    def next_wakeup(self) -> float:
        """When poll() should come back here even if no fetch answers: the next auto-commit, and
        well before a long wait inside poll() could pass for not polling (max.poll.interval.ms)."""
        wake = self._heartbeat.last_poll + self.max_poll_interval_ms / 2000
        return min(wake, self._next_auto_commit) if self.enable_auto_commit else wake

    # -- subscription -----------------------------------------------------------------------------

    def subscribe(self, topics: Sequence[str], listener: ConsumerRebalanceListener | None) -> None:
        topics = tuple(dict.fromkeys(topics))
        self._listener = listener
        if topics != self._subscription:
            old, self._subscription = self._subscription, topics
            if old and self._state is not MemberState.UNJOINED:
                self._request_rejoin(f"the subscription changed from {','.join(old)} to {','.join(topics)}")

    def unsubscribe(self) -> None:
        """Kafka's unsubscribe(): revoke, leave the group (a dynamic member), forget the generation."""
        if self.subscribed:
            self._give_up_partitions()
            self._maybe_leave_group("the consumer unsubscribed from all topics")
        self._subscription, self._listener = (), None

    # -- poll ----------------------------------------------------------------------------------

    def record_poll(self) -> None:
        self._heartbeat.record_poll()

    def poll(self, deadline: float) -> bool:
        """Kafka's ConsumerCoordinator.poll: handle what the heartbeat thread and async commits
        reported; if subscribed, join the group when needed, waiting no longer than `deadline`;
        commit automatically when due. True when the consumer may fetch its assignment."""
        self._check_fatal()
        self.record_poll()  # each pass of the consumer's poll loop: the application is in poll()
        self._handle_events()
        if self.subscribed:
            self._ensure_coordinator_known()
            if not self._ensure_active_group(deadline):
                return False
        self._maybe_auto_commit()
        return True

    def _ensure_coordinator_known(self) -> None:
        """Kafka's ensureCoordinatorReady for a member between rebalances: once the coordinator is
        lost, look for it (every retry.backoff.ms) and heartbeat there with the same generation."""
        if self._coordinator is None and self._state is MemberState.STABLE and self._round is None \
                and time.monotonic() >= self._retry_at:
            self._find_coordinator()

    def _ensure_active_group(self, deadline: float) -> bool:
        while self.rejoin_needed():
            if self._round is None:
                now = time.monotonic()
                if now < self._retry_at:
                    if self._retry_at > deadline:
                        return False
                    time.sleep(self._retry_at - now)
                    continue
                if self._coordinator is None and not self._find_coordinator():
                    continue
                if self._needs_join_prepare:
                    if not self._on_join_prepare(deadline):
                        return False  # the commit before the rebalance waits for a coordinator
                    self._needs_join_prepare = False
                    if self._coordinator is None:
                        continue  # the commit before the rebalance lost it
                self._start_round()
            round_ = self._round
            assert round_ is not None
            # Not waiting longer than half of max.poll.interval.ms at once: this wait is a poll too.
            step_deadline = min(deadline, time.monotonic() + self.max_poll_interval_ms / 2000)
            outcome = round_.advance(step_deadline)
            while isinstance(outcome, NeedsAssignment):
                outcome = self._lead(round_, outcome, step_deadline)
            self.record_poll()
            if round_.heartbeat_target is not None and outcome is None:
                # Between the join and the sync answers the coordinator expects heartbeats.
                self._heartbeat.start(round_.heartbeat_target)
            if outcome is None:
                if step_deadline < deadline:
                    continue
                return False
            self._round = None
            if isinstance(outcome, Failed):
                self._on_round_failed(outcome)
            else:
                self._on_join_complete(round_.coordinator, outcome)
            self._handle_events()
        return True

    def _find_coordinator(self) -> bool:
        try:
            coordinator = self.client.find_coordinator(self.group_id)
        except KafkaError as e:
            if reaction_for(GroupApi.FIND_COORDINATOR, e.error) is Reaction.FATAL:
                raise
            # Once per kind of failure: it repeats every retry.backoff.ms while no coordinator is up.
            level = logging.DEBUG if e.error is self._last_find_error else logging.INFO
            self._last_find_error = e.error
            log.log(level, "FindCoordinator for group %s failed: %s; again every %.0f ms", self.group_id, e,
                    self._retry_backoff_s * 1000)
            self._retry_at = time.monotonic() + self._retry_backoff_s
            return False
        self._last_find_error = None
        self._coordinator_found(coordinator)
        return True

    def _ensure_coordinator(self) -> Coordinator:
        if self._coordinator is None:
            self._coordinator_found(self.client.find_coordinator(self.group_id))
        assert self._coordinator is not None
        return self._coordinator

    def _coordinator_found(self, coordinator: Coordinator) -> None:
        """A member between rebalances heartbeats to the coordinator found, with its generation."""
        self._coordinator = coordinator
        log.info("Discovered group coordinator %s for group %s", coordinator, self.group_id)
        if self._state is MemberState.STABLE and self._round is None:
            self._heartbeat.start(HeartbeatTarget(coordinator, self._generation))

    def _start_round(self) -> None:
        assert self._coordinator is not None
        reason, self._rejoin_reason = self._rejoin_reason, None
        log.info("(Re-)joining group %s%s", self.group_id, f" (reason: {reason})" if reason else "")
        self._heartbeat.stop()
        protocols = join_protocols(self.strategies, self._subscription, self._generation.generation_id,
                                   self._last_assignment)
        self._round = RebalanceRound(self.client, self._join_config, self._coordinator, self._generation.member_id,
                                     protocols)

    def _lead(self, round_: RebalanceRound, needed: NeedsAssignment, deadline: float
              ) -> Joined | Failed | NeedsAssignment | None:
        """The leader's part of a round, here rather than in the round: it blocks on metadata IO."""
        try:
            assignments = self.assign_as_leader(needed)
        except KafkaError as e:
            return round_.fail(e)
        round_.assigned(assignments)
        return round_.advance(deadline)

    def assign_as_leader(self, needed: NeedsAssignment) -> dict[str, bytes]:
        """Run the assignor the group voted for over every member's subscription (the leader's job)."""
        try:
            subscriptions = group_subscriptions(needed.members)
        except ValueError as e:
            raise KafkaError(Errors.INCONSISTENT_GROUP_PROTOCOL, f"a member's subscription does not parse: {e}") \
                from None
        if needed.protocol not in ASSIGNORS:
            raise KafkaError(Errors.INCONSISTENT_GROUP_PROTOCOL,
                             f"coordinator selected invalid assignment protocol: {needed.protocol}")
        topics = subscribed_topics(subscriptions)
        self._cluster.refresh(topics)  # KafkaError (retriable) if no broker answers
        counts = {t: len(self._cluster.partitions(t) or {}) for t in topics}
        assignment = leader_assignment(needed.protocol, subscriptions, counts)
        log.info("Finished assignment for group %s at generation %d with %s: %s", self.group_id,
                 needed.generation_id, needed.protocol,
                 "; ".join(f"{m}: {format_partitions(tps)}" for m, tps in assignment.items()))
        return {member: serialize_assignment(tps) for member, tps in assignment.items()}

    def _on_round_failed(self, failed: Failed) -> None:
        self._heartbeat.stop()
        self._state = MemberState.UNJOINED
        if failed.member_id != self._generation.member_id:
            self._generation = replace(self._generation, member_id=failed.member_id)
        log.info("%s of group %s failed: %s", failed.api, self.group_id, failed.error)
        self._react(failed.api, failed.error, self._generation)

    def _on_join_complete(self, coordinator: Coordinator, joined: Joined) -> None:
        self._generation, self._leader_id = joined.generation, joined.leader_id
        self._state = MemberState.STABLE
        self._assignment = self._last_assignment = joined.assignment
        self._needs_join_prepare = True
        self._heartbeat.start(HeartbeatTarget(coordinator, joined.generation))
        role = "leader" if joined.leader_id == joined.generation.member_id else "follower"
        log.info("joined group %s generation %d as %s (member id %s), assignment: %s", self.group_id,
                 joined.generation.generation_id, role, joined.generation.member_id,
                 format_partitions(joined.assignment))
        self._assign(joined.assignment)
        if self._listener is not None:
            self._listener.on_partitions_assigned(set(joined.assignment))

    def _on_join_prepare(self, deadline: float) -> bool:
        """Kafka's onJoinPrepare, eager: commit (if enable.auto.commit and the generation still
        holds), then revoke every partition; or call them lost if the generation was reset. False
        while the commit waits for a coordinator: the partitions are kept (not fetched) meanwhile."""
        if self.enable_auto_commit and not self._generation.lost and not self._commit_before_rebalance(deadline):
            return False
        self._prepare_deadline = None
        self._give_up_partitions()
        return True

    def _give_up_partitions(self) -> None:
        """The partitions of the last join are revoked, or lost if the generation was reset since
        (never both, never twice), and the consumer stops fetching them."""
        partitions = set(self._assignment)
        try:
            if self._generation.lost:
                if partitions:
                    log.info("Lost previously assigned partitions %s of group %s (the generation was reset)",
                             format_partitions(partitions), self.group_id)
                    if self._listener is not None:
                        self._listener.on_partitions_lost(partitions)
            elif self._needs_join_prepare:  # a join completed and nothing was revoked since
                log.info("Revoking previously assigned partitions %s of group %s", format_partitions(partitions),
                         self.group_id)
                if self._listener is not None:
                    self._listener.on_partitions_revoked(partitions)
        finally:
            self._assignment = ()
            self._assign(())

    def _commit_before_rebalance(self, deadline: float) -> bool:
        """Done (True) once committed, or given up. As Kafka's, a commit that fails because the
        coordinator is lost is tried again, over as many polls as it takes, for up to the rebalance
        timeout (max.poll.interval.ms): the member that gets the partitions next starts from it."""
        offsets = self._consumed()
        if not offsets:
            return True
        now = time.monotonic()
        if self._prepare_deadline is None:
            self._prepare_deadline = now + self.max_poll_interval_ms / 1000
        try:
            self.commit_sync(offsets, max(min(deadline, self._prepare_deadline), now + self._retry_backoff_s))
        except KafkaError as e:
            if e.error in COORDINATOR_LOST and not isinstance(e, CommitFailedError) \
                    and time.monotonic() < self._prepare_deadline:
                return False
            # At least once still holds: the next owner reads from the last commit.
            log.warning("Synchronous auto-commit of offsets %s before the rebalance of group %s failed: %s",
                        _format_offsets(offsets), self.group_id, e)
        return True

    def _maybe_leave_group(self, reason: str) -> None:
        """LeaveGroup for a dynamic member (a static one keeps its place until session.timeout.ms,
        KIP-345); then the member forgets its generation."""
        if self._round is not None:
            self._round.cancel()
            self._round = None
        self._heartbeat.stop()
        coordinator, generation = self._coordinator, self._generation
        if self.group_instance_id is None and coordinator is not None and generation.member_id:
            log.info("Member %s sending LeaveGroup request to coordinator %s of group %s due to %s",
                     generation.member_id, coordinator, self.group_id, reason)
            self.client.leave_group(coordinator, self.group_id, generation.member_id, self._request_timeout_s)
        self._reset_generation(reset_member_id=True, reason=reason, quiet=True)
        self._state = MemberState.UNJOINED
        self._rejoin_reason = None
        self._needs_join_prepare = True

    # -- reactions -------------------------------------------------------------------------------

    def _react(self, api: str, error: KafkaError, generation: Generation) -> None:
        """Apply the reaction the table gives; FATAL raises. A reset applies only if the generation
        it concerns is still ours (an old answer must not undo a newer join)."""
        reaction = reaction_for(api, error.error)
        current = generation == self._generation
        if reaction is Reaction.FIND_COORDINATOR:
            self.coordinator_dead(f"{api}: {error}")
            self._retry_at = time.monotonic() + self._retry_backoff_s
        elif reaction is Reaction.RETRY:
            self._retry_at = time.monotonic() + self._retry_backoff_s
        elif reaction is Reaction.REJOIN_NOW or reaction is Reaction.REJOIN:
            if current:
                self._request_rejoin(f"{api} answered {error.error.name}")
        elif reaction is Reaction.RESET_MEMBER or reaction is Reaction.RESET_GENERATION:
            if current:
                self._reset_generation(reaction is Reaction.RESET_MEMBER, f"{error.error.name} in {api}")
                self._request_rejoin(f"{api} answered {error.error.name}")
        else:
            if error.error is Errors.FENCED_INSTANCE_ID:
                log.error("group %s: group.instance.id %s was fenced by another member; this consumer is "
                          "no longer usable", self.group_id, self.group_instance_id)
                self._fatal = error
            raise error

    def _request_rejoin(self, reason: str) -> None:
        if not self.subscribed:
            return
        if self._rejoin_reason is None:
            log.info("Request joining group %s due to: %s", self.group_id, reason)
            self._rejoin_reason = reason

    def _reset_generation(self, reset_member_id: bool, reason: str, quiet: bool = False) -> None:
        if not quiet:
            log.info("Resetting generation%s of group %s due to: %s", " and member id" if reset_member_id else "",
                     self.group_id, reason)
        member_id = UNKNOWN_MEMBER_ID if reset_member_id else self._generation.member_id
        self._generation = Generation(NO_GENERATION, member_id, None)
        self._leader_id = ""
        self._heartbeat.stop()
        self._state = MemberState.UNJOINED

    def coordinator_dead(self, cause: str) -> None:
        """Kafka's markCoordinatorUnknown: heartbeats stop until the coordinator is found again; the
        generation, the assignment and the fetching of it stay (see the module docstring)."""
        if self._coordinator is not None:
            log.info("Group coordinator %s of group %s is unavailable or invalid due to %s, will attempt "
                     "rediscovery", self._coordinator, self.group_id, cause)
            self._coordinator = None
        self._heartbeat.stop()

    def _report(self, event: object) -> None:
        self._events.put(event)
        self._wakeup()

    def _handle_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, CommitDone):
                self._on_async_commit_done(event)
                continue
            assert isinstance(event, HeartbeatFailed | PollTimeout)
            if event.target.generation != self._generation or event.target.coordinator != self._coordinator:
                continue  # about a generation or coordinator this member has moved on from
            if isinstance(event, PollTimeout):
                self._reset_generation(True, "the consumer poll timeout expired (max.poll.interval.ms)")
                self._request_rejoin("the consumer poll timeout expired")
            else:
                self._react(GroupApi.HEARTBEAT, event.error, event.target.generation)

    def _check_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise RuntimeError("the consumer is closed")

    # -- offsets -------------------------------------------------------------------------------

    def _commit_generation(self) -> Generation:
        """The generation a commit carries: the current one when subscribed (CommitFailedError in the
        middle of a rebalance), none (-1, "") for manually assigned partitions."""
        if not self.subscribed:
            return Generation()
        if self._round is not None or self._state is not MemberState.STABLE:
            raise KafkaError(Errors.REBALANCE_IN_PROGRESS,
                             f"group {self.group_id} is rebalancing; offsets can be committed after poll() "
                             "completed the rejoin")
        return self._generation

    def _commit_request(self, offsets: Mapping[TopicPartition, int], generation: Generation
                        ) -> kafka_pb2.OffsetCommitRequest:
        return offset_commit_request(offsets, group_id=self.group_id, generation_id=generation.generation_id,
                                     member_id=generation.member_id, group_instance_id=self.group_instance_id)

    def _on_commit_response(self, response: kafka_pb2.OffsetCommitResponse, generation: Generation,
                            offsets: Mapping[TopicPartition, int]) -> None:
        error = offset_commit_error(response)
        if error is not Errors.NONE:
            self._on_commit_error(KafkaError(error, f"OffsetCommit of {_format_offsets(offsets)}"), generation)
        log.debug("Committed offsets %s of group %s", _format_offsets(offsets), self.group_id)

    def _on_commit_error(self, error: KafkaError, generation: Generation) -> NoReturn:
        """React as the table says, then raise: CommitFailedError when the group moved on."""
        reaction = reaction_for(GroupApi.OFFSET_COMMIT, error.error)
        self._react(GroupApi.OFFSET_COMMIT, error, generation)  # raises if FATAL
        if reaction in (Reaction.RESET_MEMBER, Reaction.RESET_GENERATION, Reaction.REJOIN):
            raise CommitFailedError(error.error, error.error.name)
        raise error

    def commit_sync(self, offsets: Mapping[TopicPartition, int], deadline: float) -> None:
        """Commit `offsets` (the next offset to read of each partition), retrying a lost or loading
        coordinator until `deadline`. CommitFailedError if the group moved on."""
        offsets = dict(offsets)
        if not offsets:
            return
        while True:
            self._check_fatal()
            generation = self._commit_generation()
            request = self._commit_request(offsets, generation)
            try:
                coordinator = self._ensure_coordinator()
                try:
                    response = self.client.call(coordinator, "OffsetCommit", request, self._request_timeout_s)
                except KafkaError as e:
                    self._on_commit_error(e, generation)
                self._on_commit_response(response, generation, offsets)
                return
            except KafkaError as e:
                if isinstance(e, CommitFailedError) or not e.retriable \
                        or time.monotonic() + self._retry_backoff_s >= deadline:
                    raise
                log.info("OffsetCommit of group %s failed: %s; again in %.0f ms", self.group_id, e,
                         self._retry_backoff_s * 1000)
                time.sleep(self._retry_backoff_s)

    def commit_async(self, offsets: Mapping[TopicPartition, int],
                     callback: Callable[[dict[TopicPartition, int], Exception | None], None] | None = None) -> None:
        """Send an OffsetCommit and return; the outcome reaches `callback` (or the log) in a later
        poll(), in the consumer's thread. Not retried, as Kafka's."""
        offsets = dict(offsets)
        if not offsets:
            return
        try:
            self._check_fatal()
            generation = self._commit_generation()
            request = self._commit_request(offsets, generation)
            coordinator = self._ensure_coordinator()
        except KafkaError as e:
            self._complete_async(offsets, callback, e)
            return
        call = self.client.stub(coordinator).OffsetCommit.future(request, timeout=self._request_timeout_s)
        done = CommitDone(generation, offsets, call, callback)
        call.add_done_callback(lambda _: self._report(done))

    def _on_async_commit_done(self, done: CommitDone) -> None:
        try:
            try:
                response = done.call.result()
            except (grpc.RpcError, grpc.FutureCancelledError) as e:
                error = transport_error(e, f"OffsetCommit to {self._coordinator}")
                self._on_commit_error(error, done.generation)
            else:
                self._on_commit_response(response, done.generation, done.offsets)
        except KafkaError as e:
            if e.error is Errors.FENCED_INSTANCE_ID:
                raise
            self._complete_async(done.offsets, done.callback, e)
            return
        self._complete_async(done.offsets, done.callback, None)

    def _complete_async(self, offsets: dict[TopicPartition, int],
                        callback: Callable[[dict[TopicPartition, int], Exception | None], None] | None,
                        error: Exception | None) -> None:
        if callback is not None:
            callback(offsets, error)
        elif error is not None:
            log.warning("Asynchronous commit of offsets %s of group %s failed: %s", _format_offsets(offsets),
                        self.group_id, error)

    def _maybe_auto_commit(self) -> None:
        if not self.enable_auto_commit or time.monotonic() < self._next_auto_commit:
            return
        self._next_auto_commit = time.monotonic() + self._auto_commit_interval_s
        if self.subscribed and self.rejoin_needed():
            return  # the commit before the rebalance takes care of it
        offsets = self._consumed()
        if offsets:
            self.commit_async(offsets)

    def fetch_committed(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """One OffsetFetch: the committed offsets of `partitions` that have one. KafkaError on failure
        (retriable ones after marking the coordinator unknown if it was lost)."""
        self._check_fatal()
        request = offset_fetch_request(self.group_id, partitions)
        try:
            coordinator = self._ensure_coordinator()
            response = self.client.call(coordinator, "OffsetFetch", request, self._request_timeout_s)
        except KafkaError as e:
            if reaction_for(GroupApi.OFFSET_FETCH, e.error) is Reaction.FIND_COORDINATOR:
                self.coordinator_dead(f"OffsetFetch: {e}")
            raise
        error = Errors.for_code(response.error_code)
        if error is not Errors.NONE:
            if reaction_for(GroupApi.OFFSET_FETCH, error) is Reaction.FIND_COORDINATOR:
                self.coordinator_dead(f"OffsetFetch answered {error.name}")
            raise KafkaError(error, f"OffsetFetch of group {self.group_id}")
        found: dict[TopicPartition, int] = {}
        for topic in response.topics:
            for p in topic.partitions:
                if p.error_code != Errors.NONE.code:
                    raise KafkaError(Errors.for_code(p.error_code), f"OffsetFetch of {topic.name}-{p.partition}")
                if p.committed_offset >= 0:
                    found[TopicPartition(topic.name, p.partition)] = p.committed_offset
        return found

    # -- close ---------------------------------------------------------------------------------

    def close(self, deadline: float) -> None:
        """Kafka's close: commit (enable.auto.commit), revoke, leave the group (a dynamic member)."""
        if self._closed:
            return
        try:
            if self._fatal is None:
                if self.enable_auto_commit:
                    offsets = self._consumed()
                    try:
                        self.commit_sync(offsets, deadline)
                    except KafkaError as e:
                        log.warning("Synchronous auto-commit of offsets %s of group %s on close failed: %s",
                                    _format_offsets(offsets), self.group_id, e)
                self._handle_events_quietly()
                if self.subscribed:
                    self._give_up_partitions()
                    self._maybe_leave_group("the consumer is being closed")
        finally:
            self._closed = True
            if self._round is not None:
                self._round.cancel()
            self._heartbeat.close()

    def _handle_events_quietly(self) -> None:
        try:
            self._handle_events()
        except KafkaError as e:
            log.info("group %s: %s while closing", self.group_id, e)


def _format_offsets(offsets: Mapping[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}@{offset}" for tp, offset in sorted(offsets.items())) or "none"

