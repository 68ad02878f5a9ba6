"""The group coordinator's thread over a real replica manager and logs on disk (no server, no
ZooKeeper): coordinator ownership following leadership, load and unload, writes before answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.group.group_coordinator import GroupCoordinator
from broker.group.group_coordinator_rules import GroupConfig, JoinGroupRequest, MemberIdentity, SyncGroupRequest
from broker.group.group_metadata import OffsetAndMetadata
from broker.log import record_batch as rb
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.metadata_cache import PartitionInfo
from broker.replica_manager import ReplicaManager
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC

TP = (OFFSETS_TOPIC, 0)
T = 10  # seconds for any answer


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[ReplicaManager]:
    manager = ReplicaManager(1, lambda: 100, LogManager([str(tmp_path)], LogConfig()))
    manager.start()
    yield manager
    manager.stop()


@pytest.fixture
def group_coordinator(replicas: ReplicaManager) -> Iterator[GroupCoordinator]:
    # One offsets partition: every group is in partition 0.
    group_coordinator = GroupCoordinator(1, replicas, lambda: 1, GroupConfig(group_initial_rebalance_delay_ms=0))
    group_coordinator.startup()
    yield group_coordinator
    group_coordinator.shutdown()


def lead(replicas: ReplicaManager, epoch: int, leader: int = 1) -> None:
    state = PartitionInfo(OFFSETS_TOPIC, 0, leader, epoch, isr=(leader,), replicas=(1, 2), zk_version=0)
    assert replicas.become_leader_or_follower(9, 1, -1, [state])[1] == {TP: Errors.NONE}


def owned(group_coordinator: GroupCoordinator) -> list[int]:
    return group_coordinator.owned_partitions().result(T)[0]


def join(group_coordinator: GroupCoordinator, member_id: str = "", group: str = "g"):  # type: ignore[no-untyped-def]
    return group_coordinator.join_group(JoinGroupRequest(
        group_id=group, member_id=member_id, client_id="c", protocol_type="consumer",
        protocols=[("range", b"sub")], session_timeout_ms=10000, rebalance_timeout_ms=10000,
        require_known_member_id=False,
    ))


def stable_member(group_coordinator: GroupCoordinator) -> tuple[str, int]:
    joined = join(group_coordinator).result(T)
    assert joined.error is Errors.NONE
    synced = group_coordinator.sync_group(SyncGroupRequest("g", joined.generation_id, joined.member_id,
                                                           {joined.member_id: b"assigned"})).result(T)
    assert synced.error is Errors.NONE and synced.assignment == b"assigned"
    return joined.member_id, joined.generation_id


def test_requests_before_the_partition_is_led_are_told_not_coordinator(
    group_coordinator: GroupCoordinator,
) -> None:
    assert join(group_coordinator).result(T).error is Errors.NOT_COORDINATOR
    assert group_coordinator.fetch_offsets("g", None).result(T)[0] is Errors.NOT_COORDINATOR


def test_the_assignment_and_commits_are_in_the_log_before_the_answers(
    replicas: ReplicaManager, group_coordinator: GroupCoordinator
) -> None:
    lead(replicas, 0)
    wait_until(lambda: owned(group_coordinator) == [0], T, "the partition to load")
    member_id, generation = stable_member(group_coordinator)
    commit = group_coordinator.commit_offsets("g", member_id, generation, {("t", 0): OffsetAndMetadata(42, "m", 1)})
    assert commit.result(T) == {("t", 0): Errors.NONE}
    partition = replicas.partition(TP)
    assert partition is not None
    written = rb.read_records(partition.log.read(0, 1 << 20))
    assert [r.key[:2] for r in written] == [b"\x00\x02", b"\x00\x01"]  # the group record, then the offset
    assert partition.offsets()[1] == len(written)  # and below the high watermark


def test_a_new_leader_reloads_groups_and_offsets_and_a_resigned_one_answers_not_coordinator(
    replicas: ReplicaManager, group_coordinator: GroupCoordinator
) -> None:
    lead(replicas, 0)
    wait_until(lambda: owned(group_coordinator) == [0], T, "the partition to load")
    member_id, generation = stable_member(group_coordinator)
    committed = group_coordinator.commit_offsets("g", member_id, generation, {("t", 0): OffsetAndMetadata(7, "", 1)})
    assert committed.result(T) == {("t", 0): Errors.NONE}
    # Another member's JoinGroup parks (the group must rebalance); then leadership moves away.
    parked = join(group_coordinator)
    lead(replicas, 1, leader=2)
    assert parked.result(T).error is Errors.NOT_COORDINATOR
    assert group_coordinator.heartbeat("g", member_id, generation).result(T) is Errors.NOT_COORDINATOR

    lead(replicas, 2)
    wait_until(lambda: owned(group_coordinator) == [0], T, "the partition to load again")
    error, offsets = group_coordinator.fetch_offsets("g", None).result(T)
    assert error is Errors.NONE and offsets[("t", 0)].offset == 7
    [(error, group)] = group_coordinator.describe_groups(["g"]).result(T)
    assert (error, group.state, group.generation_id, group.leader_id) == (Errors.NONE, "Stable", generation,
                                                                          member_id)
    assert [m.assignment for m in group.members] == [b"assigned"]
    assert group_coordinator.heartbeat("g", member_id, generation).result(T) is Errors.NONE


def test_oversized_metadata_is_refused_per_partition_and_the_rest_committed(
    replicas: ReplicaManager, group_coordinator: GroupCoordinator
) -> None:
    lead(replicas, 0)
    wait_until(lambda: owned(group_coordinator) == [0], T, "the partition to load")
    answer = group_coordinator.commit_offsets("simple", "", -1, {
        ("t", 0): OffsetAndMetadata(1, "x" * 4097, 1), ("t", 1): OffsetAndMetadata(2, "ok", 1)}).result(T)
    assert answer == {("t", 0): Errors.OFFSET_METADATA_TOO_LARGE, ("t", 1): Errors.NONE}
    _, offsets = group_coordinator.fetch_offsets("simple", None).result(T)
    assert {tp: o.offset for tp, o in offsets.items()} == {("t", 1): 2}


def test_leave_and_list_after_shutdown_are_answered_at_once(group_coordinator: GroupCoordinator) -> None:
    group_coordinator.shutdown()
    assert group_coordinator.leave_group("g", [MemberIdentity("m")]).result(T).error is Errors.COORDINATOR_NOT_AVAILABLE
    assert group_coordinator.list_groups().result(T)[0] is Errors.COORDINATOR_NOT_AVAILABLE
