"""The ZooKeeper adapter: its pure parts, and leaders' ISR writes against a real ZooKeeper."""

from __future__ import annotations

import json
import uuid

from broker.zk import zk_data
from broker.zk.kafka_zk_client import KafkaZkClient, bounded_handshake_hosts, parse_zk_connect
from client.tooling.zookeeper import ZooKeeperServer


def test_chroot_is_split_from_the_servers() -> None:
    assert parse_zk_connect("zk1:2181,zk2:2181/kafka/prod") == ("zk1:2181,zk2:2181", "/kafka/prod")
    assert parse_zk_connect("zk1:2181") == ("zk1:2181", None)


def test_each_handshake_is_bounded_whatever_the_session_timeout() -> None:
    # kazoo gives one handshake session_timeout / len(hosts): at most 2 s here.
    hosts = bounded_handshake_hosts("zk:2181", "/kafka", 18000)
    assert hosts == ",".join(["zk:2181"] * 9) + "/kafka"
    assert bounded_handshake_hosts("a:1,b:2,c:3", None, 6000) == "a:1,b:2,c:3"
    assert bounded_handshake_hosts("a:1", None, 1000) == "a:1"


def test_isr_changes_are_written_conditionally_and_announced_together(zookeeper: ZooKeeperServer) -> None:
    zk = KafkaZkClient(f"{zookeeper.connect}/isr-{uuid.uuid4().hex[:8]}", 10000, 10000)
    zk.start()
    try:
        kazoo = zk._kazoo
        state = zk_data.encode_partition_state(1, 0, [1, 2], 1)
        for p in range(3):
            kazoo.create(zk_data.partition_state_path("t", p), state, makepath=True)
        kazoo.set(zk_data.partition_state_path("t", 2), state)  # moved on: version 1
        kazoo.ensure_path(zk_data.ISR_CHANGE_NOTIFICATION_PATH)  # a broker creates it at startup
        shrunk = zk_data.encode_partition_state(1, 0, [1], 1)
        versions = zk.update_leader_and_isrs({("t", p): (shrunk, 0) for p in range(3)})
        assert versions == {("t", 0): 1, ("t", 1): 1, ("t", 2): None}
        assert json.loads(kazoo.get(zk_data.partition_state_path("t", 1))[0])["isr"] == [1]
        assert json.loads(kazoo.get(zk_data.partition_state_path("t", 2))[0])["isr"] == [1, 2]
        (notification,) = kazoo.get_children(zk_data.ISR_CHANGE_NOTIFICATION_PATH)
        data, _ = kazoo.get(f"{zk_data.ISR_CHANGE_NOTIFICATION_PATH}/{notification}")
        assert zk_data.decode_partitions_list(notification, data) == [("t", 0), ("t", 1)]
    finally:
        zk.close()


def test_a_multi_failing_on_one_partition_writes_the_partitions_before_and_after_it(
    zookeeper: ZooKeeperServer,
) -> None:
    """The controller packs many partitions' conditional writes into one fenced multi. When one
    partition's version moved, ZooKeeper fails the whole multi: the operations before it come
    back rolled back, those after it as RuntimeInconsistency (never tried). Both kinds are
    written again; only the moved partition gets its BadVersion."""
    from kazoo.exceptions import BadVersionError

    zk = KafkaZkClient(f"{zookeeper.connect}/multi-{uuid.uuid4().hex[:8]}", 10000, 10000)
    zk.start()
    try:
        kazoo = zk._kazoo
        kazoo.create(zk_data.CONTROLLER_EPOCH_PATH, b"1", makepath=True)
        state = zk_data.encode_partition_state(1, 0, [1, 2], 1)
        for p in range(5):
            kazoo.create(zk_data.partition_state_path("t", p), state, makepath=True)
        kazoo.set(zk_data.partition_state_path("t", 2), state)  # moved on: version 1
        elected = zk_data.encode_partition_state(2, 1, [2], 1)
        answers = zk.update_partition_states(0, {("t", p): (elected, 0) for p in range(5)})
        assert isinstance(answers.pop(("t", 2)), BadVersionError)
        assert answers == {("t", p): 1 for p in (0, 1, 3, 4)}
        for p in (0, 1, 3, 4):
            assert json.loads(kazoo.get(zk_data.partition_state_path("t", p))[0])["leader"] == 2
    finally:
        zk.close()


def test_an_isr_write_whose_first_attempt_was_applied_is_taken_as_written(zookeeper: ZooKeeperServer) -> None:
    """A leader's conditional ISR write sent again after a lost connection finds the version
    moved by its own first attempt: the znode holds exactly what it wrote, so it is a success
    with the znode's version, not a conflict (else the leader keeps a stale version for good)."""
    zk = KafkaZkClient(f"{zookeeper.connect}/isr-retry-{uuid.uuid4().hex[:8]}", 10000, 10000)
    zk.start()
    try:
        kazoo = zk._kazoo
        kazoo.ensure_path(zk_data.ISR_CHANGE_NOTIFICATION_PATH)
        state = zk_data.encode_partition_state(3, 2, [3], 97)
        expanded = zk_data.encode_partition_state(3, 2, [3, 2], 97)
        other = zk_data.encode_partition_state(3, 3, [3], 98)
        for p in range(2):
            kazoo.create(zk_data.partition_state_path("t", p), state, makepath=True)
        kazoo.set(zk_data.partition_state_path("t", 0), expanded)  # our first attempt, applied
        kazoo.set(zk_data.partition_state_path("t", 1), other)  # the controller's write
        versions = zk.update_leader_and_isrs({("t", 0): (expanded, 0), ("t", 1): (expanded, 0)})
        assert versions == {("t", 0): 1, ("t", 1): None}
        (notification,) = kazoo.get_children(zk_data.ISR_CHANGE_NOTIFICATION_PATH)
        data, _ = kazoo.get(f"{zk_data.ISR_CHANGE_NOTIFICATION_PATH}/{notification}")
        assert zk_data.decode_partitions_list(notification, data) == [("t", 0)]
    finally:
        zk.close()
