"""The broker's checks on the controller's requests (no server: the class and its logs alone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.errors import Errors
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.metadata_cache import PartitionInfo
from broker.replica_manager import ReplicaManager


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
