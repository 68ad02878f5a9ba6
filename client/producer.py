"""KafkaProducer: Kafka's producer (RecordAccumulator + Sender) over minikafka's gRPC Data service.

send() appends a record to its partition's open batch and returns at once; a background sender
thread turns batches into Kafka record batches (v2) when they are full (batch.size) or have
waited linger.ms, groups the ready batches of each leader into one Produce request, and
completes the records' futures from the answer. Per record, send() does a size check, a
partition choice and one list append under a lock; the bytes are built once per batch.

Retriable errors (a moved leader, too few in-sync replicas, a timeout, a broker that cannot be
reached) refresh the metadata and send the same batch again after retry.backoff.ms, until
retries or delivery.timeout.ms run out; other errors fail the batch's futures with KafkaError.

Idempotence (enable.idempotence, on by default with acks=all): the producer gets a producer id
with InitProducerId, and each batch carries it with the partition's next sequence number. Only
one batch per partition is in flight, and a retried batch is resent byte for byte, so a leader
that already appended it recognises the duplicate and answers with the original offset: no
record is written twice and order within a partition holds across retries.

"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple, TypeVar

import grpc

from broker.log.record_batch import HEADER_SIZE, build_batch
from client.cluster import ClusterMetadata, KafkaError, error_from_rpc
from client.partitioner import StickyPartitioner, partition_for_key
from client.security import PLAINTEXT, ClientSecurity
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")

SEQUENCE_MODULUS = 1 << 31
# The gRPC deadline of a Produce call is request.timeout.ms plus this, so that the leader's own
# answer to an acks=all wait that runs out (REQUEST_TIMED_OUT, or NONE just in time) gets back.
PRODUCE_DEADLINE_MARGIN_S = 1.0
# An upper bound of a record's bytes in a batch besides its key, value and headers: length,
# attributes, timestamp delta, offset delta, key and value lengths and header count.
RECORD_OVERHEAD = 16


class RecordMetadata(NamedTuple):
    topic: str
    partition: int
    offset: int  # -1 with acks=0: no answer says where the record went
    timestamp: int  # CreateTime, ms: the batch's, see KafkaProducer.send


class _BatchResult:
    """What a batch's records wait on (Kafka's ProduceRequestResult): one event per batch."""

    __slots__ = ("_callbacks", "_event", "base_offset", "done", "error", "partition", "timestamp", "topic")

    def __init__(self, topic: str, partition: int, timestamp: int) -> None:
        self.topic = topic
        self.partition = partition
        self.timestamp = timestamp
        self.base_offset = -1
        self.error: KafkaError | None = None
        self.done = False
        self._event = threading.Event()
        self._callbacks: list[tuple[Callable[[Any], None], FutureRecordMetadata]] = []

    def complete(self, base_offset: int, error: KafkaError | None) -> None:
        with _CALLBACKS_LOCK:
            self.base_offset = base_offset
            self.error = error
            self.done = True
            callbacks, self._callbacks = self._callbacks, []
        self._event.set()
        for fn, future in callbacks:
            _run_callback(fn, future)

    def wait(self, timeout: float | None) -> bool:
        return self._event.wait(timeout)

    def add_callback(self, fn: Callable[[Any], None], future: FutureRecordMetadata) -> bool:
        with _CALLBACKS_LOCK:
            if not self.done:
                self._callbacks.append((fn, future))
                return True
        return False


_CALLBACKS_LOCK = threading.Lock()


def _run_callback(fn: Callable[[Any], None], future: FutureRecordMetadata) -> None:
    try:
        fn(future)
    except Exception:
        log.exception("A send callback raised")


class FutureRecordMetadata:
    """The future send() returns (Kafka's FutureRecordMetadata): the concurrent.futures.Future
    methods, done/result/exception/add_done_callback, over the result its whole batch shares.
    A real Future per record would cost more than the rest of send(); as a consequence these
    cannot be given to concurrent.futures.wait() or as_completed()."""

    __slots__ = ("_relative_offset", "_result")

    def __init__(self, result: _BatchResult, relative_offset: int) -> None:
        self._result = result
        self._relative_offset = relative_offset

    def done(self) -> bool:
        return self._result.done

    def running(self) -> bool:
        return not self._result.done

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        """A record handed to the producer cannot be taken back, as in Kafka."""
        return False

    def result(self, timeout: float | None = None) -> RecordMetadata:
        result = self._result
        if not result.done and not result.wait(timeout):
            raise TimeoutError(f"no acknowledgement within {timeout} s")
        if result.error is not None:
            raise result.error.with_traceback(None)  # one exception for the batch: no traceback piling up
        offset = result.base_offset + self._relative_offset if result.base_offset >= 0 else -1
        return RecordMetadata(result.topic, result.partition, offset, result.timestamp)

    def exception(self, timeout: float | None = None) -> KafkaError | None:
        result = self._result
        if not result.done and not result.wait(timeout):
            raise TimeoutError(f"no acknowledgement within {timeout} s")
        return result.error

    def add_done_callback(self, fn: Callable[[FutureRecordMetadata], None]) -> None:
        """`fn(future)` once the record is acknowledged or failed; on the producer's sender thread
        (so it must be quick), or at once if it already is."""
        if not self._result.add_callback(fn, self):
            _run_callback(fn, self)


def _failed_future(topic: str, partition: int, error: KafkaError) -> FutureRecordMetadata:
    result = _BatchResult(topic, partition, -1)
    result.complete(-1, error)
    return FutureRecordMetadata(result, 0)


# -- the accumulator's batches ------------------------------------------------------------------


class _Batch:
    """Records for one partition (Kafka's ProducerBatch). The records are turned into bytes once,
    when the batch is first drained; a retry sends the same bytes."""

    __slots__ = (
        "attempts", "base_sequence", "created", "deadline", "full", "payload", "producer_id", "record_count",
        "records", "result", "retry_at", "size", "tp",
    )

    def __init__(self, tp: tuple[str, int], now: float, delivery_timeout_s: float) -> None:
        self.tp = tp
        self.records: list[tuple[Any, ...]] | None = []
        self.record_count = 0
        self.size = HEADER_SIZE
        self.created = now
        self.deadline = now + delivery_timeout_s
        self.full = False
        self.result = _BatchResult(tp[0], tp[1], int(time.time() * 1000))
        self.payload = b""
        self.producer_id = -1
        self.base_sequence = -1
        self.attempts = 0
        self.retry_at = 0.0


class _TopicInfo(NamedTuple):
    """What send() needs of a topic, kept apart so that it costs one dict lookup per record."""

    num_partitions: int
    available: frozenset[int]  # partitions with a leader


class _Completion(NamedTuple):
    broker_id: int
    batches: list[_Batch]
    call: grpc.Future


class KafkaProducer:
    """Kafka's producer. Configuration keeps Kafka's names, in snake case:

    - acks (`acks`): "all"/-1 every in-sync replica, 1 the leader, 0 no answer awaited.
    - batch_size (`batch.size`): bytes per partition batch; a full batch is sent at once.
    - linger_ms (`linger.ms`): how long a batch that is not full waits for more records.
    - retries (`retries`), retry_backoff_ms (`retry.backoff.ms`): retriable failures are retried
      this many times, this long apart, within delivery_timeout_ms (`delivery.timeout.ms`), the
      bound on the time from send() to the future's completion.
    - request_timeout_ms (`request.timeout.ms`): how long a request waits for its answer; also
      the Produce timeout the leader waits for acks=all.
    - max_request_size (`max.request.size`): a record larger than this fails at once with
      MESSAGE_TOO_LARGE; a Produce request carries at most this many bytes of batches.
    - enable_idempotence (`enable.idempotence`): on unless acks is not all (as Kafka since 3.2,
      where idempotence yields to an explicit acks); True with acks other than all is an error.
    - buffer_memory (`buffer.memory`) and max_block_ms (`max.block.ms`): send() blocks while this
      many bytes wait to be acknowledged, and while the topic's metadata is unknown, for at most
      max_block_ms.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        acks: int | str = "all",
        batch_size: int = 16384,
        linger_ms: float = 5,
        retries: int = 2**31 - 1,
        retry_backoff_ms: float = 100,
        delivery_timeout_ms: int = 120000,
        request_timeout_ms: int = 30000,
        max_request_size: int = 1048576,
        enable_idempotence: bool | None = None,
        buffer_memory: int = 33554432,
        max_block_ms: int = 60000,
        security: ClientSecurity = PLAINTEXT,
    ) -> None:
        self.acks = _parse_acks(acks)
        if enable_idempotence and self.acks != -1:
            raise ValueError("enable.idempotence needs acks=all: with fewer acks it cannot be guaranteed")
        if batch_size < 1 or max_request_size < 1 or buffer_memory < 1:
            raise ValueError("batch.size, max.request.size and buffer.memory must be positive")
        if linger_ms < 0 or retries < 0 or retry_backoff_ms < 0 or request_timeout_ms <= 0:
            raise ValueError("linger.ms, retries and retry.backoff.ms must not be negative; request.timeout.ms > 0")
        if delivery_timeout_ms < linger_ms + request_timeout_ms:
            raise ValueError("delivery.timeout.ms must be at least linger.ms + request.timeout.ms")
        self.idempotent = self.acks == -1 if enable_idempotence is None else enable_idempotence
        self._batch_size = batch_size
        self._linger_s = linger_ms / 1000
        self._retries = retries
        self._retry_backoff_s = retry_backoff_ms / 1000
        self._delivery_timeout_s = delivery_timeout_ms / 1000
        self._request_timeout_ms = request_timeout_ms
        self._max_request_size = max_request_size
        self._buffer_memory = buffer_memory
        self._max_block_s = max_block_ms / 1000
        self._cluster = ClusterMetadata(bootstrap_servers, request_timeout_ms, security)
        self._metadata_lock = threading.Lock()  # the caller's thread and the sender both refresh

        # Shared with send(), under _lock: the batches, the sticky partitions, what is pending.
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)  # the sender waits on it
        self._space = threading.Condition(self._lock)  # send() waits on it while buffer.memory is used up
        self._queues: dict[tuple[str, int], deque[_Batch]] = {}
        self._sticky = StickyPartitioner()
        self._topics: dict[str, _TopicInfo] = {}
        self._incomplete: set[_Batch] = set()
        self._buffered = 0
        self._completions: list[_Completion] = []
        self._woken = False
        self._flushing = 0
        self._closing = False
        self._force_close = False

        # The sender thread's own.
        self._in_flight: dict[tuple[str, int], _Batch] = {}
        self._next_sequence: dict[tuple[str, int], int] = {}
        self._producer_id = -1
        self._producer_epoch = -1
        self._producer_id_retry_at = 0.0
        self._metadata_due = False
        self._metadata_retry_at = 0.0
        self._metrics = {
            "record-send-total": 0, "record-retry-total": 0, "record-error-total": 0, "batch-send-total": 0,
            "request-total": 0, "metadata-refresh-total": 0,
        }
        self._sender = threading.Thread(target=self._run, name="kafka-producer-network-thread", daemon=True)
        self._sender.start()

    # -- the caller's side --------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> FutureRecordMetadata:
        """Queue a record; the future gives its RecordMetadata once acknowledged, or raises KafkaError.

        The partition is `partition`, else the key's murmur2 hash, else the topic's sticky
        partition. Records of one batch share its CreateTime timestamp (the batch's creation),
        where Kafka stamps each record: they differ by at most linger.ms.
        """
        size = RECORD_OVERHEAD + (len(value) if value is not None else 0) + (len(key) if key is not None else 0)
        if headers:
            size += sum(len(name) + (len(data) if data is not None else 0) + 8 for name, data in headers)
            record: tuple[Any, ...] = (key, value, tuple(headers))
        else:
            record = (key, value)
        if size + HEADER_SIZE > self._max_request_size:
            return _failed_future(topic, -1 if partition is None else partition, KafkaError(
                Errors.MESSAGE_TOO_LARGE,
                f"the record is {size + HEADER_SIZE} bytes in a batch, more than max.request.size "
                f"{self._max_request_size}",
            ))
        info = self._topics.get(topic)
        if info is None:
            try:
                info = self._wait_on_metadata(topic)
            except KafkaError as e:
                return _failed_future(topic, -1 if partition is None else partition, e)
        if partition is not None:
            if not 0 <= partition < info.num_partitions:
                raise ValueError(f"partition {partition} of topic '{topic}' does not exist "
                                 f"(it has {info.num_partitions})")
        elif key is not None:
            partition = partition_for_key(key, info.num_partitions)
        with self._lock:
            if self._closing:
                raise RuntimeError("cannot send after the producer is closed")
            if self._buffered + size > self._buffer_memory and self._buffered:
                try:
                    self._wait_for_space(size)
                except KafkaError as e:
                    return _failed_future(topic, -1 if partition is None else partition, e)
            sticky = partition is None
            if sticky:
                partition = self._sticky.partition(topic, info.available, info.num_partitions)
                queue = self._queues.get((topic, partition))
                batch = queue[-1] if queue else None
                if batch is None or batch.full or batch.size + size > self._batch_size:
                    partition = self._sticky.on_new_batch(topic, info.available, info.num_partitions)
            tp = (topic, partition)
            queue = self._queues.get(tp)
            if queue is None:
                queue = self._queues[tp] = deque()
            batch = queue[-1] if queue else None
            if batch is None or batch.full or batch.size + size > self._batch_size:
                if batch is not None:
                    batch.full = True
                batch = _Batch(tp, time.monotonic(), self._delivery_timeout_s)
                queue.append(batch)
                self._incomplete.add(batch)
                self._wake()
            batch.records.append(record)  # type: ignore[union-attr]
            index = batch.record_count
            batch.record_count = index + 1
            batch.size += size
            self._buffered += size
            if batch.size >= self._batch_size:
                batch.full = True
                self._wake()
            if sticky:
                self._sticky.record_appended(topic)
        return FutureRecordMetadata(batch.result, index)

    def _wake(self) -> None:
        """Under _lock: have the sender look again."""
        if not self._woken:
            self._woken = True
            self._wakeup.notify()

    def _wait_for_space(self, size: int) -> None:
        """Under _lock: Kafka's BufferPool, in bytes only: block until the sender frees enough."""
        deadline = time.monotonic() + self._max_block_s
        self._wake()
        while self._buffered and self._buffered + size > self._buffer_memory:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing:
                raise KafkaError(Errors.REQUEST_TIMED_OUT,
                                 f"no room in buffer.memory ({self._buffer_memory} bytes) within max.block.ms")
            self._space.wait(remaining)

    def _wait_on_metadata(self, topic: str) -> _TopicInfo:
        """Kafka's waitOnMetadata: fetch the topic's partitions, within max.block.ms."""
        deadline = time.monotonic() + self._max_block_s
        last_error = ""
        while True:
            try:
                self._refresh_metadata([*self._topics, topic])
            except KafkaError as e:
                last_error = f": {e}"
            info = self._topics.get(topic)
            if info is not None:
                return info
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                known = topic in self._cluster.unknown_topics
                raise KafkaError(
                    Errors.UNKNOWN_TOPIC_OR_PARTITION,
                    f"topic '{topic}' not present in metadata after {self._max_block_s * 1000:.0f} ms (max.block.ms)"
                    + (": the cluster does not know it" if known else last_error),
                )
            time.sleep(min(remaining, max(self._retry_backoff_s, 0.01)))

    def _refresh_metadata(self, topics: Collection[str]) -> None:
        if not topics:
            return
        with self._metadata_lock:
            self._cluster.refresh(topics)
            self._metrics["metadata-refresh-total"] += 1
            for name in topics:
                partitions = self._cluster.partitions(name)
                if partitions:
                    self._topics[name] = _TopicInfo(
                        max(partitions) + 1, frozenset(p for p, info in partitions.items() if info.leader >= 0)
                    )
                else:
                    self._topics.pop(name, None)

    def flush(self, timeout: float | None = None) -> None:
        """Send every record queued so far at once (linger.ms aside) and wait until each is
        acknowledged or failed; TimeoutError if that takes longer than `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flushing += 1
            pending = [b.result for b in self._incomplete]
            self._wake()
        try:
            for result in pending:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not result.wait(remaining):
                    raise TimeoutError(f"flush: records still unacknowledged after {timeout} s")
        finally:
            with self._lock:
                self._flushing -= 1

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued and wait for it (at most `timeout` seconds), then fail what is left
        with KafkaError and release the connections. send() after close() raises RuntimeError."""
        with self._lock:
            self._closing = True
            self._space.notify_all()
            self._wake()
        if threading.current_thread() is not self._sender:
            self._sender.join(timeout)
            if self._sender.is_alive():
                with self._lock:
                    self._force_close = True
                    self._wake()
                self._sender.join()
        self._cluster.close()

    def __enter__(self) -> KafkaProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions, waiting for its metadata as send() does."""
        info = self._topics.get(topic) or self._wait_on_metadata(topic)
        return set(range(info.num_partitions))

    def metrics(self) -> dict[str, int]:
        """Counters, by Kafka's producer metric names: records sent (first attempts), retried and
        failed, batches and Produce requests sent, metadata refreshes; and the records and bytes
        that wait now."""
        with self._lock:
            waiting = sum(b.record_count for b in self._incomplete)
            buffered = self._buffered
        return {**self._metrics, "records-waiting": waiting, "buffer-bytes-used": buffered}

    # -- the sender thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._run_once():
                pass
        except BaseException as e:  # the futures must not wait forever on a dead thread
            log.exception("The producer's sender thread failed")
            self._fail_all(KafkaError(Errors.UNKNOWN_SERVER_ERROR, f"the producer's sender thread failed: {e!r}"))
            raise

    def _run_once(self) -> bool:
        """One round of Kafka's Sender.runOnce: answers, metadata, producer id, drain, send, expire."""
        with self._lock:
            completions, self._completions = self._completions, []
        for completion in completions:
            self._handle_completion(completion)
        now = time.monotonic()
        if self._force_close:
            self._fail_all(KafkaError(Errors.REQUEST_TIMED_OUT, "the producer was closed before the records were sent"))
            return False
        if self._metadata_due and now >= self._metadata_retry_at:
            self._metadata_due = False
            self._metadata_retry_at = now + self._retry_backoff_s
            with self._lock:
                queued = {tp[0] for tp in self._queues}
            try:
                self._refresh_metadata(queued | set(self._topics))
            except KafkaError as e:
                log.warning("Metadata refresh failed: %s", e)
                self._metadata_due = True
        if self.idempotent and self._producer_id < 0 and now >= self._producer_id_retry_at:
            self._init_producer_id()
        ready, expired, wait_until = self._drain(time.monotonic())
        for batch, error in expired:
            self._fail(batch, error)
        for broker_id, batches in ready.items():
            self._send_produce(broker_id, batches)
        with self._lock:
            if self._closing and not self._incomplete and not self._completions and not self._in_flight:
                return False
            if not self._woken:
                timeout = None if wait_until is None else max(0.0, wait_until - time.monotonic())
                self._wakeup.wait(timeout)
            self._woken = False
        return True

    def _init_producer_id(self) -> None:
        """Kafka's InitProducerId for an idempotent producer (no transactional id): any broker."""
        request = kafka_pb2.InitProducerIdRequest()
        try:
            response = self._cluster.call_any("InitProducerId", lambda channel, timeout: kafka_pb2_grpc.DataStub(
                channel).InitProducerId(request, timeout=timeout))
            if response.error_code != Errors.NONE.code:
                raise KafkaError(Errors.for_code(response.error_code), response.error_message)
        except KafkaError as e:
            log.warning("InitProducerId failed, retrying in %.0f ms: %s", self._retry_backoff_s * 1000, e)
            self._producer_id_retry_at = time.monotonic() + self._retry_backoff_s
            return
        self._producer_id, self._producer_epoch = response.producer_id, response.producer_epoch
        self._next_sequence.clear()
        log.info("ProducerId set to %d with epoch %d", self._producer_id, self._producer_epoch)

    def _drain(
        self, now: float
    ) -> tuple[dict[int, list[_Batch]], list[tuple[_Batch, KafkaError]], float | None]:
        """Kafka's RecordAccumulator.ready + drain: for each leader, the head batch of each of its
        partitions that is ready (full, lingered long enough, a retry whose backoff is over, or
        flushed) and has nothing in flight, up to max.request.size; batches past
        delivery.timeout.ms; and when something next becomes ready."""
        ready: dict[int, list[_Batch]] = {}
        sizes: dict[int, int] = {}
        expired: list[tuple[_Batch, KafkaError]] = []
        wait_until: float | None = None
        cluster = self._cluster
        blocked = self.idempotent and self._producer_id < 0
        with self._lock:
            send_all = self._flushing > 0 or self._closing
            for tp, queue in self._queues.items():
                if not queue:
                    continue
                batch = queue[0]
                if now >= batch.deadline:
                    queue.popleft()
                    expired.append((batch, KafkaError(
                        Errors.REQUEST_TIMED_OUT,
                        f"expiring {batch.record_count} record(s) for {tp[0]}-{tp[1]}: "
                        f"{(now - batch.created) * 1000:.0f} ms has passed since batch creation "
                        f"(delivery.timeout.ms)",
                    )))
                    continue
                deadline = batch.deadline
                if tp in self._in_flight:
                    continue  # its answer wakes the sender
                if batch.attempts:
                    due = batch.retry_at
                elif batch.full or len(queue) > 1 or send_all:
                    due = now
                else:
                    due = batch.created + self._linger_s
                if blocked:
                    due = max(due, self._producer_id_retry_at)
                if due > now:
                    wait_until = _earliest(wait_until, min(due, deadline))
                    continue
                info = cluster.leader(tp)
                if info is None or info.leader < 0 or info.leader not in cluster.brokers:
                    self._metadata_due = True
                    wait_until = _earliest(wait_until, min(deadline, max(now, self._metadata_retry_at)))
                    continue
                leader = info.leader
                used = sizes.get(leader, 0)
                if used and used + batch.size > self._max_request_size:
                    wait_until = now  # the rest goes in the next request
                    continue
                sizes[leader] = used + batch.size
                queue.popleft()
                batch.full = True  # no record joins a batch on its way
                ready.setdefault(leader, []).append(batch)
        return ready, expired, wait_until

    def _send_produce(self, broker_id: int, batches: list[_Batch]) -> None:
        by_topic: dict[str, list[kafka_pb2.ProducePartitionData]] = {}
        for batch in batches:
            if batch.records is not None:
                self._seal(batch)
            self._in_flight[batch.tp] = batch
            by_topic.setdefault(batch.tp[0], []).append(
                kafka_pb2.ProducePartitionData(partition=batch.tp[1], records=batch.payload)
            )
            if batch.attempts == 0:
                self._metrics["record-send-total"] += batch.record_count
            self._metrics["batch-send-total"] += 1
        request = kafka_pb2.ProduceRequest(
            acks=self.acks, timeout_ms=self._request_timeout_ms,
            topics=[kafka_pb2.ProduceTopicData(name=topic, partitions=data) for topic, data in by_topic.items()],
        )
        self._metrics["request-total"] += 1
        try:
            stub = self._cluster.data_stub(broker_id)
            if stub is None:
                raise KafkaError(Errors.LEADER_NOT_AVAILABLE, f"broker {broker_id} is not in the metadata")
            call = stub.Produce.future(request, timeout=self._request_timeout_ms / 1000 + PRODUCE_DEADLINE_MARGIN_S)
        except KafkaError as e:
            for batch in batches:
                self._in_flight.pop(batch.tp, None)
                self._retry_or_fail(batch, e)
            return
        if self.acks == 0:
            # Nothing will say whether it arrived: the records count as sent. The partitions stay
            # muted until the call returns, so that the leader gets their batches in order.
            for batch in batches:
                self._complete(batch, -1)
        call.add_done_callback(lambda c: self._on_answer(_Completion(broker_id, batches, c)))

    def _seal(self, batch: _Batch) -> None:
        """Build the batch's bytes, with the partition's next sequence if idempotent."""
        if self.idempotent:
            sequence = self._next_sequence.get(batch.tp, 0)
            self._next_sequence[batch.tp] = (sequence + batch.record_count) % SEQUENCE_MODULUS
            batch.producer_id, batch.base_sequence = self._producer_id, sequence
            batch.payload = build_batch(batch.records, batch.result.timestamp, 0, self._producer_id,  # type: ignore[arg-type]
                                        self._producer_epoch, sequence)
        else:
            batch.payload = build_batch(batch.records, batch.result.timestamp)  # type: ignore[arg-type]
        batch.records = None

    def _on_answer(self, completion: _Completion) -> None:
        """On a gRPC thread: hand the answer to the sender thread, which owns the batches."""
        with self._lock:
            self._completions.append(completion)
            self._wake()

    def _handle_completion(self, completion: _Completion) -> None:
        for batch in completion.batches:
            self._in_flight.pop(batch.tp, None)
        if self.acks == 0:
            return
        try:
            response = completion.call.result()
        except (grpc.RpcError, grpc.FutureCancelledError) as e:
            error = error_from_rpc(e, f"broker {completion.broker_id}")
            for batch in completion.batches:
                self._retry_or_fail(batch, error)
            return
        answers = {(t.name, p.partition): p for t in response.topics for p in t.partitions}
        for batch in completion.batches:
            answer = answers.get(batch.tp)
            if response.error_code != Errors.NONE.code:
                self._retry_or_fail(batch, KafkaError(Errors.for_code(response.error_code)))
            elif answer is None:
                self._retry_or_fail(batch, KafkaError(
                    Errors.UNKNOWN_SERVER_ERROR, f"the Produce answer has no result for {batch.tp[0]}-{batch.tp[1]}"))
            elif answer.error_code == Errors.NONE.code:
                self._complete(batch, answer.base_offset)
            else:
                error = Errors.for_code(answer.error_code)
                if error is Errors.NOT_LEADER_OR_FOLLOWER and answer.current_leader_id >= 0:
                    self._cluster.update_leader(batch.tp, answer.current_leader_id, answer.current_leader_epoch)
                self._retry_or_fail(batch, KafkaError(error, answer.error_message))

    def _retry_or_fail(self, batch: _Batch, error: KafkaError) -> None:
        """Kafka's Sender.completeBatch for an error: requeue a retriable failure at the head of its
        partition (its bytes and sequence unchanged) or fail the batch."""
        now = time.monotonic()
        retry_at = now + self._retry_backoff_s
        if error.retriable and batch.attempts < self._retries and retry_at < batch.deadline and not self._force_close:
            batch.attempts += 1
            batch.retry_at = retry_at
            self._metrics["record-retry-total"] += batch.record_count
            self._metadata_due = True
            # Once per batch at WARNING: a broker that stays down would otherwise fill the log.
            log.log(logging.WARNING if batch.attempts == 1 else logging.DEBUG,
                    "Got error produce response on %s-%d, retrying (attempt %d of %d): %s",
                    batch.tp[0], batch.tp[1], batch.attempts, self._retries, error)
            with self._lock:
                self._queues[batch.tp].appendleft(batch)
            return
        if error.retriable:
            reason = "retries exhausted" if batch.attempts >= self._retries else "delivery.timeout.ms would pass"
            error = KafkaError(error.error, f"{error.message} ({reason} after {batch.attempts + 1} attempts)")
        self._fail(batch, error)

    def _complete(self, batch: _Batch, base_offset: int) -> None:
        if batch.result.done:
            return
        batch.result.complete(base_offset, None)
        self._release(batch)

    def _fail(self, batch: _Batch, error: KafkaError) -> None:
        if batch.result.done:
            return
        self._metrics["record-error-total"] += batch.record_count
        log.warning("Failed %d record(s) for %s-%d: %s", batch.record_count, batch.tp[0], batch.tp[1], error)
        if batch.base_sequence >= 0 and batch.producer_id == self._producer_id:
            self._forget_sequence(batch, error)
        batch.result.complete(-1, error)
        self._release(batch)

    def _forget_sequence(self, batch: _Batch, error: KafkaError) -> None:
        """A failed batch must not leave a gap in its partition's sequence, or every later batch
        fails as OUT_OF_ORDER_SEQUENCE_NUMBER. Where the leader surely did not append it, the next
        batch takes its sequence (nothing after it has one: one batch in flight per partition).
        Where it may have been appended (a timeout, an append the ISR did not confirm) or the
        leader's state of this producer disagrees with ours (OUT_OF_ORDER_SEQUENCE_NUMBER,
        UNKNOWN_PRODUCER_ID), the producer takes a new producer id and starts every partition's
        sequence again at 0, as Kafka's idempotent producer did before KIP-360 bumped epochs."""
        if error.error in (Errors.REQUEST_TIMED_OUT, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                           Errors.OUT_OF_ORDER_SEQUENCE_NUMBER, Errors.UNKNOWN_PRODUCER_ID,
                           Errors.BROKER_NOT_AVAILABLE, Errors.UNKNOWN_SERVER_ERROR):
            log.warning("Resetting the producer id %d after %s on %s-%d", self._producer_id, error.error.name,
                        batch.tp[0], batch.tp[1])
            self._producer_id = -1
            self._next_sequence.clear()
        else:
            self._next_sequence[batch.tp] = batch.base_sequence

    def _release(self, batch: _Batch) -> None:
        with self._lock:
            self._incomplete.discard(batch)
            self._buffered -= batch.size - HEADER_SIZE
            self._space.notify_all()

    def _fail_all(self, error: KafkaError) -> None:
        with self._lock:
            batches = list(self._incomplete)
            for queue in self._queues.values():
                queue.clear()
        for batch in batches:
            self._fail(batch, error)


def _earliest(a: float | None, b: float) -> float:
    return b if a is None or b < a else a


def _parse_acks(acks: int | str) -> int:
    value = {"all": -1, "-1": -1, "1": 1, "0": 0}.get(str(acks).strip().lower())
    if value is None:
        raise ValueError(f"acks must be all, -1, 1 or 0, not {acks!r}")
    return value
