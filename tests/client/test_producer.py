"""The producer against a fake cluster: in-process gRPC brokers answering from scripted state.

FakeCluster is also what the consumer's and the command line's tests run against.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fake_cluster import FakeCluster, ProduceSeen, Scripted, wait_for
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from broker.log.record_batch import batches, read_header, read_records
from client.cluster import KafkaError
from client.partitioner import partition_for_key
from client.producer import KafkaProducer, RecordMetadata
from minikafka_protocol.errors import Errors


@pytest.fixture
def topics() -> dict[str, list[int]]:
    return {"t": [1, 2, 3]}


def seen_for(cluster: FakeCluster, tp: tuple[str, int]) -> list[ProduceSeen]:
    with cluster.lock:
        return [s for s in cluster.produce_seen if (s.topic, s.partition) == tp]


# -- batching and partitioning -------------------------------------------------------------------


def test_records_for_one_partition_travel_in_one_batch_with_consecutive_offsets(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(linger_ms=60000)
    sent = [producer.send("t", f"v{i}".encode(), key=b"k", partition=1) for i in range(10)]
    assert not cluster.produce_seen  # still lingering: batch.size is far
    producer.flush(timeout=5)
    [request] = cluster.produce_seen
    assert (request.broker_id, request.acks, request.partition) == (2, -1, 1)
    assert [r.value for r in read_records(request.records)] == [f"v{i}".encode() for i in range(10)]
    metadata = [f.result() for f in sent]
    assert [m.offset for m in metadata] == list(range(10))
    assert {(m.topic, m.partition) for m in metadata} == {("t", 1)}
    assert all(isinstance(m, RecordMetadata) and m.timestamp > 0 for m in metadata)


def test_a_full_batch_is_sent_without_waiting_for_linger(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(linger_ms=60000, batch_size=1000)
    sent = [producer.send("t", b"x" * 100, partition=0) for _ in range(20)]
    wait_for(lambda: len(seen_for(cluster, ("t", 0))) >= 2, what="two full batches")
    producer.flush(timeout=5)
    sizes = [len(s.records) for s in seen_for(cluster, ("t", 0))]
    assert all(size <= 1000 for size in sizes) and len(sizes) >= 3
    assert [f.result().offset for f in sent] == list(range(20))


def test_keyed_records_go_to_the_partition_of_kafkas_murmur2_hash(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer()
    keys = [f"user-{i}".encode() for i in range(60)]
    sent = [(key, producer.send("t", b"v", key=key)) for key in keys]
    producer.flush(timeout=5)
    for key, future in sent:
        expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % 3  # kafka-python's partitioner, as a second opinion
        assert future.result().partition == expected == partition_for_key(key, 3)
    assert {f.result().partition for _, f in sent} == {0, 1, 2}
    for tp in [("t", 0), ("t", 1), ("t", 2)]:
        assert all(partition_for_key(r.key, 3) == tp[1] for r in cluster.log_records(tp))


def test_keyless_records_stick_to_a_partition_until_its_batch_is_full(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(linger_ms=60000, batch_size=1200)
    sent = [producer.send("t", b"x" * 100) for _ in range(40)]
    producer.flush(timeout=5)
    partitions = [f.result().partition for f in sent]
    runs = [p for i, p in enumerate(partitions) if i == 0 or p != partitions[i - 1]]
    assert len(runs) >= 3  # moved on more than once
    counts = [read_header(request.records).records_count for request in cluster.produce_seen]
    assert sum(counts) == 40 and len([c for c in counts if c < 9]) <= 1  # full batches, but for the last


def test_record_larger_than_max_request_size_fails_at_once(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(max_request_size=1000)
    future = producer.send("t", b"x" * 1000, partition=0)
    error = future.exception(timeout=0)
    assert isinstance(error, KafkaError) and error.error is Errors.MESSAGE_TOO_LARGE
    assert "max.request.size" in str(error)
    with pytest.raises(KafkaError):
        future.result()
    producer.flush(timeout=5)
    assert cluster.produce_seen == []


def test_batches_for_one_leader_share_one_produce_request(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    cluster.create_topic("two", [1, 1])
    producer = make_producer(linger_ms=60000)
    sent = [producer.send("two", b"a", partition=0), producer.send("two", b"b", partition=1),
            producer.send("t", b"c", partition=0)]
    producer.flush(timeout=5)
    assert [f.result().offset for f in sent] == [0, 0, 0]
    by_request = {(s.topic, s.partition): s for s in cluster.produce_seen}
    assert {s.broker_id for s in by_request.values()} == {1}
    # One request carried all three batches: they arrived together, in one answer's worth.
    assert producer.metrics()["request-total"] == 1


# -- idempotence and ordering ---------------------------------------------------------------------


def test_idempotent_batches_carry_the_producer_id_and_each_partitions_sequence(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(batch_size=500)
    for i in range(30):
        producer.send("t", b"x" * 40, partition=i % 2)
    producer.flush(timeout=5)
    assert producer.idempotent
    for partition in (0, 1):
        headers = [s.header for s in seen_for(cluster, ("t", partition))]
        assert {(h.producer_id, h.producer_epoch) for h in headers} == {(1000, 0)}
        expected, sequences = 0, []
        for h in headers:
            sequences.append(h.base_sequence)
            assert h.base_sequence == expected
            expected += h.records_count
        assert expected == 15 and len(sequences) >= 2


def test_sequence_numbers_wrap_at_2_to_the_31(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(linger_ms=60000)
    producer.send("t", b"first", partition=0)
    producer.flush(timeout=5)
    producer._next_sequence[("t", 0)] = 2**31 - 2  # as after two billion records, a test cannot send that many
    for _ in range(3):
        producer.send("t", b"v", partition=0)
    producer.flush(timeout=5)
    producer.send("t", b"after", partition=0)
    producer.flush(timeout=5)
    assert [s.header.base_sequence for s in seen_for(cluster, ("t", 0))] == [0, 2**31 - 2, 1]
    assert seen_for(cluster, ("t", 0))[1].header.last_sequence == 0


def test_only_one_batch_per_partition_is_in_flight_while_partitions_go_concurrently(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(batch_size=300, linger_ms=60000)
    cluster.release.clear()
    sent = [producer.send("t", b"x" * 100, partition=p) for p in (0, 1) for _ in range(9)]
    wait_for(lambda: cluster.max_total_in_flight >= 2, what="a batch of each partition in flight")
    # The later full batches stay queued until their partition's batch is answered.
    assert producer.metrics()["batch-send-total"] == 2
    assert sorted(s.partition for s in cluster.produce_seen) == [0, 1]
    cluster.release.set()
    producer.flush(timeout=5)
    assert dict(cluster.max_in_flight) == {("t", 0): 1, ("t", 1): 1}
    for p in (0, 1):
        assert [f.result().offset for f in sent[9 * p:9 * p + 9]] == list(range(9))
        assert len(seen_for(cluster, ("t", p))) >= 3


def test_not_leader_refreshes_metadata_and_resends_the_same_bytes_to_the_new_leader(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer()
    assert producer.send("t", b"first", partition=0).result(timeout=5).offset == 0
    cluster.leader_hints = False  # only a metadata refresh can tell where the leader went
    metadata_before = cluster.metadata_requests
    cluster.move_leader(("t", 0), 3)
    assert producer.send("t", b"second", partition=0).result(timeout=5).offset == 1
    first_try, retry = seen_for(cluster, ("t", 0))[1:]
    assert (first_try.broker_id, retry.broker_id) == (1, 3)
    assert retry.records == first_try.records  # byte for byte: same producer id, epoch and sequence
    assert retry.header.base_sequence == 1
    assert cluster.metadata_requests > metadata_before
    assert producer.metrics()["record-retry-total"] == 1
    assert [r.value for r in cluster.log_records(("t", 0))] == [b"first", b"second"]


def test_not_leader_with_a_leader_hint_goes_straight_to_the_new_leader(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(retry_backoff_ms=0)
    producer.send("t", b"warm-up", partition=2).result(timeout=5)
    cluster.move_leader(("t", 2), 1)
    assert producer.send("t", b"moved", partition=2).result(timeout=5).offset == 1
    assert [s.broker_id for s in seen_for(cluster, ("t", 2))] == [3, 3, 1]


def test_a_retried_batch_the_leader_already_appended_is_deduplicated(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer()
    cluster.produce_script[("t", 1)].append(Scripted(Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, after_append=True))
    sent = [producer.send("t", f"r{i}".encode(), partition=1) for i in range(5)]
    producer.flush(timeout=5)
    assert [f.result().offset for f in sent] == list(range(5))
    first_try, retry = seen_for(cluster, ("t", 1))
    assert first_try.records == retry.records
    assert [r.value for r in cluster.log_records(("t", 1))] == [f"r{i}".encode() for i in range(5)]


@pytest.mark.parametrize("error", [Errors.CORRUPT_MESSAGE, Errors.MESSAGE_TOO_LARGE, Errors.INVALID_REQUIRED_ACKS])
def test_a_non_retriable_error_fails_the_batch_and_the_next_batch_reuses_its_sequence(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer], error: Errors
) -> None:
    producer = make_producer()
    cluster.produce_script[("t", 0)].append(Scripted(error))
    failed = [producer.send("t", b"doomed", partition=0) for _ in range(3)]
    producer.flush(timeout=5)
    for future in failed:
        exception = future.exception()
        assert isinstance(exception, KafkaError) and exception.error is error and not exception.retriable
    assert producer.send("t", b"next", partition=0).result(timeout=5).offset == 0
    assert [s.header.base_sequence for s in seen_for(cluster, ("t", 0))] == [0, 0]
    assert producer.metrics()["record-error-total"] == 3


def test_out_of_order_sequence_fails_the_batch_and_later_batches_take_a_new_producer_id(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer()
    producer.send("t", b"one", partition=0).result(timeout=5)
    cluster.produce_script[("t", 0)].append(Scripted(Errors.OUT_OF_ORDER_SEQUENCE_NUMBER))
    error = producer.send("t", b"two", partition=0).exception(timeout=5)
    assert isinstance(error, KafkaError) and error.error is Errors.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert producer.send("t", b"three", partition=0).result(timeout=5).offset == 1
    headers = [s.header for s in seen_for(cluster, ("t", 0))]
    assert [(h.producer_id, h.base_sequence) for h in headers] == [(1000, 0), (1000, 1), (1001, 0)]


def test_retriable_errors_give_up_when_retries_run_out(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(retries=2)
    cluster.fail_every_produce = Errors.NOT_ENOUGH_REPLICAS
    error = producer.send("t", b"v", partition=0).exception(timeout=5)
    assert isinstance(error, KafkaError) and error.error is Errors.NOT_ENOUGH_REPLICAS
    assert "retries exhausted after 3 attempts" in str(error)
    assert len(seen_for(cluster, ("t", 0))) == 3


def test_retriable_errors_give_up_at_the_delivery_timeout(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(delivery_timeout_ms=1000, request_timeout_ms=300, linger_ms=0, retry_backoff_ms=20)
    producer.partitions_for("t")  # metadata first: only the retries should use up the delivery timeout
    cluster.fail_every_produce = Errors.NOT_ENOUGH_REPLICAS
    started = time.monotonic()
    error = producer.send("t", b"v", partition=0).exception(timeout=10)
    assert isinstance(error, KafkaError) and error.error is Errors.NOT_ENOUGH_REPLICAS
    assert "delivery.timeout.ms" in str(error)
    # Retries would go on for ever (retries is unbounded): the delivery timeout stops them.
    assert time.monotonic() - started < 5


def test_a_leader_that_cannot_be_reached_is_retried_elsewhere_after_a_metadata_refresh(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer()
    producer.send("t", b"a", partition=1).result(timeout=5)
    cluster.stop_broker(2)
    cluster.move_leader(("t", 1), 3)
    assert producer.send("t", b"b", partition=1).result(timeout=5).offset == 1
    assert [s.broker_id for s in seen_for(cluster, ("t", 1))] == [2, 3]


def test_acks_0_completes_on_sending_without_offsets(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(acks=0)
    assert not producer.idempotent
    sent = [producer.send("t", b"v", partition=2) for _ in range(5)]
    producer.flush(timeout=5)
    assert [f.result().offset for f in sent] == [-1] * 5
    wait_for(lambda: cluster.produce_seen, what="the request")
    assert {(s.acks, s.header.producer_id) for s in cluster.produce_seen} == {(0, -1)}
    assert len(cluster.log_records(("t", 2))) == 5


def test_acks_1_is_not_idempotent_and_idempotence_demands_acks_all(cluster: FakeCluster) -> None:
    with pytest.raises(ValueError, match="acks=all"):
        KafkaProducer(cluster.bootstrap, acks=1, enable_idempotence=True)
    with pytest.raises(ValueError, match="acks"):
        KafkaProducer(cluster.bootstrap, acks="2")
    with KafkaProducer(cluster.bootstrap, acks="1", linger_ms=0) as producer:
        assert producer.send("t", b"v", partition=0).result(timeout=5).offset == 0
    assert cluster.produce_seen[0].acks == 1 and cluster.produce_seen[0].header.base_sequence == -1


def test_unknown_topic_fails_the_send_after_max_block_ms(make_producer: Callable[..., KafkaProducer]) -> None:
    producer = make_producer(max_block_ms=200)
    error = producer.send("nope", b"v").exception(timeout=5)
    assert isinstance(error, KafkaError) and error.error is Errors.UNKNOWN_TOPIC_OR_PARTITION
    assert "the cluster does not know it" in str(error)


def test_callbacks_flush_close_and_send_after_close(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer(linger_ms=60000)
    done: list[int] = []
    for i in range(3):
        producer.send("t", b"v", partition=0).add_done_callback(lambda f, i=i: done.append(i))
    assert done == []
    producer.close(timeout=5)
    assert sorted(done) == [0, 1, 2]
    with pytest.raises(RuntimeError):
        producer.send("t", b"late", partition=0)
    assert producer.metrics()["record-send-total"] == 3


def test_records_with_headers_and_null_values_arrive_as_sent(
    cluster: FakeCluster, make_producer: Callable[..., KafkaProducer]
) -> None:
    producer = make_producer()
    producer.send("t", None, key=b"k", partition=0, headers=[("h", b"1"), ("n", None)]).result(timeout=5)
    [record] = cluster.log_records(("t", 0))
    assert (record.key, record.value, record.headers) == (b"k", None, (("h", b"1"), ("n", None)))
    assert list(batches(cluster.partitions[("t", 0)].log[0]))
