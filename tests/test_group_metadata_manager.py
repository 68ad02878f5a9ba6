"""The loading and storing of __consumer_offsets (Kafka's GroupMetadataManagerTest, in spirit) over a
real replica manager and logs on disk: the records each store writes, the refusal of oversized
metadata, the replay of a partition into groups and offsets, and the owned and loading partitions.
The coordinator's thread is played by the test, which runs what the manager schedules."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker.group.group_coordinator_rules import StoreGroup, StoreKind, StoreOffsets
from broker.group.group_metadata import GroupMetadata, GroupState, OffsetAndMetadata
from broker.group.group_metadata_manager import GroupMetadataManager
from broker.group.member_metadata import MemberMetadata
from broker.group.offsets_log import group_metadata_record, offset_commit_records
from broker.log import record_batch as rb
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.metadata_cache import PartitionInfo
from broker.replica_manager import ReplicaManager
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC, partition_for

PARTITIONS = 2
# Groups of each offsets partition, so that a test knows where a group's records go.
GROUP_0 = next(g for g in (f"g{i}" for i in range(100)) if partition_for(g, PARTITIONS) == 0)
GROUP_1 = next(g for g in (f"g{i}" for i in range(100)) if partition_for(g, PARTITIONS) == 1)
TP0 = (OFFSETS_TOPIC, 0)
T = 10  # seconds for anything the manager schedules


class CoordinatorThread:
    """What the manager schedules on the coordinator's thread, run when the test says."""

    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def run_next(self) -> None:
        self.tasks.get(timeout=T)()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[ReplicaManager]:
    manager = ReplicaManager(1, lambda: 100, LogManager([str(tmp_path)], LogConfig()))
    manager.start()
    # Broker 1 leads offsets partition 0 alone, so an acks=all append is replicated at once.
    state = PartitionInfo(OFFSETS_TOPIC, 0, 1, 0, isr=(1,), replicas=(1,), zk_version=0)
    assert manager.become_leader_or_follower(9, 1, -1, [state])[1] == {TP0: Errors.NONE}
    yield manager
    manager.stop()


@pytest.fixture
def thread() -> CoordinatorThread:
    return CoordinatorThread()


@pytest.fixture
def metadata_manager(replicas: ReplicaManager, thread: CoordinatorThread) -> Iterator[GroupMetadataManager]:
    manager = GroupMetadataManager(1, replicas, lambda: PARTITIONS, thread.tasks.put, lambda: 1000,
                                   max_metadata_bytes=8, log_prefix="[GroupCoordinator 1]:")
    yield manager
    manager.shutdown()


def written(replicas: ReplicaManager) -> list[tuple[bytes | None, bytes | None]]:
    partition = replicas.partition(TP0)
    assert partition is not None
    return [(r.key, r.value) for r in rb.read_records(partition.log.read(0, 1 << 20))]


def stable_group(group_id: str) -> GroupMetadata:
    group = GroupMetadata(group_id)
    group.add_member(MemberMetadata("m1", None, "client", "host", 30000, 10000, "consumer", [("range", b"sub")]))
    group.transition_to(GroupState.PREPARING_REBALANCE, 1)
    group.init_next_generation(2)
    return group


def test_partition_for_and_its_name(metadata_manager: GroupMetadataManager) -> None:
    assert (metadata_manager.partition_for(GROUP_0), metadata_manager.partition_for(GROUP_1)) == (0, 1)
    assert metadata_manager.partition_name(GROUP_1) == f"{OFFSETS_TOPIC}-1"


def test_the_offsets_topic_unknown_has_no_partition_name(replicas: ReplicaManager) -> None:
    manager = GroupMetadataManager(1, replicas, lambda: None, lambda _task: None, lambda: 0)
    assert manager.partition_count() is None and manager.partition_name(GROUP_0) is None
    manager.shutdown()


def test_store_group_appends_the_group_record_and_calls_back_on_the_coordinators_thread(
    replicas: ReplicaManager, thread: CoordinatorThread, metadata_manager: GroupMetadataManager
) -> None:
    snapshot = stable_group(GROUP_0).snapshot({"m1": b"assigned"})
    errors: list[Errors] = []
    metadata_manager.store_group(StoreGroup(StoreKind.SYNC_ASSIGNMENT, snapshot), errors.append)
    assert errors == []  # only on the coordinator's thread
    thread.run_next()
    assert errors == [Errors.NONE]
    assert written(replicas) == [group_metadata_record(snapshot)]


