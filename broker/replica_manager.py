"""The broker's replicas (Kafka's ReplicaManager): which partitions it leads or follows, as the
controller told it, and the data path through them.

Controller requests are checked as Kafka checks them: a request from a controller older than
the newest one seen is refused (STALE_CONTROLLER_EPOCH), one meant for an earlier incarnation
of this broker too (STALE_BROKER_EPOCH), and a partition state whose leader epoch is not newer
than the one the broker holds is ignored.

Produce appends to the leader's log; acks=all waits until the high watermark passes the
write. Fetch serves consumers (below the high watermark) and followers (whose fetch offsets
move the high watermark and decide the ISR). Followers fetch in incremental fetch sessions
(KIP-227, broker/fetch_session.py): a session reads only the partitions its request names, those
not idle at their last read, and those changed since its last fetch, as a log of changed
partitions tells; an idle partition costs nothing and counts as fetched by a caught-up follower.
Every change a fetch may answer (an append, a high watermark move, a leadership change) goes in
that log and wakes the waiting requests through one condition. The ISR thread is the one writer
of this broker's ISR changes to ZooKeeper.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from broker.fetch_session import (
    CachedPartition,
    FetchContext,
    FetchKind,
    FetchSession,
    FetchSessionCache,
    PartitionData,
)
from broker.log.checkpoint_file import read_offsets, write_offsets
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.log.record_batch import CorruptRecordError, UnsupportedCompressionError
from broker.log.unified_log import OffsetOutOfRangeError, RecordTooLargeError
from broker.metadata_cache import MetadataCache, PartitionInfo, TopicPartition
from broker.partition import Partition, caught_up_ms
from broker.replica_fetcher import ReplicaFetcherManager
from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)
state_change_log = logging.getLogger("broker.state.change")

EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
CONSUMER_REPLICA_ID = -1
HW_CHECKPOINT = "replication-offset-checkpoint"
# Changes kept for fetch sessions to catch up on; one that falls further behind reads every partition.
CHANGE_LOG_SIZE = 20000


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ProduceResult:
    error: Errors
    message: str = ""
    base_offset: int = -1
    log_start_offset: int = -1
    leader_id: int = -1
    leader_epoch: int = -1


@dataclass
class FetchRequestPartition:
    tp: TopicPartition
    fetch_offset: int
    current_leader_epoch: int = -1
    max_bytes: int = 1048576


@dataclass
class FetchResult:
    error: Errors
    message: str = ""
    high_watermark: int = -1
    log_start_offset: int = -1
    log_end_offset: int = -1
    records: bytes = b""
    leader_id: int = -1
    leader_epoch: int = -1


@dataclass
class _DelayedProduce:
    waiting: dict[TopicPartition, tuple[Partition, int, int]]
    results: dict[TopicPartition, ProduceResult]
    deadline: float
    timeout_ms: int
    future: Future[dict[TopicPartition, ProduceResult]]


@dataclass(frozen=True)
class IsrChange:
    """A leader's decision to change a partition's ISR, made over `state`, not yet written."""

    partition: Partition
    state: PartitionInfo
    new_isr: tuple[int, ...]
    joining: tuple[int, ...]
    leaving: tuple[int, ...]


@dataclass
class ReplicaManagerCounters:
    """Kafka's IsrShrinksPerSec and IsrExpandsPerSec, and the records follower truncations
    discarded, as running totals."""

    isr_shrinks: int = 0
    isr_expands: int = 0
    records_truncated: int = 0
    acknowledged_records_truncated: int = 0
    failed_isr_updates: int = 0
    truncations: list[str] = field(default_factory=list)


class ReplicaManager:
    def __init__(
        self,
        broker_id: int,
        broker_epoch: Callable[[], int],
        log_manager: LogManager,
        metadata_cache: MetadataCache | None = None,
        write_isr: Callable[[list[tuple[PartitionInfo, tuple[int, ...]]]], list[int | None]] | None = None,
        topic_config: Callable[[str], dict[str, str]] = lambda _topic: {},
        replica_lag_time_max_ms: int = 30000,
        fetcher_config: dict[str, int] | None = None,
        fetch_session_cache_slots: int = 1000,
    ) -> None:
        self.broker_id = broker_id
        self._broker_epoch = broker_epoch
        self.log_manager = log_manager
        self.metadata_cache = metadata_cache or MetadataCache()
        self._write_isr = write_isr
        self._topic_config = topic_config
        self.replica_lag_time_max_ms = replica_lag_time_max_ms
        self._lock = threading.Lock()  # the partitions map and the controller epoch
        # Every append, high watermark move and leadership change bumps the version and wakes
        # the requests waiting for one (Kafka's purgatories, reduced to one condition).
        self._data_changed = threading.Condition()
        self._data_version = 0
        # (data version, the partitions that changed, or None for any): what fetch sessions read.
        self._changes: deque[tuple[int, tuple[TopicPartition, ...] | None]] = deque(maxlen=CHANGE_LOG_SIZE)
        self._isr_check = threading.Event()
        self._stopped = threading.Event()
        self.controller_epoch = 0
        self._partitions: dict[TopicPartition, Partition] = {}
        self.counters = ReplicaManagerCounters()
        self.prefix = f"[Broker id={broker_id}]"
        self.fetchers = ReplicaFetcherManager(self, **(fetcher_config or {}))
        # The cache is shared by the request threads; a session is used by one request at a time
        # (its epoch is bumped as the request is accepted), so only the cache needs the lock.
        self.fetch_sessions = FetchSessionCache(fetch_session_cache_slots)
        self._fetch_sessions_lock = threading.Lock()
        self._checkpointed_high_watermarks: dict[TopicPartition, int] = {}
        self._delayed_produces: list[_DelayedProduce] = []
        self._delayed_produce_started = False
        self._delayed_produce_thread = threading.Thread(
            target=self._delayed_produce_loop, name=f"delayed-produce-{broker_id}", daemon=True
        )
        # Kafka's onLeadershipChange callbacks (the group coordinator's): called with the partitions
        # this broker now leads, with their leader epochs, and those it stopped leading.
        self.leadership_listeners: list[
            Callable[[list[tuple[TopicPartition, int]], list[TopicPartition]], None]
        ] = []
        self._high_watermarks_written: dict[TopicPartition, int] | None = None
        for directory in log_manager.log_dirs:
            self._checkpointed_high_watermarks.update(read_offsets(Path(directory) / HW_CHECKPOINT))

    # -- views ---------------------------------------------------------------------------------

    @property
    def broker_epoch(self) -> int:
        """This broker's epoch: the zxid that created its registration, as the controller knows it."""
        return self._broker_epoch()

    def partitions(self) -> dict[TopicPartition, PartitionInfo]:
        """Each hosted partition's state as the controller last sent it."""
        with self._lock:
            return {tp: p.state for tp, p in self._partitions.items() if p.state is not None}

    def partition(self, tp: TopicPartition) -> Partition | None:
        return self._partitions.get(tp)

    def leader_partitions(self) -> list[TopicPartition]:
        with self._lock:
            return sorted(tp for tp, p in self._partitions.items() if p.is_leader)

    def under_replicated_partitions(self) -> list[TopicPartition]:
        """Partitions this broker leads whose ISR is smaller than their replica set."""
        with self._lock:
            partitions = list(self._partitions.items())
        return sorted(tp for tp, p in partitions if p.is_leader and p.state and len(p.isr) < len(p.state.replicas))

    def notify_data_changed(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Records appended, a high watermark or log start moved, a replica's state changed: in
        the partitions `tps`, or anywhere when None."""
        with self._data_changed:
            self._data_version += 1
            self._changes.append((self._data_version, None if tps is None else tuple(tps)))
            self._data_changed.notify_all()

    def _changes_since(self, seen: int) -> tuple[int, set[TopicPartition] | None]:
        """The current data version and the partitions changed since version `seen`; None when
        that is no longer known, or anything may have changed."""
        with self._data_changed:
            version = self._data_version
            if seen >= version:
                return version, set()
            if not self._changes or self._changes[0][0] > seen + 1:
                return version, None
            changed: set[TopicPartition] = set()
            for at, tps in reversed(self._changes):
                if at <= seen:
                    break
                if tps is None:
                    return version, None
                changed.update(tps)
            return version, changed

    def _wait_for_change(self, seen: int, timeout_s: float) -> None:
        """Wait until something changed since version `seen`, or the timeout."""
        with self._data_changed:
            self._data_changed.wait_for(lambda: self._data_version != seen or self._stopped.is_set(), timeout_s)

    # -- controller requests -------------------------------------------------------------------

    def accept_controller_request(
        self, kind: str, controller_id: int, controller_epoch: int, broker_epoch: int
    ) -> Errors:
        with self._lock:
            return self._check_controller(kind, controller_id, controller_epoch, broker_epoch)

    def _check_controller(self, kind: str, controller_id: int, controller_epoch: int, broker_epoch: int) -> Errors:
        if controller_epoch < self.controller_epoch:
            log.warning(
                "%s Ignoring %s request from controller %d with controller epoch %d since it is older "
                "than the latest known controller epoch %d",
                self.prefix, kind, controller_id, controller_epoch, self.controller_epoch,
            )
            return Errors.STALE_CONTROLLER_EPOCH
        if broker_epoch != -1 and broker_epoch < self._broker_epoch():
            log.warning(
                "%s Ignoring %s request from controller %d: broker epoch %d is older than the current %d",
                self.prefix, kind, controller_id, broker_epoch, self._broker_epoch(),
            )
            return Errors.STALE_BROKER_EPOCH
        self.controller_epoch = controller_epoch
        return Errors.NONE

    def become_leader_or_follower(
        self, controller_id: int, controller_epoch: int, broker_epoch: int, states: list[PartitionInfo]
    ) -> tuple[Errors, dict[TopicPartition, Errors]]:
        with self._lock:
            error = self._check_controller("LeaderAndIsr", controller_id, controller_epoch, broker_epoch)
            if error is not Errors.NONE:
                return error, {}
            results: dict[TopicPartition, Errors] = {}
            leaders: list[tuple[Partition, PartitionInfo]] = []
            followers: list[tuple[Partition, PartitionInfo]] = []
            # Read once per topic and request: a new topic's LeaderAndIsr carries all its partitions.
            configs: dict[str, LogConfig] = {}
            for state in states:
                tp = (state.topic, state.partition)
                if self.broker_id not in state.replicas:
                    results[tp] = Errors.UNKNOWN_TOPIC_OR_PARTITION
                    continue
                current = self._partitions.get(tp)
                if current is not None and state.leader_epoch <= current.leader_epoch:
                    state_change_log.info(
                        "%s Ignoring LeaderAndIsr request from controller %d with correlation epoch %d for "
                        "partition %s since its associated leader epoch %d is not higher than the current "
                        "leader epoch %d",
                        self.prefix, controller_id, controller_epoch, current.name,
                        state.leader_epoch, current.leader_epoch,
                    )
                    results[tp] = Errors.STALE_CONTROLLER_EPOCH
                    continue
                try:
                    partition = current or self._create_partition(tp, configs)
                except Exception as e:  # a log that cannot be opened fails this partition only
                    log.error("%s Cannot open the log of %s-%d: %s", self.prefix, tp[0], tp[1], e)
                    results[tp] = Errors.UNKNOWN_SERVER_ERROR
                    continue
                (leaders if state.leader == self.broker_id else followers).append((partition, state))
                results[tp] = Errors.NONE
        now = now_ms()
        self.fetchers.remove_partitions([(p.topic, p.partition) for p, _ in leaders + followers])
        for partition, state in leaders:
            previous = partition.leader_epoch
            partition.make_leader(state, now)
            state_change_log.info(
                "%s Leader %s starts at leader epoch %d from offset %d with high watermark %d ISR %s. "
                "Previous leader epoch was %d.",
                self.prefix, partition.name, state.leader_epoch, partition.leader_epoch_start_offset,
                partition.high_watermark, list(state.isr), previous,
            )
        started = []
        for partition, state in followers:
            previous = partition.leader_epoch
            partition.make_follower(state)
            state_change_log.info(
                "%s Follower %s starts at leader epoch %d from offset %d with high watermark %d following "
                "leader %d. Previous leader epoch was %d.",
                self.prefix, partition.name, state.leader_epoch, partition.log.log_end_offset,
                partition.high_watermark, state.leader, previous,
            )
            if state.leader >= 0:
                started.append(partition)
        self.fetchers.add_partitions(started)
        self.notify_data_changed((p.topic, p.partition) for p, _ in leaders + followers)
        self._isr_check.set()
        self._leadership_changed(
            [((p.topic, p.partition), state.leader_epoch) for p, state in leaders],
            [(p.topic, p.partition) for p, _ in followers],
        )
        return Errors.NONE, results

    def _leadership_changed(self, leaders: list[tuple[TopicPartition, int]], others: list[TopicPartition]) -> None:
        if not leaders and not others:
            return
        for listener in self.leadership_listeners:
            try:
                listener(leaders, others)
            except Exception:
                log.exception("%s A leadership listener failed", self.prefix)

    def _create_partition(self, tp: TopicPartition, configs: dict[str, LogConfig]) -> Partition:
        config = configs.get(tp[0])
        if config is None:
            config = configs[tp[0]] = self.topic_log_config(tp[0])
        log_ = self.log_manager.get_or_create_log(tp, config)
        return self._partitions.setdefault(
            tp, Partition(tp[0], tp[1], self.broker_id, log_, config, self._checkpointed_high_watermarks.get(tp, 0))
        )

    def topic_log_config(self, topic: str) -> LogConfig:
        try:
            overrides = self._topic_config(topic)
        except Exception as e:
            log.warning("%s Cannot read the config of topic %s, using the broker's: %s", self.prefix, topic, e)
            overrides = {}
        config, problems = LogConfig.from_stored_properties(overrides, self.log_manager.default_config)
        for problem in problems:
            log.error("%s Topic %s keeps the broker's default for one config: %s", self.prefix, topic, problem)
        return config

    def stop_replicas(
        self, controller_id: int, controller_epoch: int, broker_epoch: int,
        partitions: list[tuple[str, int, int, bool]],
    ) -> tuple[Errors, dict[TopicPartition, Errors]]:
        """(topic, partition, leader epoch, delete) each; -2 as leader epoch means deletion."""
        with self._lock:
            error = self._check_controller("StopReplica", controller_id, controller_epoch, broker_epoch)
            if error is not Errors.NONE:
                return error, {}
            results: dict[TopicPartition, Errors] = {}
            stopped: list[tuple[TopicPartition, Partition | None, bool]] = []
            for topic, partition_id, leader_epoch, delete in partitions:
                tp = (topic, partition_id)
                current = self._partitions.get(tp)
                if current is not None and 0 <= leader_epoch < current.leader_epoch:
                    results[tp] = Errors.FENCED_LEADER_EPOCH
                    continue
                if delete:
                    self._partitions.pop(tp, None)
                stopped.append((tp, current, delete))
                results[tp] = Errors.NONE
        self.fetchers.remove_partitions([tp for tp, _, _ in stopped])
        for tp, current, delete in stopped:
            if current is not None and current.state is not None:
                # It no longer leads or follows anyone; a new state also tells the fetch sessions
                # that still name it to read it again (and answer with the error).
                with current.lock:
                    current.state = current.state._replace(leader=-1)
            if delete:
                self.log_manager.delete_log(tp)
            state_change_log.info("%s Stopped replica %s-%d (delete: %s)", self.prefix, tp[0], tp[1], delete)
        self.notify_data_changed(tp for tp, _, _ in stopped)
        self._leadership_changed([], [tp for tp, _, _ in stopped])
        return Errors.NONE, results

    # -- produce -------------------------------------------------------------------------------

    def append_records(
        self, acks: int, timeout_ms: int, entries: dict[TopicPartition, bytes]
    ) -> Future[dict[TopicPartition, ProduceResult]]:
        """Kafka's appendRecords: the records are in the leaders' logs, in call order, when this
        returns. The future has each partition's result: at once, or for acks=all once every ISR
        member has the records, timeout_ms passes or the broker stops, completed by the
        delayed-produce thread (Kafka's produce purgatory). No caller holds a thread meanwhile."""
        results, waiting = self._append_to_leaders(acks, entries)
        done: Future[dict[TopicPartition, ProduceResult]] = Future()
        if not waiting:
            done.set_result(results)
            return done
        deadline = time.monotonic() + timeout_ms / 1000
        with self._data_changed:
            if self._stopped.is_set():  # the delayed-produce thread may be gone: nobody would wait
                self._timed_out(waiting, results, timeout_ms)
                done.set_result(results)
                return done
            self._delayed_produces.append(_DelayedProduce(waiting, results, deadline, timeout_ms, done))
            self._start_delayed_produce_thread()
        self.notify_data_changed(())  # wakes the delayed-produce thread; no partition changed
        return done

    def _start_delayed_produce_thread(self) -> None:
        """Started by start() or by the first delayed produce (a replica manager in a unit test
        runs no other thread), once; called with _data_changed held."""
        if not self._delayed_produce_started:
            self._delayed_produce_started = True
            self._delayed_produce_thread.start()

    def _append_to_leaders(
        self, acks: int, entries: dict[TopicPartition, bytes]
    ) -> tuple[dict[TopicPartition, ProduceResult], dict[TopicPartition, tuple[Partition, int, int]]]:
        results: dict[TopicPartition, ProduceResult] = {}
        waiting: dict[TopicPartition, tuple[Partition, int, int]] = {}
        for tp, records in entries.items():
            partition = self._partitions.get(tp)
            if partition is None:
                results[tp] = self._not_leader(tp, Errors.UNKNOWN_TOPIC_OR_PARTITION)
                continue
            min_isr = partition.config.min_insync_replicas
            try:
                appended = partition.append_records_to_leader(records, acks, min_isr)
            except (CorruptRecordError, ValueError) as e:
                error = Errors.UNSUPPORTED_COMPRESSION_TYPE if isinstance(e, UnsupportedCompressionError) \
                    else Errors.MESSAGE_TOO_LARGE if isinstance(e, RecordTooLargeError) else Errors.CORRUPT_MESSAGE
                results[tp] = ProduceResult(error, f"{partition.name}: {e}")
                continue
            if appended.error is not Errors.NONE:
                results[tp] = self._not_leader(tp, appended.error, appended.message)
                continue
            start, _, _ = partition.offsets()
            results[tp] = ProduceResult(Errors.NONE, base_offset=appended.base_offset, log_start_offset=start)
            if acks == -1:
                waiting[tp] = (partition, appended.required_offset, min_isr)
        self.notify_data_changed(entries)
        return results, waiting

    def _replication_done(
        self, waiting: dict[TopicPartition, tuple[Partition, int, int]], results: dict[TopicPartition, ProduceResult]
    ) -> None:
        """Settle each waiting partition whose high watermark passed its write (or that failed)."""
        for tp, (partition, required, min_isr) in list(waiting.items()):
            outcome = partition.acks_all_result(required, min_isr)
            if outcome is None:
                continue
            del waiting[tp]
            if outcome is not Errors.NONE:
                results[tp] = self._not_leader(tp, outcome)

    @staticmethod
    def _timed_out(waiting: dict[TopicPartition, object], results: dict[TopicPartition, ProduceResult],
                   timeout_ms: int) -> None:
        for tp in waiting:
            results[tp] = ProduceResult(Errors.REQUEST_TIMED_OUT, f"not replicated to the ISR within {timeout_ms} ms")

    def _delayed_produce_loop(self) -> None:
        """Completes the delayed appends of append_records, each once its high watermark passes
        it, its partition fails, its timeout passes or the broker stops."""
        while True:
            with self._data_changed:
                seen = self._data_version
                pending, self._delayed_produces = self._delayed_produces, []
            stopped = self._stopped.is_set()
            now = time.monotonic()
            keep: list[_DelayedProduce] = []
            for delayed in pending:
                self._replication_done(delayed.waiting, delayed.results)
                if delayed.waiting and now < delayed.deadline and not stopped:
                    keep.append(delayed)
                    continue
                self._timed_out(delayed.waiting, delayed.results, delayed.timeout_ms)
                delayed.future.set_result(delayed.results)  # a failing callback is logged by Future
            with self._data_changed:
                self._delayed_produces[:0] = keep
                if stopped and not self._delayed_produces:
                    return
                next_deadline = min((d.deadline for d in self._delayed_produces), default=now + 1)
                if self._data_version == seen and not self._stopped.is_set():
                    self._data_changed.wait(max(0.0, next_deadline - now))

    def _not_leader(self, tp: TopicPartition, error: Errors, message: str = "") -> ProduceResult:
        """An error answer, with the leader this broker knows (KIP-951) when it is not the leader."""
        info = self.metadata_cache.snapshot().partitions.get(tp)
        return ProduceResult(
            error, message, leader_id=info.leader if info else -1, leader_epoch=info.leader_epoch if info else -1
        )

    # -- fetch ---------------------------------------------------------------------------------

    def fetch_messages(
        self, replica_id: int, max_wait_ms: int, min_bytes: int, max_bytes: int,
        partitions: list[FetchRequestPartition],
    ) -> dict[TopicPartition, FetchResult]:
        """Kafka's fetchMessages: read now; if fewer than min_bytes are there, wait (DelayedFetch)
        until enough arrive or max_wait_ms passes, then read again."""
        deadline = time.monotonic() + max_wait_ms / 1000
        while True:
            seen = self._data_version
            results = self._read(replica_id, max_bytes, partitions)
            size = sum(len(r.records) for r in results.values())
            remaining = deadline - time.monotonic()
            errors = any(r.error is not Errors.NONE for r in results.values())
            if size >= min_bytes or errors or remaining <= 0 or self._stopped.is_set():
                return results
            self._wait_for_change(seen, remaining)

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
        replica = self._partitions.get(tp)
        state = replica.state if replica is not None else None
        error, partition = self._leader(tp, request.current_leader_epoch)
        if partition is None:
            return self._fetch_error(tp, error), None, None
        follower = replica_id >= 0
        if follower:
            moved, expand = partition.update_follower_fetch_state(replica_id, request.fetch_offset, now)
            if moved:
                self.notify_data_changed((tp,))
            if expand:
                self._isr_check.set()
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
    ) -> tuple[int, dict[TopicPartition, FetchResult]]:
        """A full fetch that opens a session (answered as a sessionless one, then cached) or an
        incremental one (answered once any partition has something new, or at max_wait_ms).
        Returns the session id to answer with."""
        session = context.session
        assert session is not None and context.kind in (FetchKind.FULL, FetchKind.INCREMENTAL)
        full = context.kind is FetchKind.FULL
        deadline = time.monotonic() + max_wait_ms / 1000
        while True:
            now = now_ms()
            version, changed = (self._data_version, None) if full else self._changes_since(session.changes_seen)
            results = self._read_session(session, max_bytes, now, changed, answer_all=full)
            session.changes_seen = version
            if full:
                size = sum(len(r.records) for r in results.values())
                done = size >= min_bytes or any(r.error is not Errors.NONE for r in results.values())
            else:
                done = bool(results)
            remaining = deadline - time.monotonic()
            if done or remaining <= 0 or self._stopped.is_set():
                break
            self._wait_for_change(version, remaining)
        if not full:
            return session.id, results
        with self._fetch_sessions_lock:
            return self.fetch_sessions.add(session, now_ms()), results

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
        hint = self._not_leader(tp, error)
        return FetchResult(error, leader_id=hint.leader_id, leader_epoch=hint.leader_epoch)

    # -- offsets -------------------------------------------------------------------------------

    def _leader(self, tp: TopicPartition, current_leader_epoch: int) -> tuple[Errors, Partition | None]:
        """The partition, if this broker leads it at the epoch the request names."""
        partition = self._partitions.get(tp)
        if partition is None:
            return Errors.UNKNOWN_TOPIC_OR_PARTITION, None
        error = partition.check_leader_epoch(current_leader_epoch)
        if error is Errors.NONE and not partition.is_leader:
            error = Errors.NOT_LEADER_OR_FOLLOWER
        return error, partition if error is Errors.NONE else None

    def list_offset(self, tp: TopicPartition, current_leader_epoch: int, timestamp: int) -> tuple[Errors, int, int]:
        """(error, offset, leader epoch): earliest is the log start, latest the high watermark."""
        error, partition = self._leader(tp, current_leader_epoch)
        if partition is None:
            return error, -1, -1
        start, high_watermark, _ = partition.offsets()
        if timestamp == EARLIEST_TIMESTAMP:
            return Errors.NONE, start, partition.leader_epoch
        if timestamp == LATEST_TIMESTAMP:
            return Errors.NONE, high_watermark, partition.leader_epoch
        return Errors.INVALID_REQUEST, -1, -1

    def last_offset_for_leader_epoch(
        self, tp: TopicPartition, current_leader_epoch: int, leader_epoch: int
    ) -> tuple[Errors, int, int]:
        """KIP-101, answered by the leader: (error, epoch, end offset)."""
        error, partition = self._leader(tp, current_leader_epoch)
        if partition is None:
            return error, -1, -1
        with partition.lock:
            epoch, end_offset = partition.log.end_offset_for_epoch(leader_epoch)
        return Errors.NONE, epoch, end_offset

    # -- ISR upkeep by the leader --------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self._isr_upkeep, name=f"isr-upkeep-{self.broker_id}", daemon=True).start()
        with self._data_changed:
            self._start_delayed_produce_thread()

    def stop(self) -> None:
        self._stopped.set()
        self._isr_check.set()
        self.fetchers.shutdown()
        self.notify_data_changed()

    def _isr_upkeep(self) -> None:
        """The one writer of this broker's ISR changes (Kafka's maybeShrinkIsr, run every half
        replica.lag.time.max.ms, and maybeExpandIsr, run when a follower catches up)."""
        interval = self.replica_lag_time_max_ms / 2000
        while not self._stopped.is_set():
            self._isr_check.wait(interval)
            self._isr_check.clear()
            if self._stopped.is_set():
                return
            if self._write_isr is None:
                continue
            now = now_ms()
            with self._lock:
                leaders = [p for p in self._partitions.values() if p.is_leader]
            try:
                self._change_isrs(leaders, now)
            except Exception:
                log.exception("%s Failed to update the ISRs of the partitions it leads", self.prefix)

    def _change_isrs(self, leaders: list[Partition], now: int) -> None:
        """Decide each leader's ISR change, write them all at once (a restarted follower catches
        up on thousands of partitions together: one write after another took minutes), then keep
        and log those written."""
        changes = [change for partition in leaders if (change := self._isr_change(partition, now))]
        if not changes:
            return
        assert self._write_isr is not None
        versions = self._write_isr([(change.state, change.new_isr) for change in changes])
        kept = []
        for change, zk_version in zip(changes, versions, strict=True):
            if zk_version is None or not change.partition.update_isr(change.new_isr, zk_version, change.state):
                self.counters.failed_isr_updates += 1
                log.info(
                    "%s Cached zkVersion %d of partition %s not equal to that in zookeeper, skip updating ISR",
                    self.prefix, change.state.zk_version, change.partition.name,
                )
                continue
            self._log_isr_change(change, now)
            kept.append((change.partition.topic, change.partition.partition))
        if kept:
            self.notify_data_changed(kept)

    def _isr_change(self, partition: Partition, now: int) -> IsrChange | None:
        joining = partition.expansion_candidates()
        leaving = partition.out_of_sync_replicas(now, self.replica_lag_time_max_ms)
        if not joining and not leaving:
            return None
        with partition.lock:
            state = partition.state
            if state is None or not partition.is_leader:
                return None
            new_isr = tuple(r for r in state.isr if r not in leaving) + tuple(r for r in joining if r not in state.isr)
            if not leaving:
                for r in joining:
                    # Kafka logs the follower's and the leader's log end offsets on expansion.
                    follower = partition.followers[r]
                    state_change_log.debug("%s %s: follower %d caught up at offset %d", self.prefix, partition.name,
                                           r, follower.log_end_offset)
        return IsrChange(partition, state, new_isr, tuple(joining), tuple(leaving))

    def _log_isr_change(self, change: IsrChange, now: int) -> None:
        partition, old_isr = change.partition, ",".join(map(str, change.state.isr))
        if change.leaving:
            self.counters.isr_shrinks += 1
            lags = ", ".join(
                f"{r} (last caught up {now - caught_up_ms(partition.followers[r])} ms ago, "
                f"log end offset {partition.followers[r].log_end_offset})" for r in change.leaving
            )
            state_change_log.info(
                "%s Shrinking ISR of partition %s from %s to %s. Out of sync replicas: %s. High watermark %d",
                self.prefix, partition.name, old_isr, ",".join(map(str, change.new_isr)), lags,
                partition.high_watermark,
            )
        if change.joining:
            self.counters.isr_expands += 1
            state_change_log.info(
                "%s Expanding ISR of partition %s from %s to %s. High watermark %d",
                self.prefix, partition.name, old_isr, ",".join(map(str, change.new_isr)), partition.high_watermark,
            )

    # -- follower truncation -------------------------------------------------------------------

    def truncate(self, partition: Partition, offset: int, reason: str) -> None:
        """Truncate a follower's log to `offset`. Records it discards were accepted by a leader
        that this replica's new leader does not follow: after a clean election they were never
        acknowledged to acks=all producers; after an unclean one they may have been. Both are
        reported; records below this replica's high watermark were acknowledged for certain."""
        log_end = partition.log.log_end_offset
        if offset >= log_end:
            return
        discarded, acknowledged = partition.truncate_to(offset)
        self.counters.records_truncated += discarded
        self.counters.acknowledged_records_truncated += acknowledged
        self.counters.truncations.append(f"{partition.name}: {discarded} records from offset {offset}")
        state_change_log.warning(
            "%s Truncating partition %s to offset %d (log end offset was %d): %s. This discards %d records "
            "the new leader does not have, %d of them below this replica's high watermark (acknowledged "
            "writes lost: an unclean leader election chose a replica without them)",
            self.prefix, partition.name, offset, log_end, reason, discarded, acknowledged,
        )

    # -- describe ------------------------------------------------------------------------------

    def replica_states(self, tps: list[TopicPartition] | None = None) -> list[tuple[TopicPartition, Partition]]:
        with self._lock:
            chosen = tps or sorted(tp for tp, p in self._partitions.items() if p.is_leader)
            return [(tp, self._partitions[tp]) for tp in chosen if tp in self._partitions]

    def apply_retention(self) -> int:
        """Retention over every log below its high watermark; returns the segments deleted. A log
        that lost segments starts later, which fetch sessions must tell their followers."""
        deleted = self.log_manager.cleanup_logs(self.high_watermarks().get)
        if deleted:
            self.notify_data_changed()
        return deleted

    def checkpoint_high_watermarks(self) -> None:
        """Each log dir's high watermarks to disk (Kafka's checkpointHighWatermarks): a broker that
        restarts and leads again serves consumers no further than it had. Skipped while no high
        watermark moved and no partition came or went since the last one: an idle broker with
        tens of thousands of partitions would otherwise rewrite and fsync the same files every
        few seconds."""
        with self._lock:
            partitions = list(self._partitions.items())
        high_watermarks = {tp: partition.high_watermark for tp, partition in partitions}
        if high_watermarks == self._high_watermarks_written:
            return
        by_dir: dict[Path, dict[TopicPartition, int]] = {Path(d): {} for d in self.log_manager.log_dirs}
        for tp, partition in partitions:
            by_dir.setdefault(Path(partition.log.dir).parent, {})[tp] = high_watermarks[tp]
        written = True
        for directory, offsets in by_dir.items():
            try:
                write_offsets(directory / HW_CHECKPOINT, offsets)
            except OSError as e:
                written = False
                log.error("%s Cannot write the high watermarks of %s: %s", self.prefix, directory, e)
        self._high_watermarks_written = high_watermarks if written else None

    def high_watermarks(self) -> dict[TopicPartition, int]:
        with self._lock:
            return {tp: p.high_watermark for tp, p in self._partitions.items()}
