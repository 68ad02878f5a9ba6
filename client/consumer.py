"""KafkaConsumer: assign() partitions, seek(), poll() (Kafka's KafkaConsumer); with a `group_id`,
subscribe() to topics as a member of a consumer group, and commit offsets.

Without a group_id nothing changes from a group-less consumer: manual assignment, no commits.
With one, the group membership (coordinator, join, heartbeats, commits) is the job of the
ConsumerCoordinator (client/group/); poll() drives it: it joins when needed, fetches only the
current assignment, and never returns records of a partition after it was revoked. A partition newly
assigned (by the group or by assign()) starts at its committed offset, else by auto.offset.reset.

poll() sends one Fetch per leader for the assigned partitions that have a position and nothing
buffered, with the leader epoch the metadata gave (KIP-320), and returns the records at or after
each position: a fetch answers with whole batches, and the first may start before the position.
A fetch left unanswered when poll() returns stays in flight for the next poll().

A moved or fenced leader (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH,
LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION) or a broker that cannot be reached refreshes
the metadata and fetches the partition again after retry.backoff.ms. A position out of the
log's range (OFFSET_OUT_OF_RANGE) is reset by auto.offset.reset, as is a partition without one.

Unlike Kafka's, this consumer does not check its position against the new leader's log after a
leader change (OffsetsForLeaderEpoch, KIP-320's truncation detection): a position past the new
leader's log end comes back as OFFSET_OUT_OF_RANGE and is reset by auto.offset.reset.

A partition never stalls silently: one that makes no progress for stall.warning.ms of fetching
(its position does not move, and no fetch finds it caught up with the leader's high watermark)
gets one WARNING per episode naming it, its position and why (no leader known, a fetch to a
broker failing, a fetch left unanswered, a high watermark above the position but no records).
Kafka's consumer retries such failures and says so at DEBUG only.
Not thread-safe, as Kafka's.
"""

from __future__ import annotations

import logging
import queue
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import grpc

from broker.log.record_batch import CorruptRecordError, UnsupportedCompressionError, batches, records, validate
from client.cluster import INVALID_METADATA_ERRORS, ClusterMetadata, KafkaError
from client.group.consumer_coordinator import ConsumerCoordinator, ConsumerRebalanceListener
from client.group.member import GroupState
from client.group.wire import transport_error
from client.security import PLAINTEXT, ClientSecurity
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2

log = logging.getLogger(__name__)

EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
OFFSET_RESET_STRATEGIES = ("earliest", "latest", "none")
# How often poll() looks for stalled partitions: a pass over the assignment, no allocation.
STALL_CHECK_INTERVAL_S = 1.0
NO_LEADER = "no leader known"


class ConsumerRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass
class _PartitionState:
    position: int | None = None  # the offset of the next record poll() returns
    reset: str | None = None  # a pending reset: earliest or latest (seek_to_beginning/end)
    fetching: bool = False
    fetch_broker: int = -1  # where the fetch in flight went
    buffered: bool = False
    backoff_until: float = 0.0
    high_watermark: int = -1
    awaiting_committed: bool = False  # in a group: the committed offset is looked up first
    # When it last made progress (its position moved, or a fetch found it caught up), what went
    # wrong since, and whether poll() warned of it in this episode.
    progress_at: float = field(default_factory=time.monotonic)
    problem: str | None = None
    stall_warned: bool = False


def stall_warning(tp: TopicPartition, state: _PartitionState, now: float, window_s: float) -> str | None:
    """The warning to give about a partition that made no progress for `window_s`, or None (not
    stalled, or already warned of in this episode). The reason is the last failure seen, else
    what the partition waits for."""
    if state.stall_warned or now - state.progress_at < window_s:
        return None
    if state.position is None:
        where = "without a position"
    elif state.high_watermark >= 0:
        where = f"at position {state.position} (the leader's high watermark is {state.high_watermark})"
    else:
        where = f"at position {state.position}"
    if state.problem is not None:
        why = state.problem
    elif state.fetching:
        why = f"no answer from broker {state.fetch_broker} to its fetch"
    elif state.position is None:
        why = "waiting for the group's committed offset" if state.awaiting_committed else "its offset not found yet"
    elif state.high_watermark > state.position:
        why = "fetches bring no records below the high watermark"
    else:
        why = "no fetch answered"
    return f"Partition {tp} has made no progress for {now - state.progress_at:.0f} s {where}: {why}"