def test_store_offsets_refuses_oversized_metadata_and_writes_the_rest(
    replicas: ReplicaManager, thread: CoordinatorThread, metadata_manager: GroupMetadataManager
) -> None:
    ok, big = OffsetAndMetadata(1, "12345678", 5), OffsetAndMetadata(2, "123456789", 5)
    done: list[tuple[StoreOffsets, Errors]] = []
    metadata_manager.store_offsets(StoreOffsets(GROUP_0, {("t", 0): ok, ("t", 1): big}),
                                   lambda stored, error: done.append((stored, error)))
    thread.run_next()
    assert done == [(StoreOffsets(GROUP_0, {("t", 0): ok}), Errors.NONE)]
    assert written(replicas) == offset_commit_records(GROUP_0, {("t", 0): ok})


def test_store_offsets_with_nothing_to_write_calls_back_at_once(metadata_manager: GroupMetadataManager) -> None:
    done: list[tuple[StoreOffsets, Errors]] = []
    metadata_manager.store_offsets(StoreOffsets(GROUP_0, {("t", 0): OffsetAndMetadata(1, "x" * 9)}),
                                   lambda stored, error: done.append((stored, error)))
    assert done == [(StoreOffsets(GROUP_0, {}), Errors.NONE)]


def test_a_failed_append_is_called_back_with_its_error(
    thread: CoordinatorThread, metadata_manager: GroupMetadataManager
) -> None:
    errors: list[Errors] = []
    # GROUP_1's partition is not hosted on this broker.
    metadata_manager.store_group(StoreGroup(StoreKind.EMPTY_GROUP, GroupMetadata(GROUP_1).snapshot({})),
                                 errors.append)
    thread.run_next()
    assert errors == [Errors.UNKNOWN_TOPIC_OR_PARTITION]


def test_loading_replays_the_partition_skips_malformed_records_and_foreign_groups_then_owns_it(
    replicas: ReplicaManager, thread: CoordinatorThread, metadata_manager: GroupMetadataManager
) -> None:
    group = stable_group(GROUP_0)
    records = [
        group_metadata_record(group.snapshot({"m1": b"assigned"})),
        *offset_commit_records(GROUP_0, {("t", 0): OffsetAndMetadata(7, "", 1)}),
        # A key that says "offset commit" but a value that is garbage.
        (b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x00", b"junk"),
        # A group that belongs to partition 1.
        *offset_commit_records(GROUP_1, {("t", 0): OffsetAndMetadata(3, "", 1)}),
    ]
    replicas.append_records(1, 1000, {TP0: rb.build_batch(records)}).result()

    loaded: list[tuple[GroupMetadata, int]] = []
    metadata_manager.schedule_load_group_and_offsets(0, 0, lambda g, now: loaded.append((g, now)))
    assert metadata_manager.is_partition_loading(0) and metadata_manager.is_loading()
    thread.run_next()
    assert metadata_manager.owned_partitions() == [0] and metadata_manager.loading_partitions() == []
    [(group_loaded, now)] = loaded
    assert now == 1000
    assert (group_loaded.group_id, group_loaded.state, group_loaded.generation_id) == (GROUP_0, GroupState.STABLE, 1)
    assert group_loaded.offsets == {("t", 0): OffsetAndMetadata(7, "", 1)}
    assert group_loaded.get("m1").assignment == b"assigned"


def test_a_partition_removed_while_loading_is_not_owned_when_the_load_ends(
    thread: CoordinatorThread, metadata_manager: GroupMetadataManager
) -> None:
    loaded: list[GroupMetadata] = []
    metadata_manager.schedule_load_group_and_offsets(0, 0, lambda g, _now: loaded.append(g))
    assert metadata_manager.remove_partition(0)
    thread.run_next()
    assert not metadata_manager.is_partition_owned(0) and not metadata_manager.is_loading() and loaded == []
    assert not metadata_manager.remove_partition(0)  # neither owned nor loading any more
