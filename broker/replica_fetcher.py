"""Followers fetching from their leaders (Kafka's ReplicaFetcherManager and ReplicaFetcherThread).

One fetcher thread per source broker fetches every partition this broker follows there. A
partition starts in the truncating state: it first asks the leader where its own latest
leader epoch ends in the leader's log (OffsetForLeaderEpoch, KIP-101, with KIP-279's second
look at the follower's log) and truncates what the leader does not have; then it fetches from
its log end offset, appending what the leader sends and taking the leader's high watermark.

Fetches go in an incremental fetch session with the leader (KIP-227, broker/fetch_session.py):
after a first full fetch, a request names only the partitions whose fetch offset or leader epoch
changed and forgets those this thread no longer fetches (moved, removed, backing off after an
error, truncating); the answer holds only the partitions with something new, and the others stay
as they are. Any failure starts the session over with a full fetch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from broker.fetch_session import FetchRequestData, FetchSessionHandler, PartitionData
from broker.grpc_security import InterBrokerChannels
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

if TYPE_CHECKING:
    from broker.metadata_cache import TopicPartition
    from broker.partition import Partition
    from broker.replica_manager import ReplicaManager

log = logging.getLogger(__name__)

UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


def truncation_offset(leader_epoch: int, leader_end_offset: int, requested_epoch: int,
                      follower_end_offset_for: tuple[int, int], follower_log_end: int,
                      follower_high_watermark: int) -> int:
    """Where a follower truncates to, given the leader's answer to OffsetForLeaderEpoch for the
    follower's latest epoch (Kafka's ReplicaFetcherThread / AbstractFetcherThread.getOffsetTruncationState).

    The leader does not know the epoch at all: fall back to the follower's high watermark (all a
    follower can be sure the leader has). The leader's epoch is the one asked for: keep what is
    below its end. The leader answers with an older epoch: the two logs agree at most up to
    where that epoch ends in both (KIP-279)."""
    if leader_epoch == UNDEFINED_EPOCH or leader_end_offset == UNDEFINED_OFFSET:
        return min(follower_high_watermark, follower_log_end)
    if leader_epoch == requested_epoch:
        return min(leader_end_offset, follower_log_end)
    follower_epoch, follower_end = follower_end_offset_for
    if follower_epoch == UNDEFINED_EPOCH:
        return min(follower_high_watermark, follower_log_end)
    return min(leader_end_offset, follower_end, follower_log_end)


@dataclass(frozen=True)
class FetchState:
    """A partition this thread fetches, at the leader epoch it was added with."""

    partition: Partition
    leader_epoch: int


class ReplicaFetcherThread:
    def __init__(self, manager: ReplicaFetcherManager, source_id: int, target: str) -> None:
        self.manager = manager
        self.source_id = source_id
        self.target = target
        rm = manager.replica_manager
        self.name = f"ReplicaFetcherThread-0-{source_id}"
        self.prefix = f"[ReplicaFetcher replicaId={rm.broker_id}, leaderId={source_id}, fetcherId=0]"
        # Under _lock, as LeaderAndIsr adds and removes partitions from its own thread: the
        # partitions, those still to truncate, those backing off (until when, on the monotonic
        # clock), and those whose request in the fetch session may have changed since the last.
        self._lock = threading.Lock()
        self._states: dict[TopicPartition, FetchState] = {}
        self._truncating: set[TopicPartition] = set()
        self._delayed: dict[TopicPartition, float] = {}
        self._changed: set[TopicPartition] = set()
        self._session = FetchSessionHandler()  # this thread's alone, as is the next
        # Whether the leader answered the last request. One that did not is first asked to open
        # an empty session, and only then sent every partition: a broker that is down is not sent
        # tens of thousands of partitions at every backoff.
        self._leader_answered = True
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._channel = manager.channels.channel(target)
        self._stub = kafka_pb2_grpc.DataStub(self._channel)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def add(self, partitions: list[Partition]) -> None:
        with self._lock:
            for p in partitions:
                tp = (p.topic, p.partition)
                self._states[tp] = FetchState(p, p.leader_epoch)
                self._truncating.add(tp)
                self._delayed.pop(tp, None)
                self._changed.add(tp)
        self._wake.set()

    def remove(self, tps: list[TopicPartition]) -> None:
        with self._lock:
            for tp in tps:
                if self._states.pop(tp, None) is not None:
                    self._truncating.discard(tp)
                    self._delayed.pop(tp, None)
                    self._changed.add(tp)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._states

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._channel.close()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                truncating = self._due_for_truncation()
                if truncating:
                    self._truncate(truncating)
                request = self._next_fetch()
                if request is not None:
                    self._fetch(request)
                elif not truncating:
                    self._wake.wait(self._idle_wait())
                    self._wake.clear()
            except grpc.RpcError as e:
                if self._stopped.is_set():
                    return
                log.warning("%s Error sending fetch request to broker %d at %s: %s; backing off", self.prefix,
                            self.source_id, self.target, e.code())
                self._back_off()
            except Exception:
                log.exception("%s Error fetching", self.prefix)
                self._back_off()

    # -- the partitions' states, under the lock ------------------------------------------------

    def _undelay(self, now: float) -> None:
        for tp, until in list(self._delayed.items()):
            if until <= now:
                del self._delayed[tp]
                self._changed.add(tp)

    def _fetching(self, tp: TopicPartition) -> bool:
        return tp in self._states and tp not in self._truncating and tp not in self._delayed

    def _due_for_truncation(self) -> dict[TopicPartition, FetchState]:
        with self._lock:
            self._undelay(time.monotonic())
            return {tp: self._states[tp] for tp in self._truncating if tp not in self._delayed}

    def _truncated(self, tp: TopicPartition, state: FetchState) -> None:
        with self._lock:
            if self._states.get(tp) is state:
                self._truncating.discard(tp)
                self._changed.add(tp)

    def _delay(self, tps: list[TopicPartition], seconds: float, truncate: bool = False) -> None:
        until = time.monotonic() + seconds
        with self._lock:
            for tp in tps:
                if tp in self._states:
                    self._delayed[tp] = until
                    self._changed.add(tp)
                    if truncate:
                        self._truncating.add(tp)

    def _back_off(self) -> None:
        """A request failed: every partition waits, and the session starts over."""
        self._session.handle_error()
        self._leader_answered = False
        with self._lock:
            until = time.monotonic() + self.manager.backoff_s
            self._delayed.update(dict.fromkeys(self._states, until))

    def _idle_wait(self) -> float:
        with self._lock:
            if not self._delayed:
                return 1.0
            return min(max(min(self._delayed.values()) - time.monotonic(), 0.001), 1.0)

    # -- truncation ----------------------------------------------------------------------------

    def _current_answers(self, response: Any, states: dict[TopicPartition, FetchState]) -> Iterator[Any]:
        """(partition, its fetch state, the leader's answer) for each answered partition that this
        thread still fetches as it did when it asked: a LeaderAndIsr may have moved it meanwhile."""
        for topic in response.topics:
            for answer in topic.partitions:
                tp = (topic.topic, answer.partition)
                state = states.get(tp)
                with self._lock:
                    current = state is not None and self._states.get(tp) is state
                if current:
                    yield tp, state, answer

    def _truncate(self, states: dict[TopicPartition, FetchState]) -> None:
        rm = self.manager.replica_manager
        by_topic: dict[str, list[kafka_pb2.OffsetForLeaderEpochPartition]] = {}
        asked: dict[TopicPartition, int] = {}
        for (topic, p), state in states.items():
            latest = state.partition.log.latest_epoch
            if latest is None or latest < 0:
                # Nothing written under any epoch: nothing to truncate.
                self._truncated((topic, p), state)
                continue
            asked[(topic, p)] = latest
            by_topic.setdefault(topic, []).append(kafka_pb2.OffsetForLeaderEpochPartition(
                partition=p, current_leader_epoch=state.leader_epoch, leader_epoch=latest,
            ))
        if not by_topic:
            return
        response = self._stub.OffsetForLeaderEpoch(
            kafka_pb2.OffsetForLeaderEpochRequest(
                replica_id=rm.broker_id,
                topics=[kafka_pb2.OffsetForLeaderEpochTopic(topic=t, partitions=ps) for t, ps in by_topic.items()],
            ),
            timeout=self.manager.request_timeout_s,
        )
        for tp, state, answer in self._current_answers(response, states):
            error = Errors.for_code(answer.error_code)
            if error is not Errors.NONE:
                log.info("%s Cannot get the end offset of epoch %d of %s-%d from the leader: %s", self.prefix,
                         asked[tp], tp[0], tp[1], error.name)
                self._delay([tp], self.manager.backoff_s)
                continue
            partition = state.partition
            with partition.lock:
                own = partition.log.end_offset_for_epoch(answer.leader_epoch)
                offset = truncation_offset(
                    answer.leader_epoch, answer.end_offset, asked[tp], own, partition.log.log_end_offset,
                    partition.high_watermark,
                )
            rm.truncate(partition, offset, f"the leader's epoch {answer.leader_epoch} ends at offset "
                                           f"{answer.end_offset} (asked for epoch {asked[tp]})")
            self._truncated(tp, state)

    # -- fetch ---------------------------------------------------------------------------------

    def _next_fetch(self) -> FetchRequestData | None:
        """The session's next request: every partition to fetch if a full one is due, else those
        whose request changed; None when there is nothing to fetch."""
        max_bytes = self.manager.fetch_max_bytes
        with self._lock:
            self._undelay(time.monotonic())
            if self._session.wants_full:
                if not self._leader_answered:
                    if len(self._states) <= len(self._truncating | self._delayed.keys()):
                        return None  # nothing to fetch yet
                    self._changed.update(self._states)  # all named in the next, incremental request
                    return self._session.build_full({})
                self._changed.clear()
                wanted = {
                    tp: PartitionData(state.partition.log.log_end_offset, state.leader_epoch, max_bytes)
                    for tp, state in self._states.items() if tp not in self._truncating and tp not in self._delayed
                }
                return self._session.build_full(wanted) if wanted else None
            changes: dict[TopicPartition, PartitionData | None] = {}
            for tp in self._changed:
                state = self._states.get(tp)
                changes[tp] = PartitionData(
                    state.partition.log.log_end_offset, state.leader_epoch, max_bytes
                ) if state is not None and self._fetching(tp) else None
            self._changed.clear()
        request = self._session.build_incremental(changes)
        return request if request.session_size or request.to_forget else None

    def _fetch(self, request: FetchRequestData) -> None:
        rm = self.manager.replica_manager
        by_topic: dict[str, list[kafka_pb2.FetchPartition]] = {}
        for (topic, p), data in request.to_send.items():
            by_topic.setdefault(topic, []).append(kafka_pb2.FetchPartition(
                partition=p, current_leader_epoch=data.current_leader_epoch, fetch_offset=data.fetch_offset,
                partition_max_bytes=data.max_bytes,
            ))
        forgotten: dict[str, list[int]] = {}
        for topic, p in request.to_forget:
            forgotten.setdefault(topic, []).append(p)
        # An empty session being opened has nothing to wait for.
        max_wait_ms = 0 if request.is_full and not request.to_send else self.manager.max_wait_ms
        response = self._stub.Fetch(
            kafka_pb2.FetchRequest(
                replica_id=rm.broker_id, replica_epoch=rm.broker_epoch, max_wait_ms=max_wait_ms,
                min_bytes=self.manager.min_bytes, max_bytes=self.manager.response_max_bytes,
                topics=[kafka_pb2.FetchTopic(topic=t, partitions=ps) for t, ps in by_topic.items()],
                session_id=request.session_id, session_epoch=request.epoch,
                forgotten_topics=[kafka_pb2.ForgottenTopic(topic=t, partitions=ps) for t, ps in forgotten.items()],
            ),
            timeout=self.manager.max_wait_ms / 1000 + self.manager.request_timeout_s,
        )
        self._leader_answered = True
        error = Errors.for_code(response.error_code)
        if not self._session.handle_response(request, error, response.session_id):
            log.info("%s Fetch session %d refused at epoch %d: %s; the next fetch is a full one", self.prefix,
                     request.session_id, request.epoch, error.name)
            return
        appended = [tp for tp, state, answer in self._session_answers(response) if self._handle(tp, state, answer)]
        if appended:
            rm.notify_data_changed(appended)

    def _session_answers(self, response: kafka_pb2.FetchResponse) -> Iterator[Any]:
        """(partition, its fetch state, the leader's answer) for each answered partition that this
        thread still fetches as the session asked for it: same leader epoch, same fetch offset.
        A LeaderAndIsr may have moved it meanwhile."""
        for topic in response.topics:
            for answer in topic.partitions:
                tp = (topic.topic, answer.partition)
                asked = self._session.sent.get(tp)
                with self._lock:
                    state = self._states.get(tp)
                    current = (
                        state is not None and asked is not None and self._fetching(tp)
                        and asked.current_leader_epoch == state.leader_epoch
                        and asked.fetch_offset == state.partition.log.log_end_offset
                    )
                if current:
                    yield tp, state, answer

    def _handle(self, tp: TopicPartition, state: FetchState, answer: kafka_pb2.FetchPartitionResponse) -> bool:
        """Take the leader's answer for one partition; whether records were appended."""
        partition = state.partition
        error = Errors.for_code(answer.error_code)
        if error is Errors.NONE:
            try:
                info = partition.append_records_to_follower(answer.records, answer.high_watermark)
            except Exception as e:  # a batch that does not fit: start over from truncation
                log.error("%s Cannot append to %s what the leader sent: %s", self.prefix, partition.name, e)
                self._delay([tp], self.manager.backoff_s, truncate=True)
                return False
            appended = info is not None or bool(answer.records)
            if appended:
                with self._lock:
                    self._changed.add(tp)
            return appended
        if error is Errors.OFFSET_OUT_OF_RANGE:
            self._handle_out_of_range(partition, answer)
            with self._lock:
                self._changed.add(tp)
            return False
        # NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH...: wait for the
        # controller's LeaderAndIsr to say who leads now.
        log.info("%s Fetch of %s failed: %s; retrying after backoff", self.prefix, partition.name, error.name)
        self._delay([tp], self.manager.backoff_s)
        return False

    def _handle_out_of_range(self, partition: Partition, answer: kafka_pb2.FetchPartitionResponse) -> None:
        """Kafka's handleOutOfRangeError: past the leader's end, truncate to it; before its
        start, start over there."""
        rm = self.manager.replica_manager
        log_end = partition.log.log_end_offset
        if answer.log_end_offset >= 0 and log_end > answer.log_end_offset:
            rm.truncate(partition, answer.log_end_offset,
                        f"it is past the leader's log end offset {answer.log_end_offset}")
        else:
            log.warning("%s %s is before the leader's log start offset %d: starting over there", self.prefix,
                        partition.name, answer.log_start_offset)
            partition.truncate_fully_and_start_at(answer.log_start_offset)


class ReplicaFetcherManager:
    def __init__(self, replica_manager: ReplicaManager, max_wait_ms: int = 500, min_bytes: int = 1,
                 fetch_max_bytes: int = 1048576, response_max_bytes: int = 10485760, backoff_ms: int = 1000,
                 request_timeout_ms: int = 30000, channels: InterBrokerChannels | None = None) -> None:
        self.replica_manager = replica_manager
        self.channels = channels or InterBrokerChannels()
        self.max_wait_ms = max_wait_ms
        self.min_bytes = min_bytes
        self.fetch_max_bytes = fetch_max_bytes
        self.response_max_bytes = response_max_bytes
        self.backoff_s = backoff_ms / 1000
        self.request_timeout_s = request_timeout_ms / 1000
        self._lock = threading.Lock()
        self._threads: dict[tuple[int, str], ReplicaFetcherThread] = {}
        # Followers whose leader this broker has no address for yet: retried on each UpdateMetadata.
        self._pending: dict[TopicPartition, Partition] = {}

    def add_partitions(self, partitions: list[Partition]) -> None:
        """Fetch each partition from its leader, truncating first."""
        brokers = self.replica_manager.metadata_cache.snapshot().brokers
        by_source: dict[tuple[int, str], list[Partition]] = {}
        for partition in partitions:
            leader = brokers.get(partition.leader_id)
            if leader is None:
                log.warning("Leader %d of %s is not in this broker's metadata; not fetching it yet",
                            partition.leader_id, partition.name)
                with self._lock:
                    self._pending[(partition.topic, partition.partition)] = partition
                continue
            address = self.channels.address(leader.endpoints, leader.host, leader.port)
            by_source.setdefault((leader.broker_id, address), []).append(partition)
        with self._lock:
            for key, chosen in by_source.items():
                thread = self._threads.get(key)
                if thread is None:
                    thread = self._threads[key] = ReplicaFetcherThread(self, key[0], key[1])
                thread.add(chosen)
                log.info("[ReplicaFetcherManager on broker %d] Added fetcher to broker %d for partitions %s",
                         self.replica_manager.broker_id, key[0], ",".join(p.name for p in chosen))

    def retry_pending(self) -> None:
        with self._lock:
            pending = [p for p in self._pending.values() if not p.is_leader and p.leader_id >= 0]
            self._pending.clear()
        if pending:
            self.add_partitions(pending)

    def remove_partitions(self, tps: list[TopicPartition]) -> None:
        with self._lock:
            for tp in tps:
                self._pending.pop(tp, None)
            for key, thread in list(self._threads.items()):
                thread.remove(tps)
                if thread.is_idle():
                    thread.stop()
                    del self._threads[key]

    def shutdown(self) -> None:
        with self._lock:
            for thread in self._threads.values():
                thread.stop()
            self._threads.clear()
