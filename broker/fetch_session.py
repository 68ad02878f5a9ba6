"""Incremental fetch sessions (KIP-227): Kafka's FetchSession, FetchSessionCache and FetchContext on
the leader's side, FetchSessionHandler on the fetcher's, as plain data and rules (no threads, no
gRPC, no clock of their own).

A fetcher's first request names every partition it wants (a full fetch, epoch 0); the leader keeps
what was asked and what it answered in a session and returns the session's id. Every later request
(epoch 1, 2, ...) names only the partitions whose fetch offset, leader epoch or max bytes changed,
and the ones to forget; the leader answers only the partitions with something new to say: records,
an error, a high watermark or log start offset it has not sent yet. The fetcher keeps the others as
they were. A request with an unknown session id or an unexpected epoch is refused as a whole
(FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH) and the fetcher starts over with a full
fetch.

Kafka's leader still reads every partition of a session at each fetch. Here a session reads only
the partitions its request named, those not idle at their last read, and those the replica
manager reports changed since; the others are idle, and their follower caught up as of the
session's latest fetch (its FetchClock). An idle session costs its leader nothing per partition.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from broker.metadata_cache import TopicPartition
from minikafka_protocol.errors import Errors

if TYPE_CHECKING:
    from broker.metadata_cache import PartitionInfo
    from broker.partition import Partition

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0  # a full fetch that opens a session (closing the one it names, if any)
FINAL_EPOCH = -1  # a full fetch without a session (closing the one it names, if any)
INT32_MAX = 2**31 - 1
# Kafka's fetch session eviction time: a session unused this long is dropped.
SESSION_EVICTION_MS = 120_000


def next_epoch(epoch: int) -> int:
    """The epoch after `epoch`; after the largest int32 comes 1, as 0 would mean a new session."""
    return 1 if epoch >= INT32_MAX else epoch + 1


class PartitionData(NamedTuple):
    """What a fetcher asks of one partition: two equal ones need not be sent again."""

    fetch_offset: int
    current_leader_epoch: int = -1
    max_bytes: int = 1048576


# -- the leader's side -------------------------------------------------------------------------


@dataclass(slots=True)
class FetchClock:
    """When a session's follower last fetched. A partition found caught up at a read of the session
    and unchanged since was still caught up at each later fetch: the leader's view of that
    follower points here instead of being written at every fetch."""

    last_fetch_ms: int = 0


@dataclass(eq=False, slots=True)
class CachedPartition:
    """One partition of a session (Kafka's CachedPartition): the fetcher's last request for it and
    the leader's last answer."""

    tp: TopicPartition
    fetch_offset: int
    current_leader_epoch: int = -1
    max_bytes: int = 1048576
    # As last sent; -1 before the first answer and after an error, so that the next answer goes out.
    high_watermark: int = -1
    log_start_offset: int = -1
    # The leader's replica, and the state it had, when last read without error: the replica manager
    # compares them and a few offsets to tell an idle partition without reading it.
    replica: Partition | None = None
    replica_state: PartitionInfo | None = None

    def update_request(self, data: PartitionData) -> None:
        self.fetch_offset, self.current_leader_epoch, self.max_bytes = data
        self.replica = self.replica_state = None  # asked anew: read it

    def must_respond(self, error: Errors, has_records: bool, high_watermark: int, log_start_offset: int) -> bool:
        """Kafka's maybeUpdateResponseData: whether this answer goes out in an incremental fetch,
        which it does with records, an error, or a high watermark or log start offset the fetcher
        has not been sent. The session then holds what was sent."""
        if error is not Errors.NONE:
            # Errors always go out, and the first answer after one too.
            self.high_watermark = -1
            self.replica = self.replica_state = None
            return True
        respond = has_records
        if high_watermark != self.high_watermark:
            self.high_watermark = high_watermark
            respond = True
        if log_start_offset != self.log_start_offset:
            self.log_start_offset = log_start_offset
            respond = True
        return respond


@dataclass(eq=False)
class FetchSession:
    """A fetcher's partitions on this leader, in the order they are read: the ones last answered
    with records go to the back, so that a full response cannot starve the others."""

    id: int
    replica_id: int
    partitions: dict[TopicPartition, CachedPartition]
    created_ms: int = 0
    last_used_ms: int = 0
    epoch: int = 1  # the epoch the next request must carry
    # Partitions to read at the next fetch whatever else changed: named by a request, or not idle
    # at their last read (records or an error sent, or no room for their records). Keyed for its
    # order: the one waiting longest is read first.
    unsettled: dict[TopicPartition, None] = field(default_factory=dict)
    # How far this session has read the replica manager's log of changed partitions.
    changes_seen: int = 0
    clock: FetchClock = field(default_factory=FetchClock)

    @classmethod
    def open(cls, replica_id: int, wanted: Mapping[TopicPartition, PartitionData], now_ms: int) -> FetchSession:
        """A full fetch's session, not yet in the cache (Kafka caches it once answered)."""
        partitions = {tp: CachedPartition(tp, *data) for tp, data in wanted.items()}
        return cls(INVALID_SESSION_ID, replica_id, partitions, now_ms, now_ms)

    def update(
        self, named: Mapping[TopicPartition, PartitionData], forgotten: Iterable[TopicPartition]
    ) -> list[CachedPartition]:
        """An incremental request: forget first, then add or change the named partitions.
        Returns the forgotten ones."""
        gone = []
        for tp in forgotten:
            cached = self.partitions.pop(tp, None)
            self.unsettled.pop(tp, None)
            if cached is not None:
                gone.append(cached)
        for tp, data in named.items():
            cached = self.partitions.get(tp)
            if cached is None:
                self.partitions[tp] = CachedPartition(tp, *data)
            else:
                cached.update_request(data)
            self.unsettled[tp] = None
        return gone

    def to_read(self, changed: Iterable[TopicPartition] | None) -> list[CachedPartition]:
        """The partitions a fetch reads: the unsettled ones, then those of `changed` in this
        session; every one when changed is None (a full fetch, or changes no longer known)."""
        partitions = self.partitions
        if changed is None:
            return list(partitions.values())
        unsettled = self.unsettled
        chosen = [partitions[tp] for tp in unsettled]
        chosen += [partitions[tp] for tp in changed if tp in partitions and tp not in unsettled]
        return chosen

    def read(self, tp: TopicPartition, idle: bool, sent_records: bool) -> None:
        """What a read of `tp` found. Idle: its log ends at the fetch offset and the fetcher has
        its offsets, so it settles until it changes. With records sent it goes to the back."""
        if idle:
            self.unsettled.pop(tp, None)
        elif sent_records:
            self.unsettled.pop(tp, None)
            self.unsettled[tp] = None
            self.partitions[tp] = self.partitions.pop(tp)
        else:
            self.unsettled.setdefault(tp, None)


class FetchKind(Enum):
    SESSIONLESS = "sessionless"  # answer every partition, keep nothing
    FULL = "full"  # answer every partition, then cache the new session
    INCREMENTAL = "incremental"  # answer only what changed
    ERROR = "error"  # refuse the whole request


@dataclass(eq=False)
class FetchContext:
    """How one fetch request is answered (Kafka's FetchContext)."""

    kind: FetchKind
    session: FetchSession | None = None
    error: Errors = Errors.NONE
    # The partitions an incremental request made its session forget.
    forgotten: list[CachedPartition] = field(default_factory=list)


@dataclass
class FetchSessionCache:
    """The leader's sessions (Kafka's FetchSessionCache), least recently used first.

    When the cache is full, a new session first takes the place of one unused for eviction_ms, then
    of the least recently used one. Kafka instead lets a new session evict only a less privileged
    one (a consumer's before a follower's, then the one with fewer partitions) and otherwise goes
    without; here only followers open sessions, a handful per broker, so the plain LRU rule never
    has to choose between them. Sessions unused for eviction_ms are also dropped at each request,
    so that a fetcher that went away does not hold its partitions forever."""

    max_slots: int = 1000
    eviction_ms: int = SESSION_EVICTION_MS
    new_id: Callable[[], int] = field(default=lambda: random.randint(1, INT32_MAX))
    sessions: OrderedDict[int, FetchSession] = field(default_factory=OrderedDict)
    evictions: int = 0
    incremental_fetches: int = 0

    def new_context(
        self, replica_id: int, session_id: int, epoch: int, named: Mapping[TopicPartition, PartitionData],
        forgotten: Iterable[TopicPartition], now_ms: int, may_open: bool = True,
    ) -> FetchContext:
        """Kafka's FetchManager.newContext. A fetcher that may not open a session (may_open false)
        gets a sessionless full fetch instead, its answer carrying session id 0 as when the cache
        has no room."""
        self.drop_idle(now_ms)
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                self.sessions.pop(session_id, None)
            if epoch == FINAL_EPOCH or not may_open or self.max_slots <= 0:
                return FetchContext(FetchKind.SESSIONLESS)
            return FetchContext(FetchKind.FULL, FetchSession.open(replica_id, named, now_ms))
        if epoch < FINAL_EPOCH:
            return FetchContext(FetchKind.ERROR, error=Errors.INVALID_FETCH_SESSION_EPOCH)
        session = self.sessions.get(session_id)
        if session is None or session.replica_id != replica_id:
            return FetchContext(FetchKind.ERROR, error=Errors.FETCH_SESSION_ID_NOT_FOUND)
        if session.epoch != epoch:
            return FetchContext(FetchKind.ERROR, error=Errors.INVALID_FETCH_SESSION_EPOCH)
        gone = session.update(named, forgotten)
        # Bumped now, not once answered: a second request with the same epoch is refused.
        session.epoch = next_epoch(epoch)
        self._touch(session, now_ms)
        self.incremental_fetches += 1
        return FetchContext(FetchKind.INCREMENTAL, session, forgotten=gone)

    def add(self, session: FetchSession, now_ms: int) -> int:
        """Cache a full fetch's new session, making room if needed; returns its id, or 0 when
        sessions are turned off."""
        if self.max_slots <= 0:
            return INVALID_SESSION_ID
        self.drop_idle(now_ms)
        while len(self.sessions) >= self.max_slots:
            self.sessions.popitem(last=False)
            self.evictions += 1
        session.id = self.new_id()
        while session.id in self.sessions or session.id == INVALID_SESSION_ID:
            session.id = self.new_id()
        session.epoch = next_epoch(INITIAL_EPOCH)
        session.last_used_ms = now_ms
        self.sessions[session.id] = session
        return session.id

    def drop_idle(self, now_ms: int) -> None:
        while self.sessions:
            oldest = next(iter(self.sessions.values()))
            if now_ms - oldest.last_used_ms <= self.eviction_ms:
                return
            del self.sessions[oldest.id]
            self.evictions += 1

    def partitions_cached(self) -> int:
        return sum(len(s.partitions) for s in self.sessions.values())

    def _touch(self, session: FetchSession, now_ms: int) -> None:
        session.last_used_ms = now_ms
        self.sessions.move_to_end(session.id)


# -- the fetcher's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchRequestData:
    """One request as the session handler built it."""

    session_id: int
    epoch: int
    to_send: Mapping[TopicPartition, PartitionData]
    to_forget: list[TopicPartition]
    # How many partitions the session holds once the leader has applied this request.
    session_size: int

    @property
    def is_full(self) -> bool:
        return self.epoch in (INITIAL_EPOCH, FINAL_EPOCH)


@dataclass
class FetchSessionHandler:
    """The fetcher's side of a session with one leader (Kafka's FetchSessionHandler): what the
    leader holds, and so what the next request must name or forget. Kafka's handler is given
    every partition at each request; this one, after a full request, only the partitions whose
    request may have changed, so that an idle fetcher costs nothing per partition either."""

    session_id: int = INVALID_SESSION_ID
    epoch: int = INITIAL_EPOCH
    sent: dict[TopicPartition, PartitionData] = field(default_factory=dict)

    @property
    def wants_full(self) -> bool:
        """The next request must name every partition."""
        return self.epoch == INITIAL_EPOCH

    def build_full(self, wanted: Mapping[TopicPartition, PartitionData]) -> FetchRequestData:
        """A full request for `wanted`, every partition to fetch now."""
        return FetchRequestData(self.session_id, INITIAL_EPOCH, wanted, [], len(wanted))

    def build_incremental(self, changed: Mapping[TopicPartition, PartitionData | None]) -> FetchRequestData:
        """The next incremental request: `changed` maps the partitions whose request may have
        changed since the last one to what is asked of them now, or to None when they are no
        longer fetched."""
        assert not self.wants_full, "a full request is due"
        sent = self.sent
        to_send = {tp: data for tp, data in changed.items() if data is not None and sent.get(tp) != data}
        to_forget = [tp for tp, data in changed.items() if data is None and tp in sent]
        size = len(sent) + sum(1 for tp in to_send if tp not in sent) - len(to_forget)
        return FetchRequestData(self.session_id, self.epoch, to_send, to_forget, size)

    def handle_response(self, request: FetchRequestData, error: Errors, session_id: int) -> bool:
        """Kafka's handleResponse: whether the answer can be used. A session error means the
        next request is a full one, opening a new session (closing the old one when the leader
        still has it)."""
        if error is not Errors.NONE:
            if error is Errors.FETCH_SESSION_ID_NOT_FOUND:
                self.session_id = INVALID_SESSION_ID
            self._start_over()
            return False
        if request.is_full:
            # A leader without room answers with session id 0: keep making full fetches.
            self.session_id = session_id
            self.epoch = INITIAL_EPOCH if session_id == INVALID_SESSION_ID else next_epoch(INITIAL_EPOCH)
            self.sent = dict(request.to_send) if session_id != INVALID_SESSION_ID else {}
            return True
        self.epoch = next_epoch(self.epoch)
        self.sent.update(request.to_send)
        for tp in request.to_forget:
            del self.sent[tp]
        return True

    def handle_error(self) -> None:
        """The request got no answer: what the leader holds is unknown, start over."""
        self._start_over()

    def _start_over(self) -> None:
        self.epoch = INITIAL_EPOCH
        self.sent = {}
