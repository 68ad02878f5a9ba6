"""The fetch path (Kafka's ReplicaManager.fetchMessages and DelayedFetch): reads for consumers
(below the high watermark) and followers (whose fetch offsets move the high watermark and decide
the ISR), waiting up to max_wait_ms for min_bytes; and the incremental fetch sessions of followers
(KIP-227, broker/fetch_session.py): a session reads only the partitions its request names, those
not idle at their last read, and those changed since its last fetch, as the log of changed
partitions tells; an idle partition costs nothing and counts as fetched by a caught-up follower.
A fetch that cannot be answered yet parks in the fetch purgatory (Kafka's DelayedFetch) as a future."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from broker.clock import now_ms
from broker.data_changes import DataChanges
from broker.delayed_operation import DelayedOperation, DelayedOperationPurgatory
from broker.fetch_session import (
    CachedPartition,
    FetchContext,
    FetchKind,
    FetchSession,
    FetchSessionCache,
    PartitionData,
)
from broker.log.unified_log import OffsetOutOfRangeError
from broker.metadata_cache import PartitionInfo
from broker.partition import Partition
from broker.replica_results import FetchRequestPartition, FetchResult
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors

if TYPE_CHECKING:
    from broker.replica_manager import ReplicaManager

R = TypeVar("R")


class DelayedFetch(DelayedOperation[R]):
    """A fetch waiting for min_bytes: `read(expired)` reads again and returns the answer, or None
    while it is still short and not expired."""

    def __init__(self, read: Callable[[bool], R | None], max_wait_ms: int) -> None:
        super().__init__(max_wait_ms)
        self._read = read

    def try_complete(self, expired: bool) -> bool:
        answer = self._read(expired)
        if answer is None:
            return False
        self.future.set_result(answer)
        return True


class FetchPath:
    def __init__(self, replicas: ReplicaManager, changes: DataChanges, fetch_session_cache_slots: int) -> None:
        self._replicas = replicas
        self._changes = changes
        # The cache is shared by the request threads; a session is used by one request at a time
        # (its epoch is bumped as the request is accepted), so only the cache needs the lock.
        self.fetch_sessions = FetchSessionCache(fetch_session_cache_slots)
        self._fetch_sessions_lock = threading.Lock()
        self.delayed_fetches = DelayedOperationPurgatory(f"delayed-fetch-{replicas.broker_id}", changes)

    def fetch_messages(
        self, replica_id: int, max_wait_ms: int, min_bytes: int, max_bytes: int,
        partitions: list[FetchRequestPartition],
    ) -> Future[dict[TopicPartition, FetchResult]]:
        """Kafka's fetchMessages: read now; if fewer than min_bytes are there, park (DelayedFetch)
        until enough arrive or max_wait_ms passes, then read again."""

        def read(expired: bool) -> dict[TopicPartition, FetchResult] | None:
            results = self._read(replica_id, max_bytes, partitions)
            size = sum(len(r.records) for r in results.values())
            errors = any(r.error is not Errors.NONE for r in results.values())
            return results if size >= min_bytes or errors or expired else None

        return self.delayed_fetches.try_complete_else_watch(DelayedFetch(read, max_wait_ms))

    def _read(
        self, replica_id: int, max_bytes: int, partitions: list[FetchRequestPartition]
    ) -> dict[TopicPartition, FetchResult]:
        results: dict[TopicPartition, FetchResult] = {}
        budget = max_bytes
        now = now_ms()
        for request in partitions:
            results[request.tp] = result = self._read_partition(replica_id, request, budget, now)[0]
            budget -= len(result.records)
        return results

    def _read_partition(
        self, replica_id: int, request: FetchRequestPartition | CachedPartition, budget: int, now: int
    ) -> tuple[FetchResult, Partition | None, PartitionInfo | None]:
        """One partition of a fetch; with the replica read and its state as it was before the
        read (a change made meanwhile makes a session read it again)."""
        tp = request.tp
        replica = self._replicas.partition(tp)
        state = replica.state if replica is not None else None
        error, partition = self._replicas.leader_at(tp, request.current_leader_epoch)
        if partition is None:
            return self._fetch_error(tp, error), None, None
        follower = replica_id >= 0
        if follower:
            moved, expand = partition.update_follower_fetch_state(replica_id, request.fetch_offset, now)
            if moved:
                self._changes.notify((tp,))
            if expand:
                self._replicas.isr.check_soon()
        start, high_watermark, log_end = partition.offsets()
        try:
            records = b"" if budget <= 0 else partition.read(
                request.fetch_offset, min(request.max_bytes, budget), up_to_high_watermark=not follower
            )
        except OffsetOutOfRangeError as e:
            return FetchResult(Errors.OFFSET_OUT_OF_RANGE, str(e), high_watermark, start, log_end), None, None
        result = FetchResult(
            Errors.NONE, "", high_watermark, start, log_end, records, partition.leader_id, partition.leader_epoch
        )
        return result, partition, state

    # -- fetch sessions (KIP-227) --------------------------------------------------------------

    def new_fetch_context(
        self, replica_id: int, session_id: int, session_epoch: int, named: dict[TopicPartition, PartitionData],
        forgotten: list[TopicPartition],
    ) -> FetchContext:
        """How to answer a fetch: without a session, opening one, or from one. Only followers open
        sessions; consumers fetch without."""
        with self._fetch_sessions_lock:
            context = self.fetch_sessions.new_context(
                replica_id, session_id, session_epoch, named, forgotten, now_ms(), may_open=replica_id >= 0
            )
        if context.kind is FetchKind.INCREMENTAL and forgotten:
            assert context.session is not None
            for cached in context.forgotten:
                if cached.replica is not None:
                    cached.replica.follower_left_session(replica_id, context.session.clock)
        return context

    def fetch_session_messages(
        self, context: FetchContext, max_wait_ms: int, min_bytes: int, max_bytes: int
    ) -> Future[tuple[int, dict[TopicPartition, FetchResult]]]:
        """A full fetch that opens a session (answered as a sessionless one, then cached) or an
        incremental one (answered once any partition has something new, or at max_wait_ms).
        Answers the session id to answer with and the results."""
        session = context.session
        assert session is not None and context.kind in (FetchKind.FULL, FetchKind.INCREMENTAL)
        full = context.kind is FetchKind.FULL

        def read(expired: bool) -> tuple[int, dict[TopicPartition, FetchResult]] | None:
            version, changed = (self._changes.version, None) if full else self._changes.since(session.changes_seen)
            results = self._read_session(session, max_bytes, now_ms(), changed, answer_all=full)
            session.changes_seen = version
            if not full:
                return (session.id, results) if results or expired else None
            size = sum(len(r.records) for r in results.values())
            if size < min_bytes and not expired and all(r.error is Errors.NONE for r in results.values()):
                return None
            with self._fetch_sessions_lock:
                return self.fetch_sessions.add(session, now_ms()), results

        return self.delayed_fetches.try_complete_else_watch(DelayedFetch(read, max_wait_ms))

    def _read_session(
        self, session: FetchSession, max_bytes: int, now: int, changed: set[TopicPartition] | None,
        answer_all: bool,
    ) -> dict[TopicPartition, FetchResult]:
        """Read the partitions of a session that may have something new (every one when changed
        is None), answering (unless answer_all) only those that do. A partition whose replica
        keeps the state it had at its last read, whose log ends at the fetch offset and whose
        high watermark and log start offset are those last sent is idle without a read; an idle
        partition's follower is caught up, now and at the session's later fetches while it stays
        unchanged (the session's clock)."""
        replica_id = session.replica_id
        clock = session.clock
        results: dict[TopicPartition, FetchResult] = {}
        budget = max_bytes
        for cached in session.to_read(changed):
            replica = cached.replica
            if (
                not answer_all
                and replica is not None
                and replica.state is cached.replica_state
                and replica.log.log_end_offset == cached.fetch_offset
                and replica.high_watermark == cached.high_watermark
                and replica.log.log_start_offset == cached.log_start_offset
            ):
                replica.follower_idle_in_session(replica_id, cached.fetch_offset, now, clock)
                session.read(cached.tp, idle=True, sent_records=False)
                continue
            result, partition, state = self._read_partition(replica_id, cached, budget, now)
            if cached.must_respond(result.error, bool(result.records), result.high_watermark,
                                   result.log_start_offset) or answer_all:
                results[cached.tp] = result
            idle = False
            if partition is not None:
                cached.replica, cached.replica_state = partition, state
                idle = not result.records and cached.fetch_offset == result.log_end_offset
                if idle:
                    partition.follower_idle_in_session(replica_id, cached.fetch_offset, now, clock)
            session.read(cached.tp, idle, bool(result.records))
            budget -= len(result.records)
        clock.last_fetch_ms = now
        return results

    def fetch_session_metrics(self) -> tuple[int, int, int, int]:
        """(sessions, partitions cached, evictions, incremental fetches)."""
        with self._fetch_sessions_lock:
            cache = self.fetch_sessions
            return len(cache.sessions), cache.partitions_cached(), cache.evictions, cache.incremental_fetches

    def _fetch_error(self, tp: TopicPartition, error: Errors) -> FetchResult:
        hint = self._replicas.not_leader(tp, error)
        return FetchResult(error, leader_id=hint.leader_id, leader_epoch=hint.leader_epoch)
