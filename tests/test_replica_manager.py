"""The broker's checks on the controller's requests (no server: the class and its logs alone)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from broker import data_changes
from broker.clock import now_ms
from broker.fetch_session import FetchKind, PartitionData
from broker.log import record_batch as rb
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.metadata_cache import PartitionInfo
from broker.partition import caught_up_ms
from broker.replica_manager import ReplicaManager
from broker.replica_results import FetchRequestPartition, FetchResult, ProduceResult
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors


@pytest.fixture
def manager(tmp_path: Path) -> ReplicaManager:
    return ReplicaManager(1, lambda: 100, LogManager([str(tmp_path)], LogConfig()))


def state(leader_epoch: int, leader: int = 1, controller_epoch: int = 2) -> PartitionInfo:
    return PartitionInfo("t", 0, leader, leader_epoch, isr=(1, 2), replicas=(1, 2), zk_version=0,
                         controller_epoch=controller_epoch)


def test_leader_and_isr_from_an_older_controller_is_refused(manager: ReplicaManager) -> None:
    assert manager.become_leader_or_follower(9, 3, -1, [state(0)])[0] is Errors.NONE
    error, results = manager.become_leader_or_follower(9, 2, -1, [state(5)])
    assert error is Errors.STALE_CONTROLLER_EPOCH and results == {}
    assert manager.partitions()[("t", 0)].leader_epoch == 0


def test_partition_state_with_a_leader_epoch_that_is_not_newer_is_ignored(manager: ReplicaManager) -> None:
    manager.become_leader_or_follower(9, 1, -1, [state(4)])
    assert manager.become_leader_or_follower(9, 1, -1, [state(4, leader=2)])[1] == {
        ("t", 0): Errors.STALE_CONTROLLER_EPOCH
    }
    assert manager.partitions()[("t", 0)].leader == 1
    assert manager.become_leader_or_follower(9, 1, -1, [state(5, leader=2)])[1] == {("t", 0): Errors.NONE}
    assert manager.leader_partitions() == []


def test_request_for_an_earlier_incarnation_of_the_broker_is_refused(manager: ReplicaManager) -> None:
    assert manager.become_leader_or_follower(9, 1, 99, [state(0)])[0] is Errors.STALE_BROKER_EPOCH
    assert manager.become_leader_or_follower(9, 1, 100, [state(0)])[0] is Errors.NONE


def test_stop_replica_with_delete_forgets_the_partition(manager: ReplicaManager) -> None:
    manager.become_leader_or_follower(9, 1, -1, [state(3)])
    assert manager.stop_replicas(9, 1, -1, [("t", 0, 2, False)])[1] == {("t", 0): Errors.FENCED_LEADER_EPOCH}
    assert manager.stop_replicas(9, 1, -1, [("t", 0, -2, True)])[1] == {("t", 0): Errors.NONE}
    assert manager.partitions() == {}


def test_a_new_topic_s_config_is_read_once_per_leader_and_isr(tmp_path: Path) -> None:
    reads: list[str] = []
    manager = ReplicaManager(
        1, lambda: 100, LogManager([str(tmp_path)], LogConfig()),
        topic_config=lambda topic: reads.append(topic) or {"segment.bytes": "4096"},
    )
    states = [state(0)._replace(topic=topic, partition=p) for topic in ("a", "b") for p in range(3)]
    assert set(manager.become_leader_or_follower(9, 1, -1, states)[1].values()) == {Errors.NONE}
    assert reads == ["a", "b"]
    assert {manager.partition(tp).log.config.segment_bytes for tp in manager.partitions()} == {4096}



def test_a_topic_config_with_a_bad_stored_value_keeps_its_other_settings(tmp_path: Path) -> None:
    manager = ReplicaManager(
        1, lambda: 100, LogManager([str(tmp_path)], LogConfig()),
        topic_config=lambda _topic: {"segment.bytes": "20", "retention.ms": "1234", "min.insync.replicas": "2"},
    )
    assert manager.become_leader_or_follower(9, 1, -1, [state(0)])[1] == {("t", 0): Errors.NONE}
    config = manager.partition(("t", 0)).log.config
    assert (config.segment_bytes, config.retention_ms, config.min_insync_replicas) == (1073741824, 1234, 2)

# -- the data path, leader and follower in one process -------------------------------------------

T0 = ("t", 0)


def leader_manager(tmp_path: Path, isr: tuple[int, ...] = (1, 2), **topic_config: str) -> ReplicaManager:
    written: list[tuple[int, ...]] = []
    manager = ReplicaManager(
        1, lambda: 100, LogManager([str(tmp_path)], LogConfig()),
        write_isr=lambda changes: [written.append(new_isr) or state.zk_version + 1 for state, new_isr in changes],
        topic_config=lambda _topic: dict(topic_config), replica_lag_time_max_ms=1000,
    )
    manager.isr_writes = written  # type: ignore[attr-defined]
    state = PartitionInfo("t", 0, 1, 0, isr=isr, replicas=(1, 2), zk_version=0, controller_epoch=1)
    assert manager.become_leader_or_follower(9, 1, -1, [state])[1] == {T0: Errors.NONE}
    return manager


def batch(*values: bytes, **producer: int) -> bytes:
    return rb.build_batch([(None, v) for v in values], **producer)


def produce(manager: ReplicaManager, records: bytes, acks: int = 1, timeout_ms: int = 1000) -> ProduceResult:
    return manager.append_records(acks, timeout_ms, {T0: records}).result()[T0]


def fetch(manager: ReplicaManager, offset: int, replica_id: int = -1, epoch: int = -1, wait_ms: int = 0) -> FetchResult:
    wanted = [FetchRequestPartition(T0, offset, epoch)]
    return manager.fetch_path.fetch_messages(replica_id, wait_ms, 1, 1 << 20, wanted).result()[T0]


def test_consumers_see_only_what_every_isr_member_has(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path)
    assert produce(manager, batch(b"a", b"b")).base_offset == 0
    assert fetch(manager, 0).records == b""  # the follower has nothing yet: high watermark 0
    copied = fetch(manager, 0, replica_id=2)
    assert [r.value for r in rb.read_records(copied.records)] == [b"a", b"b"]
    fetch(manager, 2, replica_id=2)  # the follower now has both
    answer = fetch(manager, 0)
    assert answer.high_watermark == 2 and [r.offset for r in rb.read_records(answer.records)] == [0, 1]


def test_acks_all_waits_for_the_follower_and_times_out_without_it(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path)
    assert produce(manager, batch(b"x"), acks=-1, timeout_ms=200).error is Errors.REQUEST_TIMED_OUT
    result: list[ProduceResult] = []
    writer = threading.Thread(target=lambda: result.append(produce(manager, batch(b"y"), acks=-1, timeout_ms=10000)))
    writer.start()
    wait_until(lambda: manager.partition(T0).log.log_end_offset == 2, 5, "the second write in the log")
    fetch(manager, 2, replica_id=2)
    writer.join(5)
    assert result and result[0].error is Errors.NONE and result[0].base_offset == 1


def test_an_acks_all_write_is_a_future_completed_by_the_follower_fetch_that_replicates_it(tmp_path: Path) -> None:
    # One delayed-produce path for every caller: nobody holds a thread while the ISR catches up.
    manager = leader_manager(tmp_path)
    written = manager.append_records(-1, 10000, {T0: batch(b"x")})
    assert manager.partition(T0).log.log_end_offset == 1 and not written.done()
    fetch(manager, 1, replica_id=2)
    assert written.result(timeout=5)[T0].error is Errors.NONE
    manager.stop()
    late = manager.append_records(-1, 10000, {T0: batch(b"y")})
    assert late.result(timeout=5)[T0].error is Errors.REQUEST_TIMED_OUT  # a stopped broker answers at once


def test_acks_all_is_refused_when_the_isr_is_below_min_insync_replicas(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path, isr=(1,), **{"min.insync.replicas": "2"})
    assert produce(manager, batch(b"x"), acks=-1).error is Errors.NOT_ENOUGH_REPLICAS
    assert produce(manager, batch(b"x"), acks=1).error is Errors.NONE


def test_a_retried_idempotent_batch_gets_its_first_offset_back(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path, isr=(1,))
    records = batch(b"a", b"b", producer_id=5, producer_epoch=0, base_sequence=0)
    assert produce(manager, records).base_offset == 0
    assert produce(manager, batch(b"c", producer_id=5, producer_epoch=0, base_sequence=2)).base_offset == 2
    assert produce(manager, records).base_offset == 0  # the retry of the first batch
    assert manager.partition(T0).log.log_end_offset == 3
    gap = batch(b"d", producer_id=5, producer_epoch=0, base_sequence=9)
    assert produce(manager, gap).error is Errors.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_bad_batches_are_refused_with_kafkas_codes(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path, isr=(1,), **{"max.message.bytes": "200"})
    corrupt = bytearray(batch(b"hello"))
    corrupt[-1] ^= 0xFF
    assert produce(manager, bytes(corrupt)).error is Errors.CORRUPT_MESSAGE
    assert produce(manager, b"not a batch at all, just bytes that go on for more than sixty-one").error \
        is Errors.CORRUPT_MESSAGE
    assert produce(manager, batch(b"x" * 500)).error is Errors.MESSAGE_TOO_LARGE
    assert manager.partition(T0).log.log_end_offset == 0


def test_fetch_errors_name_the_epoch_and_the_range(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path, isr=(1,))
    produce(manager, batch(b"a"))
    assert fetch(manager, 0, epoch=0).error is Errors.NONE
    assert fetch(manager, 5).error is Errors.OFFSET_OUT_OF_RANGE
    manager.become_leader_or_follower(9, 1, -1, [
        PartitionInfo("t", 0, 1, 3, isr=(1,), replicas=(1, 2), zk_version=1, controller_epoch=1)
    ])
    assert fetch(manager, 0, epoch=2).error is Errors.FENCED_LEADER_EPOCH
    assert fetch(manager, 0, epoch=4).error is Errors.UNKNOWN_LEADER_EPOCH
    manager.become_leader_or_follower(9, 1, -1, [
        PartitionInfo("t", 0, 2, 4, isr=(1, 2), replicas=(1, 2), zk_version=2, controller_epoch=1)
    ])
    assert fetch(manager, 0).error is Errors.NOT_LEADER_OR_FOLLOWER
    assert produce(manager, batch(b"b")).error is Errors.NOT_LEADER_OR_FOLLOWER
    manager.stop()


def test_a_lagging_follower_leaves_the_isr_and_returns_once_caught_up(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path)
    produce(manager, batch(b"a"))
    manager.isr.change_isrs([manager.partition(T0)], now_ms() + 5000)
    assert manager.partition(T0).isr == (1,) and manager.counters.isr_shrinks == 1
    assert manager.partition(T0).high_watermark == 1  # the follower no longer holds it back
    fetch(manager, 1, replica_id=2)
    manager.isr.change_isrs([manager.partition(T0)], now_ms())
    assert manager.partition(T0).isr == (1, 2) and manager.counters.isr_expands == 1
    assert manager.isr_writes == [(1,), (1, 2)]  # type: ignore[attr-defined]


def test_isr_changes_of_many_partitions_are_written_in_one_go(tmp_path: Path) -> None:
    calls: list[int] = []
    manager = ReplicaManager(
        1, lambda: 100, LogManager([str(tmp_path)], LogConfig()),
        write_isr=lambda changes: calls.append(len(changes)) or [s.zk_version + 1 for s, _ in changes],
        replica_lag_time_max_ms=1000,
    )
    states = [PartitionInfo("t", p, 1, 0, isr=(1, 2), replicas=(1, 2), zk_version=0, controller_epoch=1)
              for p in range(50)]
    manager.become_leader_or_follower(9, 1, -1, states)
    leaders = [manager.partition(("t", p)) for p in range(50)]
    manager.isr.change_isrs(leaders, now_ms() + 5000)
    assert calls == [50] and manager.counters.isr_shrinks == 50
    assert {p.isr for p in leaders} == {(1,)} and {p.state.zk_version for p in leaders} == {1}


def test_an_isr_written_while_the_controller_sent_a_newer_state_is_not_kept(tmp_path: Path) -> None:
    """The controller's LeaderAndIsr wins over the leader's own ISR write that raced it."""
    manager: ReplicaManager

    def write_isr(changes: list[tuple[PartitionInfo, tuple[int, ...]]]) -> list[int | None]:
        newer = PartitionInfo("t", 0, 1, 1, isr=(1, 2), replicas=(1, 2), zk_version=5, controller_epoch=1)
        manager.become_leader_or_follower(9, 1, -1, [newer])
        return [1 for _ in changes]

    manager = ReplicaManager(1, lambda: 100, LogManager([str(tmp_path)], LogConfig()), write_isr=write_isr,
                             replica_lag_time_max_ms=1000)
    manager.become_leader_or_follower(9, 1, -1, [state(0)._replace(isr=(1, 2))])
    manager.isr.change_isrs([manager.partition(T0)], now_ms() + 5000)
    assert manager.partition(T0).state.isr == (1, 2) and manager.partition(T0).state.zk_version == 5
    assert manager.counters.failed_isr_updates == 1 and manager.counters.isr_shrinks == 0


# -- fetch sessions (KIP-227) --------------------------------------------------------------------

T1 = ("t", 1)


def two_partition_leader(tmp_path: Path) -> ReplicaManager:
    manager = leader_manager(tmp_path)
    other = PartitionInfo("t", 1, 1, 0, isr=(1, 2), replicas=(1, 2), zk_version=0, controller_epoch=1)
    assert manager.become_leader_or_follower(9, 1, -1, [other])[1] == {T1: Errors.NONE}
    return manager


def session_fetch(
    manager: ReplicaManager, session_id: int, epoch: int, named: dict[tuple[str, int], PartitionData],
    forgotten: tuple[tuple[str, int], ...] = (), wait_ms: int = 0,
) -> tuple[int, dict[tuple[str, int], FetchResult]]:
    context = manager.fetch_path.new_fetch_context(2, session_id, epoch, named, list(forgotten))
    assert context.kind in (FetchKind.FULL, FetchKind.INCREMENTAL), context.error
    return manager.fetch_path.fetch_session_messages(context, wait_ms, 1, 1 << 20).result()


def open_follower_session(manager: ReplicaManager) -> int:
    session_id, answers = session_fetch(manager, 0, 0, {T0: PartitionData(0, 0), T1: PartitionData(0, 0)})
    assert session_id != 0 and set(answers) == {T0, T1}  # a full fetch answers every partition
    return session_id


def test_an_incremental_fetch_answers_only_new_records_and_high_watermarks(tmp_path: Path) -> None:
    manager = two_partition_leader(tmp_path)
    session_id = open_follower_session(manager)
    assert session_fetch(manager, session_id, 1, {}, wait_ms=20) == (session_id, {})  # idle: nothing to say
    produce(manager, batch(b"a"))
    _, answers = session_fetch(manager, session_id, 2, {})
    assert list(answers) == [T0] and [r.value for r in rb.read_records(answers[T0].records)] == [b"a"]
    # The follower has it: its new fetch offset moves the high watermark, which is answered once.
    _, answers = session_fetch(manager, session_id, 3, {T0: PartitionData(1, 0)})
    assert list(answers) == [T0] and answers[T0].high_watermark == 1 and answers[T0].records == b""
    assert session_fetch(manager, session_id, 4, {}, wait_ms=20)[1] == {}
    assert manager.fetch_path.fetch_session_metrics() == (1, 2, 0, 4)
    manager.stop()


def test_an_incremental_fetch_waits_for_new_records_in_any_of_its_partitions(tmp_path: Path) -> None:
    manager = two_partition_leader(tmp_path)
    session_id = open_follower_session(manager)
    context = manager.fetch_path.new_fetch_context(2, session_id, 1, {}, [])
    assert context.session is not None
    clock = context.session.clock
    clock.last_fetch_ms = 0
    # The fetch parks in the fetch purgatory: no thread of the caller's waits for it.
    started = time.monotonic()
    parked = manager.fetch_path.fetch_session_messages(context, 10000, 1, 1 << 20)
    wait_until(lambda: clock.last_fetch_ms > 0, 5, "the fetch to find nothing new and wait")
    assert not parked.done()
    manager.append_records(1, 1000, {T1: batch(b"b")})
    assert list(parked.result(10)[1]) == [T1] and time.monotonic() - started < 5
    manager.stop()


def test_idle_session_partitions_keep_a_caught_up_follower_in_the_isr_while_it_fetches(tmp_path: Path) -> None:
    manager = two_partition_leader(tmp_path)  # replica.lag.time.max.ms 1000
    session_id = open_follower_session(manager)
    partition = manager.partition(T1)
    # As if the follower's last full read was long ago: only the idle fetch below says it is caught up.
    partition.followers[2] = replace(partition.followers[2], last_caught_up_time_ms=0, last_fetch_time_ms=0)
    clock = partition.followers[2].session_clock
    assert clock is not None
    clock.last_fetch_ms = 0
    before = now_ms()
    assert session_fetch(manager, session_id, 1, {})[1] == {}
    assert caught_up_ms(partition.followers[2]) >= before and partition.followers[2].last_caught_up_time_ms == 0
    manager.isr.change_isrs([partition], now_ms())
    assert partition.isr == (1, 2) and manager.counters.isr_shrinks == 0
    # The follower stops fetching: its session's clock stops, and it falls out of the ISR in time.
    manager.isr.change_isrs([partition], now_ms() + 2000)
    assert partition.isr == (1,) and manager.counters.isr_shrinks == 1
    manager.stop()


def test_a_forgotten_partition_no_longer_counts_its_follower_as_caught_up(tmp_path: Path) -> None:
    manager = two_partition_leader(tmp_path)
    session_id = open_follower_session(manager)
    session_fetch(manager, session_id, 1, {}, forgotten=(T1,))
    follower = manager.partition(T1).followers[2]
    assert follower.session_clock is None
    left_at = caught_up_ms(follower)
    wait_until(lambda: now_ms() > left_at, 5, "the clock to move")
    session_fetch(manager, session_id, 2, {})
    clock = manager.partition(T0).followers[2].session_clock
    assert clock is not None and clock.last_fetch_ms > left_at
    assert caught_up_ms(manager.partition(T1).followers[2]) == left_at
    manager.stop()


def test_a_partition_the_leader_no_longer_leads_comes_back_with_its_error(tmp_path: Path) -> None:
    manager = two_partition_leader(tmp_path)
    session_id = open_follower_session(manager)
    manager.become_leader_or_follower(9, 1, -1, [
        PartitionInfo("t", 0, 1, 1, isr=(1,), replicas=(1, 2), zk_version=1, controller_epoch=1)
    ])
    _, answers = session_fetch(manager, session_id, 1, {})
    assert {tp: a.error for tp, a in answers.items()} == {T0: Errors.FENCED_LEADER_EPOCH}
    assert session_fetch(manager, session_id, 2, {})[1][T0].error is Errors.FENCED_LEADER_EPOCH  # every time
    assert session_fetch(manager, session_id, 3, {}, forgotten=(T0,), wait_ms=20)[1] == {}
    manager.stop_replicas(9, 1, -1, [("t", 1, -2, True)])
    _, answers = session_fetch(manager, session_id, 4, {})
    assert {tp: a.error for tp, a in answers.items()} == {T1: Errors.UNKNOWN_TOPIC_OR_PARTITION}
    manager.stop()


def test_consumers_fetch_without_a_session(tmp_path: Path) -> None:
    manager = leader_manager(tmp_path)
    assert manager.fetch_path.new_fetch_context(-1, 0, 0, {T0: PartitionData(0)}, []).kind is FetchKind.SESSIONLESS
    assert manager.fetch_path.fetch_session_metrics()[0] == 0


def test_a_session_that_fell_behind_the_change_log_reads_every_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_changes, "CHANGE_LOG_SIZE", 4)
    manager = two_partition_leader(tmp_path)
    session_id = open_follower_session(manager)
    produce(manager, batch(b"a"))
    for i in range(10):  # changes elsewhere push the append out of the log
        manager.notify_data_changed([("elsewhere", i)])
    _, answers = session_fetch(manager, session_id, 1, {})
    assert list(answers) == [T0] and answers[T0].records
    manager.stop()