def _restart_stall_clock(state: _PartitionState) -> None:
    """A seek starts the partition afresh: a new episode."""
    state.progress_at, state.problem, state.stall_warned = time.monotonic(), None, False


class _Fetch(NamedTuple):
    broker_id: int
    offsets: dict[TopicPartition, int]
    call: grpc.Future


@dataclass
class _Completed:
    """A partition's fetched records not yet returned by poll()."""

    tp: TopicPartition
    records: list[ConsumerRecord]
    index: int
    next_offset: int  # where the fetch ended: past the last batch, gaps included


class KafkaConsumer:
    """A consumer of assigned partitions. Configuration keeps Kafka's names, in snake case:

    - auto_offset_reset (`auto.offset.reset`): where a partition without a valid position starts,
      "earliest", "latest" or "none" (KafkaError instead).
    - fetch_max_wait_ms (`fetch.max.wait.ms`), fetch_min_bytes (`fetch.min.bytes`): a leader holds
      a Fetch until it has this many bytes or this time passed.
    - fetch_max_bytes (`fetch.max.bytes`), max_partition_fetch_bytes (`max.partition.fetch.bytes`):
      bytes per Fetch answer and per partition in it (a first batch larger than that still comes).
    - request_timeout_ms (`request.timeout.ms`), retry_backoff_ms (`retry.backoff.ms`).
    - max_poll_records (`max.poll.records`): records per poll(); the rest wait for the next one.
    - default_api_timeout_ms (`default.api.timeout.ms`): how long position() and the offsets
      look-ups may block.
    - check_crcs (`check.crcs`): verify each batch's CRC-32C.
    - stall_warning_ms (`stall.warning.ms`, minikafka's own, 30000): a partition that makes no
      progress for this long while poll() fetches is logged once, with why, as a WARNING.

    Consumer groups (all need `group_id`):

    - group_id (`group.id`), group_instance_id (`group.instance.id`, static membership: no
      LeaveGroup on close, a restart within the session timeout keeps the assignment), client_id
      (`client.id`, default consumer-<group>-<n>).
    - session_timeout_ms (`session.timeout.ms`, 45000), heartbeat_interval_ms
      (`heartbeat.interval.ms`, 3000), max_poll_interval_ms (`max.poll.interval.ms`, 300000: the
      rebalance timeout, and how long poll() may go uncalled before the member leaves).
    - partition_assignment_strategy (`partition.assignment.strategy`): assignor names in order of
      preference among range, roundrobin and sticky; default ["range"].
    - enable_auto_commit (`enable.auto.commit`, true), auto_commit_interval_ms
      (`auto.commit.interval.ms`, 5000): poll() commits the positions that often, and before each
      rebalance and on close.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        auto_offset_reset: str = "latest",
        fetch_max_wait_ms: int = 500,
        fetch_min_bytes: int = 1,
        fetch_max_bytes: int = 52428800,
        max_partition_fetch_bytes: int = 1048576,
        request_timeout_ms: int = 30000,
        retry_backoff_ms: float = 100,
        max_poll_records: int = 500,
        default_api_timeout_ms: int = 60000,
        check_crcs: bool = True,
        stall_warning_ms: int = 30000,
        group_id: str | None = None,
        group_instance_id: str | None = None,
        client_id: str | None = None,
        session_timeout_ms: int = 45000,
        heartbeat_interval_ms: int = 3000,
        max_poll_interval_ms: int = 300000,
        partition_assignment_strategy: Iterable[str] = ("range",),
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5000,
        security: ClientSecurity = PLAINTEXT,
    ) -> None:
        if auto_offset_reset not in OFFSET_RESET_STRATEGIES:
            raise ValueError(f"auto.offset.reset must be one of {', '.join(OFFSET_RESET_STRATEGIES)}, "
                             f"not {auto_offset_reset!r}")
        if max_poll_records < 1 or fetch_max_bytes < 1 or max_partition_fetch_bytes < 1:
            raise ValueError("max.poll.records, fetch.max.bytes and max.partition.fetch.bytes must be positive")
        self._auto_offset_reset = auto_offset_reset
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._fetch_min_bytes = fetch_min_bytes
        self._fetch_max_bytes = fetch_max_bytes
        self._max_partition_fetch_bytes = max_partition_fetch_bytes
        self._request_timeout_s = request_timeout_ms / 1000
        self._retry_backoff_s = retry_backoff_ms / 1000
        self._max_poll_records = max_poll_records
        self._default_api_timeout_s = default_api_timeout_ms / 1000
        self._check_crcs = check_crcs
        self._stall_warning_s = stall_warning_ms / 1000
        self._next_stall_check = time.monotonic() + STALL_CHECK_INTERVAL_S
        self._cluster = ClusterMetadata(bootstrap_servers, request_timeout_ms, security)
        self._assignment: dict[TopicPartition, _PartitionState] = {}
        self._buffer: deque[_Completed] = deque()
        # Fetch answers, and None from the coordinator's heartbeat thread to wake a waiting poll().
        self._answers: queue.SimpleQueue[_Fetch | None] = queue.SimpleQueue()
        self._metadata_due = True
        self._metadata_retry_at = 0.0
        self._closed = False
        self._coordinator: ConsumerCoordinator | None = None
        if group_id is not None:
            self._coordinator = ConsumerCoordinator(
                self._cluster, group_id, assign=self._assign_from_subscribed, consumed=self._consumed,
                wakeup=lambda: self._answers.put(None), group_instance_id=group_instance_id, client_id=client_id,
                session_timeout_ms=session_timeout_ms, heartbeat_interval_ms=heartbeat_interval_ms,
                max_poll_interval_ms=max_poll_interval_ms,
                partition_assignment_strategy=tuple(partition_assignment_strategy),
                enable_auto_commit=enable_auto_commit, auto_commit_interval_ms=auto_commit_interval_ms,
                retry_backoff_ms=retry_backoff_ms, request_timeout_ms=request_timeout_ms,
            )
        elif group_instance_id is not None:
            raise ValueError("group.instance.id needs group.id")

    # -- assignment and positions -------------------------------------------------------------

    def assign(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Read these partitions (and only these): Kafka's manual assignment, no group membership
        (with a group_id, offsets are still committed to and resumed from the group)."""
        if self._coordinator is not None and self._coordinator.subscribed:
            raise RuntimeError("assign() and subscribe() are mutually exclusive: unsubscribe() first")
        self._set_assignment(TopicPartition(topic, partition) for topic, partition in partitions)

    def _set_assignment(self, tps: Iterable[TopicPartition]) -> None:
        old = self._assignment
        in_group = self._coordinator is not None
        self._assignment = {tp: old.get(tp) or _PartitionState(awaiting_committed=in_group) for tp in tps}
        self._buffer = deque(c for c in self._buffer if c.tp in self._assignment)
        self._metadata_due = True

    def _assign_from_subscribed(self, tps: Iterable[TopicPartition]) -> None:
        """The group's assignment (empty: all revoked); what was buffered for others is dropped."""
        self._set_assignment(tps)

    def _consumed(self) -> dict[TopicPartition, int]:
        """The positions to commit (Kafka's allConsumed)."""
        return {tp: state.position for tp, state in self._assignment.items() if state.position is not None}

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    # -- consumer groups ---------------------------------------------------------------------------

    def _group(self, what: str) -> ConsumerCoordinator:
        if self._coordinator is None:
            raise ValueError(f"{what} needs a group_id (group.id)")
        return self._coordinator

    def subscribe(self, topics: Iterable[str], listener: ConsumerRebalanceListener | None = None) -> None:
        """Join the group for these topics: poll() joins, and the group leader's assignor shares
        their partitions among the members. `listener` hears of revoked and assigned partitions
        from within poll(). An empty list unsubscribes."""
        coordinator = self._group("subscribe()")
        names = list(dict.fromkeys(topics))
        if not names:
            self.unsubscribe()
            return
        if any(not isinstance(t, str) or not t for t in names):
            raise ValueError(f"topic names must be non-empty strings, not {names!r}")
        if not coordinator.subscribed and self._assignment:
            raise RuntimeError("subscribe() and assign() are mutually exclusive: unsubscribe() first")
        coordinator.subscribe(names, listener)
        self._metadata_due = True

    def subscription(self) -> set[str]:
        return set(self._coordinator.state().subscription) if self._coordinator is not None else set()

    def unsubscribe(self) -> None:
        """Leave the group (revoking the partitions first) and forget any assignment."""
        if self._coordinator is not None:
            self._coordinator.unsubscribe()
        self._set_assignment(())

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        """Kafka's commitSync: `offsets` (the next offset to read, per partition), by default the
        position of every assigned partition. Retries a lost coordinator until
        default.api.timeout.ms; CommitFailedError if the group rebalanced meanwhile."""
        coordinator = self._group("commit()")
        wanted = self._consumed() if offsets is None else {TopicPartition(*tp): o for tp, o in offsets.items()}
        coordinator.commit_sync(wanted, time.monotonic() + self._default_api_timeout_s)

    def commit_async(
        self, offsets: Mapping[tuple[str, int], int] | None = None,
        callback: Callable[[dict[TopicPartition, int], Exception | None], None] | None = None,
    ) -> None:
        """Kafka's commitAsync: send the commit and return; `callback(offsets, error)` is called from
        a later poll()."""
        coordinator = self._group("commit_async()")
        wanted = self._consumed() if offsets is None else {TopicPartition(*tp): o for tp, o in offsets.items()}
        coordinator.commit_async(wanted, callback)

    def committed(self, tp: tuple[str, int], timeout_ms: int | None = None) -> int | None:
        """The group's committed offset of `tp`, None if there is none."""
        coordinator = self._group("committed()")
        deadline = time.monotonic() + (self._default_api_timeout_s if timeout_ms is None else timeout_ms / 1000)
        partition = TopicPartition(*tp)
        while True:
            try:
                return coordinator.fetch_committed([partition]).get(partition)
            except KafkaError as e:
                if not e.retriable or time.monotonic() + self._retry_backoff_s >= deadline:
                    raise
                time.sleep(self._retry_backoff_s)

    def group_state(self) -> GroupState:
        """The member as it sees itself: coordinator, member id, generation, leader, assignor, assignment."""
        return self._group("group_state()").state()

    def _state(self, tp: tuple[str, int]) -> _PartitionState:
        state = self._assignment.get(TopicPartition(*tp))
        if state is None:
            raise ValueError(f"partition {tp[0]}-{tp[1]} is not assigned to this consumer")
        return state

    def _drop_buffered(self, tp: TopicPartition) -> None:
        self._buffer = deque(c for c in self._buffer if c.tp != tp)
        self._assignment[tp].buffered = False

    def seek(self, tp: tuple[str, int], offset: int) -> None:
        """The next poll() reads `tp` from `offset`."""
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        state = self._state(tp)
        state.position, state.reset = offset, None
        _restart_stall_clock(state)
        self._drop_buffered(TopicPartition(*tp))

    def _seek_to(self, strategy: str, partitions: Iterable[tuple[str, int]] | None) -> None:
        for tp in self._assignment if partitions is None else [TopicPartition(*tp) for tp in partitions]:
            state = self._state(tp)
            state.position, state.reset = None, strategy
            _restart_stall_clock(state)
            self._drop_buffered(tp)

    def seek_to_beginning(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """The log start of these partitions (all assigned ones by default), found at the next
        poll() or position()."""
        self._seek_to("earliest", partitions)

    def seek_to_end(self, partitions: Iterable[tuple[str, int]] | None = None) -> None:
        """The high watermark of these partitions, found at the next poll() or position()."""
        self._seek_to("latest", partitions)

    def position(self, tp: tuple[str, int], timeout_ms: int | None = None) -> int:
        """The offset of the next record poll() returns for `tp`; looked up if need be (KafkaError
        if that takes longer than default.api.timeout.ms)."""
        state = self._state(tp)
        deadline = time.monotonic() + (self._default_api_timeout_s if timeout_ms is None else timeout_ms / 1000)
        while state.position is None:
            self._refresh_metadata_if_due()
            self._refresh_committed_offsets()
            self._reset_positions()
            if state.position is not None:
                break
            if time.monotonic() + self._retry_backoff_s >= deadline:
                raise KafkaError(Errors.REQUEST_TIMED_OUT, f"no position found for {tp[0]}-{tp[1]} in time")
            time.sleep(self._retry_backoff_s)
        return state.position

    def _reset_positions(self) -> None:
        """One ListOffsets round for the partitions without a position (Kafka's resetPositionsIfNeeded)."""
        now = time.monotonic()
        wanted: dict[TopicPartition, int] = {}
        for tp, state in self._assignment.items():
            if state.position is not None or state.backoff_until > now:
                continue
            if state.awaiting_committed and not state.reset:
                continue  # the committed offset comes first
            strategy = state.reset or self._auto_offset_reset
            if strategy == "none":
                raise KafkaError(Errors.OFFSET_OUT_OF_RANGE,
                                 f"no position for {tp} and auto.offset.reset is none (NoOffsetForPartition)")
            wanted[tp] = EARLIEST_TIMESTAMP if strategy == "earliest" else LATEST_TIMESTAMP
        if not wanted:
            return
        found, failed = self._list_offsets_round(wanted)
        for tp, offset in found.items():
            state = self._assignment.get(tp)
            if state is not None and state.position is None:
                log.info("Resetting offset for partition %s to position %d", tp, offset)
                state.position, state.reset = offset, None
                self._progressed(tp, state)
        for tp in failed:
            self._assignment[tp].backoff_until = time.monotonic() + self._retry_backoff_s

    def _refresh_committed_offsets(self) -> None:
        """One OffsetFetch for the newly assigned partitions of a group consumer (Kafka's
        refreshCommittedOffsetsIfNeeded): the committed offset is the position; without one,
        auto.offset.reset decides. A seek() or a seek_to_*() in between wins."""
        if self._coordinator is None:
            return
        now = time.monotonic()
        wanted = [tp for tp, state in self._assignment.items()
                  if state.awaiting_committed and state.position is None and not state.reset
                  and state.backoff_until <= now]
        if not wanted:
            return
        try:
            committed = self._coordinator.fetch_committed(wanted)
        except KafkaError as e:
            if not e.retriable:
                raise
            log.info("Fetching committed offsets of %s failed: %s", ", ".join(map(str, wanted)), e)
            self._note_problem(wanted, f"looking up its committed offset failing: {e}")
            self._back_off(wanted)
            return
        for tp in wanted:
            state = self._assignment.get(tp)
            if state is None or state.position is not None or state.reset:
                continue
            state.awaiting_committed = False
            offset = committed.get(tp)
            if offset is not None:
                log.info("Setting offset for partition %s to the committed offset %d", tp, offset)
                state.position = offset
                self._progressed(tp, state)

    # -- metadata and offsets ----------------------------------------------------------------------

    def _refresh_metadata_if_due(self, extra: Iterable[str] = ()) -> None:
        now = time.monotonic()
        if not self._metadata_due or now < self._metadata_retry_at:
            return
        self._metadata_due = False
        self._metadata_retry_at = now + self._retry_backoff_s
        topics = {tp.topic for tp in self._assignment} | set(extra)
        if self._coordinator is not None:
            topics |= set(self._coordinator.state().subscription)
        if not topics:
            return
        try:
            self._cluster.refresh(topics)
        except KafkaError as e:
            log.warning("Metadata refresh failed: %s", e)
            self._metadata_due = True

    def partitions_for(self, topic: str) -> set[int] | None:
        """The topic's partitions; None if the cluster does not know it."""
        partitions = self._cluster.partitions(topic)
        if partitions is None:
            self._cluster.refresh([topic])
            partitions = self._cluster.partitions(topic)
        return None if partitions is None else set(partitions)

    def beginning_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        """Each partition's log start offset."""
        return self._list_offsets({TopicPartition(*tp): EARLIEST_TIMESTAMP for tp in partitions})

    def end_offsets(self, partitions: Iterable[tuple[str, int]]) -> dict[TopicPartition, int]:
        """Each partition's high watermark: the offset after the last record a consumer can read."""
        return self._list_offsets({TopicPartition(*tp): LATEST_TIMESTAMP for tp in partitions})

    def _list_offsets(self, wanted: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        deadline = time.monotonic() + self._default_api_timeout_s
        results: dict[TopicPartition, int] = {}
        topics = {tp.topic for tp in wanted}
        while True:
            if any(topic not in self._cluster.topics for topic in topics):
                self._metadata_due, self._metadata_retry_at = True, 0.0  # what we know may be old news
            self._refresh_metadata_if_due(topics)
            unknown = sorted(t for t in topics if t in self._cluster.unknown_topics)
            if unknown:
                raise KafkaError(Errors.UNKNOWN_TOPIC_OR_PARTITION, f"topic '{unknown[0]}' does not exist")
            found, failed = self._list_offsets_round({tp: ts for tp, ts in wanted.items() if tp not in results})
            results.update(found)
            if len(results) == len(wanted):
                return results
            if time.monotonic() + self._retry_backoff_s >= deadline:
                raise KafkaError(Errors.REQUEST_TIMED_OUT, "offsets of " + ", ".join(str(tp) for tp in failed)
                                 + f" not found within {self._default_api_timeout_s * 1000:.0f} ms")
            time.sleep(self._retry_backoff_s)

    def _list_offsets_round(
        self, wanted: dict[TopicPartition, int]
    ) -> tuple[dict[TopicPartition, int], list[TopicPartition]]:
        """ListOffsets to each leader at once; the offsets found, and the partitions to try again
        (after a metadata refresh). Errors that a retry cannot help raise KafkaError."""
        by_leader: dict[int, dict[TopicPartition, int]] = {}
        failed: list[TopicPartition] = []
        for tp, timestamp in wanted.items():
            leader = self._leader(tp)
            if leader is None:
                failed.append(tp)
            else:
                by_leader.setdefault(leader, {})[tp] = timestamp
        calls = []
        for leader, tps in by_leader.items():
            request = kafka_pb2.ListOffsetsRequest(replica_id=-1, topics=[
                kafka_pb2.ListOffsetsTopic(name=topic, partitions=[
                    kafka_pb2.ListOffsetsPartition(partition=tp.partition, current_leader_epoch=self._epoch(tp),
                                                   timestamp=timestamp)
                    for tp, timestamp in tps.items() if tp.topic == topic
                ])
                for topic in dict.fromkeys(tp.topic for tp in tps)
            ])
            stub = self._cluster.data_stub(leader)
            assert stub is not None  # _leader() checked the broker is known
            calls.append((leader, tps, stub.ListOffsets.future(request, timeout=self._request_timeout_s)))
        found: dict[TopicPartition, int] = {}
        for leader, tps, call in calls:
            try:
                response = call.result()
            except (grpc.RpcError, grpc.FutureCancelledError) as e:
                error = transport_error(e, f"broker {leader}")
                self._retriable_or_raise(error, tps)
                self._note_problem(tps, f"offset lookup at broker {leader} failing: {error}")
                failed.extend(tps)
                continue
            for topic in response.topics:
                for p in topic.partitions:
                    tp = TopicPartition(topic.name, p.partition)
                    if p.error_code == Errors.NONE.code:
                        found[tp] = p.offset
                    else:
                        error = KafkaError(Errors.for_code(p.error_code), p.error_message)
                        self._retriable_or_raise(error, [tp])
                        self._note_problem([tp], f"offset lookup at broker {leader} answered {error}")
                        failed.append(tp)
            failed.extend(tp for tp in tps if tp not in found and tp not in failed)
        return found, failed

    def _leader(self, tp: TopicPartition) -> int | None:
        info = self._cluster.leader(tp)
        if info is None or info.leader < 0 or info.leader not in self._cluster.brokers:
            self._metadata_due = True
            state = self._assignment.get(tp)
            if state is not None:
                state.problem = NO_LEADER if info is None or info.leader < 0 else \
                    f"its leader, broker {info.leader}, is not among the brokers the metadata lists"
            return None
        return info.leader

    def _epoch(self, tp: TopicPartition) -> int:
        info = self._cluster.leader(tp)
        return -1 if info is None else info.leader_epoch

    def _retriable_or_raise(self, error: KafkaError, tps: Iterable[TopicPartition]) -> None:
        if not error.retriable:
            raise error
        log.info("%s for %s: refreshing metadata", error, ", ".join(str(tp) for tp in tps))
        self._metadata_due = True

    # -- fetching --------------------------------------------------------------------------------

    def poll(self, timeout_ms: float = 0) -> list[ConsumerRecord]:
        """Records from the assigned partitions, at most max.poll.records, waiting up to
        `timeout_ms` for some to arrive. A group consumer joins (or rejoins) here first, calling
        the rebalance listener, and commits automatically when enable.auto.commit."""
        if self._closed:
            raise RuntimeError("the consumer is closed")
        coordinator = self._coordinator
        if not self._assignment and (coordinator is None or not coordinator.subscribed):
            raise RuntimeError("poll() needs partitions: assign() some or subscribe() to topics first")
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            if coordinator is not None and not coordinator.poll(deadline):
                return []  # still joining at the deadline
            self._warn_of_stalls(time.monotonic())
            taken = self._take()
            if taken:
                return taken
            self._refresh_metadata_if_due()
            self._refresh_committed_offsets()
            self._reset_positions()
            self._send_fetches()
            now = time.monotonic()
            if now >= deadline:
                return []
            try:
                fetch = self._answers.get(timeout=max(0.0, self._next_retry(deadline) - now))
            except queue.Empty:
                continue
            self._handle_answer(fetch)
            while True:
                try:
                    self._handle_answer(self._answers.get_nowait())
                except queue.Empty:
                    break

    def _handle_answer(self, fetch: _Fetch | None) -> None:
        if fetch is not None:  # None: the group coordinator has news, handled at the top of the loop
            self._handle_fetch(fetch)

    def _next_retry(self, deadline: float) -> float:
        """When waiting for an answer should stop to retry something that backed off."""
        wake = deadline
        for state in self._assignment.values():
            if state.backoff_until > time.monotonic():
                wake = min(wake, state.backoff_until)
        if self._metadata_due:
            wake = min(wake, max(self._metadata_retry_at, time.monotonic() + 0.001))
        if self._coordinator is not None:
            wake = min(wake, max(self._coordinator.next_wakeup(), time.monotonic() + 0.001))
        return min(wake, self._next_stall_check)

    def _warn_of_stalls(self, now: float) -> None:
        """Once a second in poll(): warn of each partition that stalled. Time outside poll() (not
        called, or joining the group) beyond that second does not count, as nothing is fetched
        then: a check that comes late moves every partition's last progress forward by the delay."""
        if now < self._next_stall_check:
            return
        late = now - self._next_stall_check
        self._next_stall_check = now + STALL_CHECK_INTERVAL_S
        for tp, state in self._assignment.items():
            if late > STALL_CHECK_INTERVAL_S:
                state.progress_at += late
            warning = stall_warning(tp, state, now, self._stall_warning_s)
            if warning is not None:
                state.stall_warned = True
                log.warning("%s", warning)

    def _progressed(self, tp: TopicPartition, state: _PartitionState) -> None:
        state.progress_at = time.monotonic()
        state.problem = None
        if state.stall_warned:
            state.stall_warned = False
            log.info("Partition %s makes progress again at position %s", tp, state.position)

    def _note_problem(self, tps: Iterable[TopicPartition], problem: str) -> None:
        for tp in tps:
            state = self._assignment.get(tp)
            if state is not None:
                state.problem = problem

    def _send_fetches(self) -> None:
        """Kafka's Fetcher.sendFetches: one Fetch per leader for its fetchable partitions."""
        now = time.monotonic()
        by_leader: dict[int, dict[TopicPartition, int]] = {}
        for tp, state in self._assignment.items():
            if state.position is None or state.fetching or state.buffered or state.backoff_until > now:
                continue
            leader = self._leader(tp)
            if leader is not None:
                by_leader.setdefault(leader, {})[tp] = state.position
        for leader, offsets in by_leader.items():
            request = kafka_pb2.FetchRequest(
                replica_id=-1, replica_epoch=-1, max_wait_ms=self._fetch_max_wait_ms, min_bytes=self._fetch_min_bytes,
                max_bytes=self._fetch_max_bytes, topics=[
                    kafka_pb2.FetchTopic(topic=topic, partitions=[
                        kafka_pb2.FetchPartition(
                            partition=tp.partition, current_leader_epoch=self._epoch(tp), fetch_offset=offset,
                            partition_max_bytes=self._max_partition_fetch_bytes,
                        )
                        for tp, offset in offsets.items() if tp.topic == topic
                    ])
                    for topic in dict.fromkeys(tp.topic for tp in offsets)
                ],
            )
            stub = self._cluster.data_stub(leader)
            assert stub is not None
            call = stub.Fetch.future(request, timeout=self._fetch_max_wait_ms / 1000 + self._request_timeout_s)
            for tp in offsets:
                state = self._assignment[tp]
                state.fetching, state.fetch_broker = True, leader
            fetch = _Fetch(leader, offsets, call)
            call.add_done_callback(lambda _, f=fetch: self._answers.put(f))

    def _handle_fetch(self, fetch: _Fetch) -> None:
        for tp in fetch.offsets:
            state = self._assignment.get(tp)
            if state is not None:
                state.fetching = False
        try:
            response = fetch.call.result()
        except (grpc.RpcError, grpc.FutureCancelledError) as e:
            if self._closed:
                return
            error = transport_error(e, f"broker {fetch.broker_id}")
            self._retriable_or_raise(error, fetch.offsets)
            self._note_problem(fetch.offsets, f"fetch to broker {fetch.broker_id} failing: {error}")
            self._back_off(fetch.offsets)
            return
        first_error: KafkaError | None = None
        for topic in response.topics:
            for p in topic.partitions:
                tp = TopicPartition(topic.topic, p.partition)
                state = self._assignment.get(tp)
                if state is None or state.reset is not None or state.position != fetch.offsets.get(tp):
                    continue  # unassigned or moved by seek() since: the answer is stale
                try:
                    self._handle_partition(tp, state, p, fetch.broker_id)
                except KafkaError as e:
                    first_error = first_error or e
        if first_error is not None:
            raise first_error

    def _handle_partition(
        self, tp: TopicPartition, state: _PartitionState, p: kafka_pb2.FetchPartitionResponse, broker_id: int
    ) -> None:
        error = Errors.for_code(p.error_code)
        if error is Errors.NONE:
            state.high_watermark = p.high_watermark
            if p.records:
                self._buffer_records(tp, state, p.records)
            assert state.position is not None  # fetched from it
            if state.buffered or p.high_watermark <= state.position:
                self._progressed(tp, state)  # records on their way, or nothing more to read
            else:
                state.problem = f"broker {broker_id} answers with no records below its high watermark"
            return
        state.problem = f"fetch from broker {broker_id} answered {error.name}"
        if error is Errors.OFFSET_OUT_OF_RANGE:
            if self._auto_offset_reset == "none":
                raise KafkaError(error, f"fetch position {state.position} is out of range for {tp} (log "
                                        f"{p.log_start_offset} to {p.high_watermark}) and auto.offset.reset is none")
            log.info("Fetch position %d is out of range for partition %s, resetting offset", state.position, tp)
            state.position, state.reset = None, self._auto_offset_reset
        elif error in INVALID_METADATA_ERRORS:
            if p.current_leader_id >= 0:
                self._cluster.update_leader(tp, p.current_leader_id, p.current_leader_epoch)
            log.info("%s fetching %s: refreshing metadata", error.name, tp)
            self._metadata_due = True
            self._back_off([tp])
        elif KafkaError(error).retriable:
            self._back_off([tp])
        else:
            raise KafkaError(error, p.error_message or f"fetching {tp}")

    def _back_off(self, tps: Iterable[TopicPartition]) -> None:
        until = time.monotonic() + self._retry_backoff_s
        for tp in tps:
            state = self._assignment.get(tp)
            if state is not None:
                state.backoff_until = until

    def _buffer_records(self, tp: TopicPartition, state: _PartitionState, data: bytes) -> None:
        """The records at or after the position, from the whole batches in `data`."""
        position = state.position
        assert position is not None
        out: list[ConsumerRecord] = []
        next_offset = position
        whole = False
        try:
            for pos, header in batches(data):
                whole = True
                if header.next_offset <= position:
                    continue
                if self._check_crcs:
                    validate(data, pos, header)
                for r in records(data, pos, header):
                    if r.offset >= position:
                        out.append(ConsumerRecord(tp.topic, tp.partition, r.offset, r.timestamp, r.key, r.value,
                                                  r.headers))
                next_offset = header.next_offset
        except (CorruptRecordError, UnsupportedCompressionError) as e:
            raise KafkaError(Errors.CORRUPT_MESSAGE, f"fetching {tp} at offset {position}: {e}") from None
        if not whole:
            raise KafkaError(Errors.MESSAGE_TOO_LARGE,
                             f"the batch at offset {position} of {tp} is larger than max.partition.fetch.bytes "
                             f"({self._max_partition_fetch_bytes}) or fetch.max.bytes allows")
        if out or next_offset > position:
            self._buffer.append(_Completed(tp, out, 0, next_offset))
            state.buffered = True

    def _take(self) -> list[ConsumerRecord]:
        """Up to max.poll.records buffered records, moving each partition's position past them."""
        taken: list[ConsumerRecord] = []
        while self._buffer and len(taken) < self._max_poll_records:
            completed = self._buffer[0]
            state = self._assignment[completed.tp]
            end = min(len(completed.records), completed.index + self._max_poll_records - len(taken))
            chunk = completed.records[completed.index:end]
            taken.extend(chunk)
            completed.index = end
            if chunk:
                state.position = chunk[-1].offset + 1
            if end == len(completed.records):
                self._buffer.popleft()
                state.position = max(state.position or 0, completed.next_offset)
                state.buffered = False
            self._progressed(completed.tp, state)
        return taken

    def close(self, timeout_ms: int | None = None) -> None:
        """A group consumer commits its positions (enable.auto.commit), revokes its partitions and
        leaves the group (unless static) first, within default.api.timeout.ms."""
        if self._closed:
            return
        try:
            if self._coordinator is not None:
                timeout_s = self._default_api_timeout_s if timeout_ms is None else timeout_ms / 1000
                self._coordinator.close(time.monotonic() + timeout_s)
        finally:
            self._closed = True
            self._cluster.close()

    def __enter__(self) -> KafkaConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
