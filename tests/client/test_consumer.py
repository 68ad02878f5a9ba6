"""The group-less consumer against the fake cluster."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest
from fake_cluster import FakeCluster, Scripted, wait_for

from client import consumer as consumer_module
from client.cluster import KafkaError
from client.consumer import ConsumerRecord, KafkaConsumer, _PartitionState, stall_warning
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors

T0, T1, T2 = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)




def poll_until(consumer: KafkaConsumer, count: int, timeout: float = 5.0) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    wait_for(lambda: got.extend(consumer.poll(50)) or len(got) >= count, timeout, f"{count} records")
    return got


def test_records_come_from_each_leader_in_one_fetch_per_leader(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    for tp in (T0, T1, T2):
        cluster.append(tp, [f"{tp.partition}-{i}".encode() for i in range(3)], keys=[b"k", None, b"k"])
    consumer = make_consumer(auto_offset_reset="earliest")
    consumer.assign([T0, T1, T2])
    records = poll_until(consumer, 9)
    assert sorted((r.partition, r.offset, r.value) for r in records) == [
        (p, i, f"{p}-{i}".encode()) for p in range(3) for i in range(3)
    ]
    assert [r.key for r in records if r.partition == 1] == [b"k", None, b"k"]
    first_to_each: dict[int, list[tuple[str, int]]] = {}
    for broker, request in cluster.fetch_seen:
        first_to_each.setdefault(broker, sorted((t.topic, p.partition) for t in request.topics for p in t.partitions))
    assert first_to_each == {1: [("t", 0), ("t", 2)], 2: [("t", 1)]}
    assert all(r.replica_id == -1 and r.max_wait_ms == 50 for _, r in cluster.fetch_seen)
    assert consumer.position(T0) == 3 and consumer.position(T1) == 3


def test_records_below_the_position_in_a_fetched_batch_are_skipped(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [f"v{i}".encode() for i in range(10)])  # one batch, offsets 0-9
    consumer = make_consumer()
    consumer.assign([T0])
    consumer.seek(T0, 6)
    records = poll_until(consumer, 4)
    assert [r.offset for r in records] == [6, 7, 8, 9]
    assert [r.value for r in records] == [b"v6", b"v7", b"v8", b"v9"]
    assert consumer.position(T0) == 10


def test_latest_starts_at_the_high_watermark_and_earliest_at_the_log_start(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [b"old"] * 4)
    cluster.partitions[T0].log_start = 2
    consumer = make_consumer()
    consumer.assign([T0])
    assert consumer.position(T0) == 4
    assert consumer.poll(0) == []
    cluster.append(T0, [b"new"])
    assert [(r.offset, r.value) for r in poll_until(consumer, 1)] == [(4, b"new")]
    consumer.seek_to_beginning()
    assert consumer.position(T0) == 2
    consumer.seek_to_end([T0])
    assert consumer.position(T0) == 5
    assert consumer.beginning_offsets([T0, T1]) == {T0: 2, T1: 0}
    assert consumer.end_offsets([T0, T1]) == {T0: 5, T1: 0}


def test_fetching_follows_the_leader_when_it_moves(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T1, [b"a", b"b"])
    consumer = make_consumer(auto_offset_reset="earliest")
    consumer.assign([T1])
    assert [r.value for r in poll_until(consumer, 2)] == [b"a", b"b"]
    cluster.move_leader(T1, 3)
    cluster.append(T1, [b"c"])
    assert [(r.offset, r.value) for r in poll_until(consumer, 1)] == [(2, b"c")]
    brokers = [broker for broker, _ in cluster.fetch_seen]
    assert brokers[0] == 2 and brokers[-1] == 3
    last = cluster.fetch_seen[-1][1].topics[0].partitions[0]
    assert (last.fetch_offset, last.current_leader_epoch) in {(2, 1), (3, 1)}


def test_fenced_leader_epoch_refreshes_the_metadata_and_fetches_with_the_new_epoch(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [b"a"])
    consumer = make_consumer(auto_offset_reset="earliest")
    consumer.assign([T0])
    assert [r.value for r in poll_until(consumer, 1)] == [b"a"]
    # A new epoch, same leader: the consumer's epoch 0 is fenced until it refreshes.
    cluster.move_leader(T0, 1)
    metadata_before = cluster.metadata_requests
    cluster.append(T0, [b"b"])
    assert [r.value for r in poll_until(consumer, 1)] == [b"b"]
    epochs = [r.topics[0].partitions[0].current_leader_epoch for _, r in cluster.fetch_seen]
    assert epochs[0] == 0 and epochs[-1] == 1
    assert cluster.metadata_requests > metadata_before


@pytest.mark.parametrize("error", [Errors.NOT_LEADER_OR_FOLLOWER, Errors.UNKNOWN_LEADER_EPOCH,
                                   Errors.LEADER_NOT_AVAILABLE, Errors.FENCED_LEADER_EPOCH])
def test_leader_errors_are_retried_after_a_metadata_refresh(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer], error: Errors
) -> None:
    cluster.append(T2, [b"x"])
    cluster.fetch_script[T2].extend([Scripted(error), Scripted(error)])
    consumer = make_consumer(auto_offset_reset="earliest")
    consumer.assign([T2])
    assert [r.value for r in poll_until(consumer, 1)] == [b"x"]
    assert len(cluster.fetch_seen) >= 3


def test_a_broker_that_cannot_be_reached_is_retried_after_the_leader_moves(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T1, [b"a"])
    consumer = make_consumer(auto_offset_reset="earliest")
    consumer.assign([T1])
    poll_until(consumer, 1)
    cluster.stop_broker(2)
    cluster.move_leader(T1, 3)
    cluster.append(T1, [b"b"])
    assert [r.value for r in poll_until(consumer, 1)] == [b"b"]


def test_offset_out_of_range_resets_by_auto_offset_reset(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [b"a", b"b", b"c"])
    earliest = make_consumer(auto_offset_reset="earliest")
    earliest.assign([T0])
    earliest.seek(T0, 100)
    assert [r.offset for r in poll_until(earliest, 3)] == [0, 1, 2]

    latest = make_consumer(auto_offset_reset="latest")
    latest.assign([T0])
    latest.seek(T0, 100)
    wait_for(lambda: latest.poll(20) == [] and latest.position(T0) == 3, what="the reset to the end")

    none = make_consumer(auto_offset_reset="none")
    none.assign([T0])
    none.seek(T0, 100)
    with pytest.raises(KafkaError) as raised:
        wait_for(lambda: none.poll(20), what="OFFSET_OUT_OF_RANGE")
    assert raised.value.error is Errors.OFFSET_OUT_OF_RANGE
    fresh = make_consumer(auto_offset_reset="none")
    fresh.assign([T0])
    with pytest.raises(KafkaError, match=r"auto\.offset\.reset is none"):
        fresh.poll(0)


def test_max_poll_records_splits_what_one_fetch_brought(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [str(i).encode() for i in range(7)])
    consumer = make_consumer(auto_offset_reset="earliest", max_poll_records=3)
    consumer.assign([T0])
    first = poll_until(consumer, 1)
    assert [r.offset for r in first] == [0, 1, 2]
    assert consumer.position(T0) == 3
    assert [r.offset for r in consumer.poll(0)] == [3, 4, 5]
    assert [r.offset for r in consumer.poll(0)] == [6]


def test_seek_discards_what_was_fetched_for_the_old_position(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer]
) -> None:
    cluster.append(T0, [str(i).encode() for i in range(6)])
    consumer = make_consumer(auto_offset_reset="earliest", max_poll_records=2)
    consumer.assign([T0])
    assert [r.offset for r in poll_until(consumer, 1)] == [0, 1]
    consumer.seek(T0, 1)
    assert [r.offset for r in poll_until(consumer, 2)] == [1, 2]


def test_partitions_for_and_unknown_topics(make_consumer: Callable[..., KafkaConsumer]) -> None:
    consumer = make_consumer()
    assert consumer.partitions_for("t") == {0, 1, 2}
    assert consumer.partitions_for("missing") is None
    with pytest.raises(KafkaError) as raised:
        consumer.end_offsets([("missing", 0)])
    assert raised.value.error is Errors.UNKNOWN_TOPIC_OR_PARTITION
    consumer.assign([T0, ("t", 1)])
    assert consumer.assignment() == {T0, T1}
    with pytest.raises(ValueError, match="not assigned"):
        consumer.seek(T2, 0)
    with pytest.raises(ValueError):
        KafkaConsumer("127.0.0.1:1", auto_offset_reset="middle")


# -- a partition never stalls silently -------------------------------------------------------------


def test_stall_warning_names_the_partition_its_position_and_why_once_per_episode() -> None:
    state = _PartitionState(position=40, high_watermark=90, progress_at=100.0)
    assert stall_warning(T0, state, 129.0, 30.0) is None
    state.problem = "fetch to broker 2 failing: BROKER_NOT_AVAILABLE: broker 2: unavailable"
    assert stall_warning(T0, state, 131.0, 30.0) == (
        "Partition t-0 has made no progress for 31 s at position 40 (the leader's high watermark is 90): "
        "fetch to broker 2 failing: BROKER_NOT_AVAILABLE: broker 2: unavailable"
    )
    state.stall_warned = True
    assert stall_warning(T0, state, 200.0, 30.0) is None


@pytest.mark.parametrize(("state", "why"), [
    (_PartitionState(position=5, high_watermark=9), "fetches bring no records below the high watermark"),
    (_PartitionState(position=5, fetching=True, fetch_broker=3), "no answer from broker 3 to its fetch"),
    (_PartitionState(reset="earliest"), "its offset not found yet"),
    (_PartitionState(awaiting_committed=True), "waiting for the group's committed offset"),
    (_PartitionState(position=5, problem="no leader known"), "no leader known"),
])
def test_stall_warning_without_a_failure_says_what_the_partition_waits_for(state: _PartitionState,
                                                                           why: str) -> None:
    state.progress_at = 0.0
    warning = stall_warning(T1, state, 60.0, 30.0)
    assert warning is not None and warning.startswith("Partition t-1 has made no progress for 60 s")
    assert warning.endswith(": " + why)


@pytest.fixture
def quick_stall_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "STALL_CHECK_INTERVAL_S", 0.02)


def stall_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "client.consumer" and r.levelno == logging.WARNING and "no progress" in r.getMessage()]


def poll_for(consumer: KafkaConsumer, seconds: float) -> list[ConsumerRecord]:
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got.extend(consumer.poll(20))
    return got


def test_a_leader_whose_high_watermark_stays_above_the_position_without_records_is_warned_of(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer], quick_stall_checks: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="client.consumer")
    cluster.append(T0, [b"a", b"b"])
    consumer = make_consumer(auto_offset_reset="earliest", stall_warning_ms=200)
    consumer.assign([T0, T2])
    assert [r.value for r in poll_until(consumer, 2)] == [b"a", b"b"]
    with cluster.lock:
        cluster.partitions[T0].end = 5  # a leader that says records 2-4 are there and never sends them
    wait_for(lambda: consumer.poll(20) or stall_warnings(caplog), 5, "the stall warning")
    poll_for(consumer, 0.5)  # once per episode, and not for the idle partition caught up with its leader
    assert stall_warnings(caplog) == [
        "Partition t-0 has made no progress for 0 s at position 2 (the leader's high watermark is 5): "
        "broker 1 answers with no records below its high watermark"
    ]
    with cluster.lock:
        cluster.partitions[T0].end = 2
    cluster.append(T0, [b"c"])
    assert [r.value for r in poll_until(consumer, 1)] == [b"c"]
    assert "Partition t-0 makes progress again at position 2" in caplog.messages


def test_a_partition_whose_leader_cannot_be_reached_is_warned_of_with_the_failure(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer], quick_stall_checks: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster.append(T1, [b"a"])
    consumer = make_consumer(auto_offset_reset="earliest", stall_warning_ms=200)
    consumer.assign([T1])
    poll_until(consumer, 1)
    cluster.stop_broker(2)
    cluster.append(T1, [b"b"])
    wait_for(lambda: consumer.poll(20) or stall_warnings(caplog), 5, "the stall warning")
    [warning] = stall_warnings(caplog)
    assert warning.startswith("Partition t-1 has made no progress for 0 s at position 1")
    assert ": fetch to broker 2 failing: BROKER_NOT_AVAILABLE: broker 2: unavailable" in warning


def test_a_partition_without_a_leader_is_warned_of(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer], quick_stall_checks: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with cluster.lock:
        cluster.partitions[T2].leader = -1
    consumer = make_consumer(auto_offset_reset="earliest", stall_warning_ms=200)
    consumer.assign([T2])
    wait_for(lambda: consumer.poll(20) or stall_warnings(caplog), 5, "the stall warning")
    assert stall_warnings(caplog) == ["Partition t-2 has made no progress for 0 s without a position: no leader known"]


def test_time_outside_poll_does_not_count_towards_a_stall(
    cluster: FakeCluster, make_consumer: Callable[..., KafkaConsumer], quick_stall_checks: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster.append(T0, [b"a"])
    consumer = make_consumer(auto_offset_reset="earliest", stall_warning_ms=300)
    consumer.assign([T0])
    poll_until(consumer, 1)
    time.sleep(0.5)  # the application busy elsewhere: nothing is fetched meanwhile
    cluster.append(T0, [b"b"])
    assert [r.value for r in poll_until(consumer, 1)] == [b"b"]
    poll_for(consumer, 0.4)
    assert stall_warnings(caplog) == []
