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
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

from broker.errors import Errors
from broker.metadata_cache import TopicPartition

if TYPE_CHECKING:
    from broker.metadata_cache import PartitionInfo
    from broker.partition import Partition

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0  # a full fetch that opens a session (closing the one it names, if any)
FINAL_EPOCH = -1  # a full fetch without a session (closing the one it names, if any)
MAX_EPOCH = 2**31 - 1
# Kafka's fetch session eviction time: a session unused this long gives way to any new one.
SESSION_EVICTION_MS = 120_000


def next_epoch(epoch: int) -> int:
    """The epoch after `epoch`; after the largest int32 comes 1, as 0 would mean a new session."""
    return 1 if epoch >= MAX_EPOCH else epoch + 1


class PartitionData(NamedTuple):
    """What a fetcher asks of one partition: two equal ones need not be sent again."""

    fetch_offset: int
    current_leader_epoch: int = -1
    max_bytes: int = 1048576


# -- the leader's side -------------------------------------------------------------------------


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

    @classmethod
    def open(cls, replica_id: int, wanted: Mapping[TopicPartition, PartitionData], now_ms: int) -> FetchSession:
        """A full fetch's session, not yet in the cache (Kafka caches it once answered)."""
        partitions = {tp: CachedPartition(tp, *data) for tp, data in wanted.items()}
        return cls(INVALID_SESSION_ID, replica_id, partitions, now_ms, now_ms)

    def update(self, named: Mapping[TopicPartition, PartitionData], forgotten: Iterable[TopicPartition]) -> None:
        """An incremental request: forget first, then add or change the named partitions."""
        for tp in forgotten:
            self.partitions.pop(tp, None)
        for tp, data in named.items():
            cached = self.partitions.get(tp)
            if cached is None:
                self.partitions[tp] = CachedPartition(tp, *data)
            else:
                cached.update_request(data)

    def move_to_back(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            cached = self.partitions.pop(tp, None)
            if cached is not None:
                self.partitions[tp] = cached


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
    new_id: Callable[[], int] = field(default=lambda: random.randint(1, MAX_EPOCH))
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
        session.update(named, forgotten)
        # Bumped now, not once answered: a second request with the same epoch is refused.
        session.epoch = next_epoch(epoch)
        self._touch(session, now_ms)
        self.incremental_fetches += 1
        return FetchContext(FetchKind.INCREMENTAL, session)

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
    # The session's partitions once the leader has applied this request.
    session_partitions: Mapping[TopicPartition, PartitionData]

    @property
    def is_full(self) -> bool:
        return self.epoch in (INITIAL_EPOCH, FINAL_EPOCH)


@dataclass
class FetchSessionHandler:
    """The fetcher's side of a session with one leader (Kafka's FetchSessionHandler): what the
    leader holds, and so what the next request must name or forget."""

    session_id: int = INVALID_SESSION_ID
    epoch: int = INITIAL_EPOCH
    sent: Mapping[TopicPartition, PartitionData] = field(default_factory=dict)

    def build(self, wanted: Mapping[TopicPartition, PartitionData]) -> FetchRequestData:
        """The request for `wanted`, every partition to fetch now; the handler keeps a reference."""
        if self.epoch == INITIAL_EPOCH:
            return FetchRequestData(self.session_id, INITIAL_EPOCH, wanted, [], wanted)
        sent = self.sent
        to_send = {tp: data for tp, data in wanted.items() if sent.get(tp) != data}
        to_forget = [tp for tp in sent if tp not in wanted]
        return FetchRequestData(self.session_id, self.epoch, to_send, to_forget, wanted)

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
        else:
            self.epoch = next_epoch(self.epoch)
        self.sent = request.session_partitions
        return True

    def handle_error(self) -> None:
        """The request got no answer: what the leader holds is unknown, start over."""
        self._start_over()

    def _start_over(self) -> None:
        self.epoch = INITIAL_EPOCH
        self.sent = {}
