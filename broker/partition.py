"""One replica of a partition on this broker (Kafka's Partition): its log, and as leader the
state of every follower, the high watermark and the ISR decisions.

The decisions are pure functions at the top (the high watermark, who is caught up, who has
fallen behind); the Partition applies them under its lock. ZooKeeper writes of a new ISR are
not made here: the replica manager's ISR thread makes them and calls back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from broker.fetch_session import FetchClock
from broker.log import record_batch
from broker.log.log_config import LogConfig
from broker.log.producer_state import ProducerStateManager, SequenceCheck
from broker.log.unified_log import AppendInfo, Log
from broker.metadata_cache import PartitionInfo
from minikafka_protocol.errors import Errors

log = logging.getLogger("broker.state.change")

UNKNOWN_OFFSET = -1


# -- decisions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class FollowerState:
    """What a leader knows of one follower (Kafka's Replica): its log end offset as of its last
    fetch, and when it was last caught up."""

    log_end_offset: int = UNKNOWN_OFFSET
    last_caught_up_time_ms: int = 0
    last_fetch_leader_log_end_offset: int = UNKNOWN_OFFSET
    last_fetch_time_ms: int = 0
    # Set while the follower fetches this partition in a fetch session that found it caught up
    # and has not seen it change since: it was caught up at each of the session's fetches too.
    session_clock: FetchClock | None = None


def caught_up_ms(state: FollowerState) -> int:
    """When the follower was last caught up, its fetch session's latest fetch included."""
    clock = state.session_clock
    return state.last_caught_up_time_ms if clock is None else max(state.last_caught_up_time_ms, clock.last_fetch_ms)


def settled(state: FollowerState) -> FollowerState:
    """The state with its fetch session's latest fetch written in: a fetch from the leader's log
    end offset, then and there."""
    clock = state.session_clock
    if clock is None:
        return state
    at = max(state.last_fetch_time_ms, clock.last_fetch_ms)
    return FollowerState(state.log_end_offset, caught_up_ms(state), state.log_end_offset, at)


def after_fetch(state: FollowerState, fetch_offset: int, leader_log_end_offset: int, now_ms: int) -> FollowerState:
    """Kafka's Replica.updateFetchState: a follower that fetches from the leader's log end offset
    is caught up now; one that fetches from where the log ended at its previous fetch was
    caught up then."""
    state = settled(state)
    if fetch_offset >= leader_log_end_offset:
        caught_up = now_ms
    elif fetch_offset >= state.last_fetch_leader_log_end_offset:
        caught_up = max(state.last_caught_up_time_ms, state.last_fetch_time_ms)
    else:
        caught_up = state.last_caught_up_time_ms
    return FollowerState(fetch_offset, caught_up, leader_log_end_offset, now_ms)


def high_watermark(leader_log_end_offset: int, isr: Iterable[int], leader_id: int,
                   followers: Mapping[int, FollowerState]) -> int:
    """The smallest log end offset in the ISR: every record below it is on every ISR member."""
    offsets = [leader_log_end_offset]
    offsets += [followers[r].log_end_offset if r in followers else UNKNOWN_OFFSET for r in isr if r != leader_id]
    return min(offsets)


def may_join_isr(state: FollowerState, high_watermark_: int, leader_epoch_start_offset: int) -> bool:
    """Kafka's isFollowerInSync: caught up to the high watermark, and holding at least the
    start of the current leader epoch (so it has truncated to this leader's log)."""
    return state.log_end_offset >= high_watermark_ and state.log_end_offset >= leader_epoch_start_offset


def out_of_sync(isr: Iterable[int], leader_id: int, followers: Mapping[int, FollowerState], now_ms: int,
                lag_time_max_ms: int) -> list[int]:
    """Kafka's getOutOfSyncReplicas: ISR followers not caught up within replica.lag.time.max.ms."""
    return sorted(
        r for r in isr
        if r != leader_id and now_ms - caught_up_ms(followers.get(r, FollowerState())) > lag_time_max_ms
    )


# -- the replica -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderAppend:
    error: Errors
    message: str = ""
    base_offset: int = -1
    # acks=all is satisfied once the high watermark reaches this offset.
    required_offset: int = -1


class Partition:
    def __init__(self, topic: str, partition: int, broker_id: int, log_: Log, config: LogConfig,
                 high_watermark_checkpoint: int = 0) -> None:
        self.topic, self.partition, self.broker_id = topic, partition, broker_id
        self.name = f"{topic}-{partition}"
        self.log = log_
        self.config = config
        self.lock = threading.RLock()
        self.state: PartitionInfo | None = None  # as the controller last sent it
        self.followers: dict[int, FollowerState] = {}
        self.high_watermark = min(max(high_watermark_checkpoint, log_.log_start_offset), log_.log_end_offset)
        self.leader_epoch_start_offset = UNKNOWN_OFFSET
        self.producers = ProducerStateManager()
        for header in log_.batch_headers(log_.log_start_offset):
            self.producers.update(header)

    # -- role ----------------------------------------------------------------------------------

    @property
    def leader_epoch(self) -> int:
        return self.state.leader_epoch if self.state else -1

    @property
    def leader_id(self) -> int:
        return self.state.leader if self.state else -1

    @property
    def is_leader(self) -> bool:
        return self.state is not None and self.state.leader == self.broker_id

    @property
    def isr(self) -> tuple[int, ...]:
        return self.state.isr if self.state else ()

    def make_leader(self, state: PartitionInfo, now_ms: int) -> None:
        """Kafka's Partition.makeLeader: the current leader epoch starts at this log's end; every
        follower is unknown until it fetches, ISR members counting as caught up now."""
        with self.lock:
            self.state = state
            self.leader_epoch_start_offset = self.log.log_end_offset
            self.log.assign_epoch_start_offset(state.leader_epoch, self.leader_epoch_start_offset)
            self.followers = {
                r: FollowerState(last_caught_up_time_ms=now_ms if r in state.isr else 0)
                for r in state.replicas if r != self.broker_id
            }
            self._maybe_increment_high_watermark()

    def make_follower(self, state: PartitionInfo) -> bool:
        """Kafka's Partition.makeFollower. True when the leader changed (or this replica led):
        the fetcher must then start over, truncating first."""
        with self.lock:
            previous = self.state
            self.state = state
            self.followers = {}
            self.leader_epoch_start_offset = UNKNOWN_OFFSET
            return previous is None or previous.leader != state.leader or previous.leader == self.broker_id

    def update_isr(self, isr: tuple[int, ...], zk_version: int, written_over: PartitionInfo) -> bool:
        """The ISR this leader just wrote to ZooKeeper over the state `written_over`. False, and
        nothing changes, when a newer state from the controller arrived during the write."""
        with self.lock:
            current = self.state
            if current is None or (current.leader_epoch, current.zk_version) != (
                written_over.leader_epoch, written_over.zk_version
            ):
                return False
            self.state = current._replace(isr=isr, zk_version=zk_version)
            self._maybe_increment_high_watermark()
            return True

    def check_leader_epoch(self, current_leader_epoch: int) -> Errors:
        """KIP-320: a request made for an older leader epoch is fenced; one for a newer epoch
        than this broker knows waits for the controller's news."""
        if current_leader_epoch < 0 or current_leader_epoch == self.leader_epoch:
            return Errors.NONE
        return Errors.FENCED_LEADER_EPOCH if current_leader_epoch < self.leader_epoch else Errors.UNKNOWN_LEADER_EPOCH

    # -- leader --------------------------------------------------------------------------------

    def append_records_to_leader(self, records: bytes, acks: int, min_insync_replicas: int) -> LeaderAppend:
        with self.lock:
            if not self.is_leader:
                return LeaderAppend(Errors.NOT_LEADER_OR_FOLLOWER)
            if acks == -1 and len(self.isr) < min_insync_replicas:
                return LeaderAppend(
                    Errors.NOT_ENOUGH_REPLICAS,
                    f"The size of the current ISR {list(self.isr)} is insufficient to satisfy the min.isr "
                    f"requirement of {min_insync_replicas} for partition {self.name}",
                )
            duplicate = self._check_producers(records)
            if isinstance(duplicate, LeaderAppend):
                return duplicate
            info = self.log.append_as_leader(records, self.leader_epoch)
            for header in info.batches:
                self.producers.update(header)
            self._maybe_increment_high_watermark()
            return LeaderAppend(Errors.NONE, base_offset=info.first_offset, required_offset=info.last_offset + 1)

    def _check_producers(self, records: bytes) -> LeaderAppend | None:
        """Dedup an idempotent producer's retry: if every batch is already in the log, answer
        with the offsets it got then."""
        duplicates = []
        headers = [header for _, header in record_batch.batches(records)]
        for header in headers:
            verdict, batch = self.producers.check(header)
            if verdict is SequenceCheck.DUPLICATE and batch is not None:
                duplicates.append(batch)
            elif verdict is SequenceCheck.OUT_OF_ORDER:
                return LeaderAppend(
                    Errors.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"Out of order sequence number for producer {header.producer_id} at offset "
                    f"{self.log.log_end_offset} in partition {self.name}: {header.base_sequence}",
                )
            elif verdict is SequenceCheck.FENCED_EPOCH:
                return LeaderAppend(Errors.INVALID_PRODUCER_EPOCH, f"Producer {header.producer_id}: {verdict.value}")
        if duplicates:
            first = duplicates[0]
            if len(duplicates) != len(headers):
                return LeaderAppend(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, "a request mixes new and retried batches")
            log.debug("Partition %s: duplicate batch from an idempotent producer, answered with offset %d",
                      self.name, first.first_offset)
            return LeaderAppend(
                Errors.NONE, base_offset=first.first_offset, required_offset=duplicates[-1].last_offset + 1
            )
        return None

    def acks_all_result(self, required_offset: int, min_insync_replicas: int) -> Errors | None:
        """Kafka's checkEnoughReplicasReachOffset: None while the write still waits."""
        with self.lock:
            if not self.is_leader:
                return Errors.NOT_LEADER_OR_FOLLOWER
            if self.high_watermark < required_offset:
                return None
            return Errors.NONE if len(self.isr) >= min_insync_replicas else Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND

    def update_follower_fetch_state(self, replica_id: int, fetch_offset: int, now_ms: int) -> tuple[bool, bool]:
        """A follower fetched from `fetch_offset`: it has everything below. Returns whether the
        high watermark moved, and whether the follower, outside the ISR, has caught up (an ISR
        expansion to make)."""
        with self.lock:
            if not self.is_leader or replica_id not in self.followers:
                return False, False
            state = after_fetch(self.followers[replica_id], fetch_offset, self.log.log_end_offset, now_ms)
            self.followers[replica_id] = state
            moved = self._maybe_increment_high_watermark()
            return moved, replica_id not in self.isr and may_join_isr(
                state, self.high_watermark, self.leader_epoch_start_offset
            )

    def follower_idle_in_session(self, replica_id: int, fetch_offset: int, now_ms: int, clock: FetchClock) -> None:
        """A follower's fetch session found this partition idle: the follower still fetches from
        `fetch_offset`, which is still this log's end, so it is caught up now (after_fetch's first
        rule, which leaves its log end offset and the high watermark as they are), and at the
        session's later fetches while the partition does not change. Without the lock: this
        moves times forward in the state of one follower, whose fetches come one at a time, and
        does nothing if that state was replaced by one for another offset meanwhile."""
        state = self.followers.get(replica_id)
        if state is not None and state.log_end_offset == fetch_offset:
            state.last_caught_up_time_ms = state.last_fetch_time_ms = now_ms
            state.last_fetch_leader_log_end_offset = fetch_offset
            state.session_clock = clock

    def follower_left_session(self, replica_id: int, clock: FetchClock) -> None:
        """The follower's session no longer holds this partition: its clock stops counting here."""
        with self.lock:
            state = self.followers.get(replica_id)
            if state is not None and state.session_clock is clock:
                self.followers[replica_id] = settled(state)

    def expansion_candidates(self) -> list[int]:
        with self.lock:
            if not self.is_leader:
                return []
            return sorted(
                r for r, state in self.followers.items()
                if r not in self.isr and may_join_isr(state, self.high_watermark, self.leader_epoch_start_offset)
            )

    def out_of_sync_replicas(self, now_ms: int, lag_time_max_ms: int) -> list[int]:
        with self.lock:
            if not self.is_leader:
                return []
            return out_of_sync(self.isr, self.broker_id, self.followers, now_ms, lag_time_max_ms)

    def _maybe_increment_high_watermark(self) -> bool:
        if not self.is_leader:
            return False
        new = high_watermark(self.log.log_end_offset, self.isr, self.broker_id, self.followers)
        if new > self.high_watermark:
            self.high_watermark = new
            return True
        return False

    # -- follower ------------------------------------------------------------------------------

    def append_records_to_follower(self, records: bytes, leader_high_watermark: int) -> AppendInfo | None:
        with self.lock:
            info = self.log.append_as_follower(records) if records else None
            if info is not None:
                for header in info.batches:
                    self.producers.update(header)
            self.high_watermark = max(self.high_watermark, min(leader_high_watermark, self.log.log_end_offset))
            return info

    def truncate_to(self, offset: int) -> tuple[int, int]:
        """Drop the log from `offset` on (a follower catching up with a new leader). Returns how
        many records went, and how many of them were below this replica's high watermark:
        acknowledged writes lost."""
        with self.lock:
            if offset >= self.log.log_end_offset:
                return 0, 0
            discarded = self.log.log_end_offset - offset
            acknowledged = max(0, min(self.high_watermark, self.log.log_end_offset) - offset)
            self.high_watermark = min(self.high_watermark, offset)
            self.log.truncate_to(offset)
            self.producers.truncate_to(offset)
            return discarded, acknowledged

    def truncate_fully_and_start_at(self, offset: int) -> None:
        with self.lock:
            self.log.truncate_fully_and_start_at(offset)
            self.producers = ProducerStateManager()
            self.high_watermark = offset

    # -- reads ---------------------------------------------------------------------------------

    def read(self, fetch_offset: int, max_bytes: int, up_to_high_watermark: bool) -> bytes:
        """Whole batches from `fetch_offset`; a consumer sees none at or above the high
        watermark. Raises OffsetOutOfRangeError."""
        limit = self.high_watermark if up_to_high_watermark else None
        return self.log.read(fetch_offset, max_bytes, limit)

    def offsets(self) -> tuple[int, int, int]:
        """(log start offset, high watermark, log end offset)."""
        with self.lock:
            return self.log.log_start_offset, self.high_watermark, self.log.log_end_offset
