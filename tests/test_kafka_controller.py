"""KafkaController in-process: the real controller, event manager, state machines and request
batch, with only ZooKeeper (FakeZooKeeper) and the brokers' channels (RecordingChannelManager)
replaced. The cases of Kafka's ControllerIntegrationTest and PartitionStateMachineTest: election
and failover, broker failure, controlled shutdown, a fenced write refused, elections cut off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from controller_doubles import FakeKafkaZkClient, FakeZooKeeper, RecordingChannelManager

from broker.controller.controller import KafkaController
from broker.controller.controller_context import TopicPartition
from broker.controller.state_machines import PartitionState
from broker.log import log_config
from broker.zk import zk_data
from broker.zk.kafka_zk_client import ControllerMovedError
from broker.zk.zk_data import BrokerInfo
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors

TIMEOUT = 10.0


@dataclass
class Broker:
    info: BrokerInfo
    zk: FakeKafkaZkClient
    channels: RecordingChannelManager
    controller: KafkaController | None
    broker_epoch: int
    stopped: bool = False


class ControllerCluster:
    """Brokers on one FakeZooKeeper, each registered as KafkaServer.startup registers it."""

    def __init__(self) -> None:
        self.zookeeper = FakeZooKeeper()
        self.brokers: dict[int, Broker] = {}
        self.fatal: list[str] = []

    def start(self, broker_id: int, controller: bool = True, run: bool = True, unclean_default: bool = False
              ) -> Broker:
        """Register the broker; `run`: start its controller now, else with run() (after others race)."""
        zk = FakeKafkaZkClient(self.zookeeper)
        info = BrokerInfo(broker_id, (f"PLAINTEXT://localhost:{9090 + broker_id}",))
        channels = RecordingChannelManager()
        epoch = zk.register_broker(info)
        kafka_controller = None
        if controller:
            kafka_controller = KafkaController(info, zk, on_fatal=self.fatal.append,
                                               unclean_leader_election_default=unclean_default, channels=channels)
            zk.set_session_listener(kafka_controller.on_session_event)
        self.brokers[broker_id] = Broker(info, zk, channels, kafka_controller, epoch)
        if run and kafka_controller is not None:
            self.run(broker_id)
        return self.brokers[broker_id]

    def run(self, broker_id: int) -> None:
        self.controller(broker_id).startup(self.brokers[broker_id].broker_epoch)

    def start_with_controller(self, controller_id: int, *others: int) -> KafkaController:
        """Every broker registered, `controller_id` the first to race, the others following it."""
        for broker_id in (controller_id, *others):
            self.start(broker_id, run=False)
        self.run(controller_id)
        controller = self.wait_for_controller(controller_id, epoch=1)
        for broker_id in others:
            self.run(broker_id)
        self.wait_for_followers(controller_id, *others)
        self.settled(controller_id)
        return controller

    def controller(self, broker_id: int) -> KafkaController:
        found = self.brokers[broker_id].controller
        assert found is not None
        return found

    def crash(self, broker_id: int) -> None:
        """The process dies: its event thread stops with nothing more written, its session closes."""
        broker = self.brokers[broker_id]
        if broker.controller is not None:
            assert broker.controller.event_manager.close(TIMEOUT)
        broker.zk.close()
        broker.stopped = True

    def shutdown(self, broker_id: int) -> None:
        """The controller's part of a clean shutdown (KafkaServer.shutdown): it resigns; the session stays."""
        self.controller(broker_id).shutdown(TIMEOUT)
        self.brokers[broker_id].stopped = True

    def wait_for_controller(self, broker_id: int, epoch: int) -> KafkaController:
        controller = self.controller(broker_id)
        wait_until(lambda: controller.is_active and self.zookeeper.controller_epoch() == (epoch, epoch),
                   TIMEOUT, f"broker {broker_id} to be controller of epoch {epoch}")
        return controller

    def wait_for_followers(self, controller_id: int, *broker_ids: int) -> None:
        wait_until(lambda: all(self.controller(b).active_controller_id == controller_id for b in broker_ids),
                   TIMEOUT, f"brokers {broker_ids} to follow controller {controller_id}")

    def state(self, tp: TopicPartition) -> tuple[int, tuple[int, ...], int, int] | None:
        """(leader, ISR, leader epoch, controller epoch) of the partition in ZooKeeper."""
        state = self.zookeeper.partition_state(tp)
        return None if state is None else (state.leader, state.isr, state.leader_epoch, state.controller_epoch)

    def wait_for_state(self, tp: TopicPartition, leader: int, isr: tuple[int, ...]) -> None:
        wait_until(lambda: (self.state(tp) or ())[:2] == (leader, isr), TIMEOUT,
                   f"{tp} to be led by {leader} with ISR {isr}")

    def settled(self, broker_id: int) -> None:
        """Every event queued on the broker's controller so far has been processed: a request
        answered through the event queue comes after them."""
        answer = self.controller(broker_id).elect_preferred_leaders([], TIMEOUT)
        assert answer[0] in (Errors.NONE, Errors.NOT_CONTROLLER), answer

    def close(self) -> None:
        for broker in self.brokers.values():
            if broker.controller is not None and not broker.stopped:
                broker.controller.shutdown(TIMEOUT)
        self.zookeeper.after_fenced_multi = None


@pytest.fixture
def cluster() -> Iterator[ControllerCluster]:
    """Overrides conftest's cluster of real brokers: nothing here starts a process."""
    cluster = ControllerCluster()
    yield cluster
    cluster.close()


T0, T1, T2, T3 = ("t", 0), ("t", 1), ("t", 2), ("t", 3)


# -- controller election and failover -------------------------------------------------------------


def three_brokers_with_1_as_controller(cluster: ControllerCluster) -> tuple[KafkaController, Broker]:
    """Brokers 2 and 3 first (they never race), then broker 1, which wins epoch 1; settled, with
    channels to all three and nothing recorded yet. Returns the controller and broker 2."""
    two = cluster.start(2, controller=False)
    cluster.start(3, controller=False)
    cluster.start(1)
    controller = cluster.wait_for_controller(1, epoch=1)
    channels = cluster.brokers[1].channels
    wait_until(lambda: channels.brokers == {1, 2, 3}, TIMEOUT, "channels to every broker")
    cluster.settled(1)
    channels.clear()
    return controller, two


def test_the_first_broker_to_race_becomes_controller_of_epoch_1_and_the_others_follow_it(
    cluster: ControllerCluster,
) -> None:
    cluster.start(1)
    controller = cluster.wait_for_controller(1, epoch=1)
    cluster.start(2)
    cluster.start(3)
    cluster.wait_for_followers(1, 2, 3)
    assert cluster.zookeeper.controller_id() == 1
    assert not cluster.controller(2).is_active and not cluster.controller(3).is_active
    assert controller.context.epoch == 1 and controller.context.epoch_zk_version == 1
    # The brokers that registered later reach the controller as new brokers: each hears of it.
    wait_until(lambda: {s.broker_id for s in cluster.brokers[1].channels.sent("UpdateMetadata")} == {1, 2, 3},
               TIMEOUT, "UpdateMetadata to every broker")
    assert {s.controller_epoch for s in cluster.brokers[1].channels.sent()} == {1}
    assert not cluster.brokers[2].channels.sent() and not cluster.brokers[3].channels.sent()


def test_when_the_controller_dies_another_broker_takes_over_with_the_next_epoch_and_re_elects_its_partitions(
    cluster: ControllerCluster,
) -> None:
    cluster.zookeeper.create_topic("t", {0: (1, 2, 3), 1: (2, 3, 1)})
    cluster.zookeeper.set_partition_state(T0, leader=1, isr=(1, 2, 3))
    cluster.zookeeper.set_partition_state(T1, leader=2, isr=(2, 3, 1))
    cluster.start_with_controller(1, 2, 3)

    cluster.crash(1)

    wait_until(lambda: cluster.zookeeper.controller_epoch() == (2, 2), TIMEOUT, "a controller of epoch 2")
    new_id = cluster.zookeeper.controller_id()
    assert new_id in (2, 3)
    other = 5 - new_id
    cluster.wait_for_controller(new_id, epoch=2)
    cluster.wait_for_followers(new_id, other)
    # The old controller's partition moves to the first live ISR replica in assignment order;
    # broker 1 leaves every ISR.
    cluster.wait_for_state(T0, leader=2, isr=(2, 3))
    cluster.wait_for_state(T1, leader=2, isr=(2, 3))
    assert cluster.state(T0) == (2, (2, 3), 1, 2)
    new = cluster.brokers[new_id].channels
    wait_until(lambda: new.last_state(other, T0) is not None and new.last_state(other, T0).leader == 2,
               TIMEOUT, "the surviving broker to hear of the new leader")
    assert {s.controller_epoch for s in new.sent()} == {2}
    assert not new.sent(broker_id=1)  # the dead broker is never sent to


def test_a_controller_that_resigns_on_shutdown_frees_the_controller_znode_at_once(cluster: ControllerCluster) -> None:
    cluster.start(1)
    cluster.wait_for_controller(1, epoch=1)
    cluster.start(2)
    cluster.wait_for_followers(1, 2)

    cluster.shutdown(1)  # its session stays open: only the fenced delete frees /controller

    cluster.wait_for_controller(2, epoch=2)
    assert cluster.brokers[1].channels.brokers == set()


# -- broker failure ---------------------------------------------------------------------------------


def test_a_failed_brokers_partitions_are_re_elected_from_the_isr_in_assignment_order(
    cluster: ControllerCluster,
) -> None:
    zookeeper = cluster.zookeeper
    zookeeper.create_topic("t", {0: (2, 3, 1), 1: (1, 2), 2: (2,)})
    zookeeper.set_partition_state(T0, leader=2, isr=(1, 3, 2))  # ISR order differs from assignment order
    zookeeper.set_partition_state(T1, leader=1, isr=(1, 2))
    zookeeper.set_partition_state(T2, leader=2, isr=(2,))
    controller, _ = three_brokers_with_1_as_controller(cluster)
    channels = cluster.brokers[1].channels

    cluster.crash(2)

    # Broker 3 comes before broker 1 in the assignment: it leads, though broker 1 is first in the ISR.
    cluster.wait_for_state(T0, leader=3, isr=(1, 3))
    # A follower leaves the ISR; the leader stays.
    cluster.wait_for_state(T1, leader=1, isr=(1,))
    # No replica left alive: offline, leaderless, its last ISR member kept.
    cluster.wait_for_state(T2, leader=-1, isr=(2,))
    cluster.settled(1)
    assert cluster.state(T0) == (3, (1, 3), 1, 1)
    assert cluster.state(T1) == (1, (1,), 1, 1)
    assert controller.partition_state_machine.states[T2] is PartitionState.OFFLINE_PARTITION
    assert controller.partition_state_machine.states[T0] is PartitionState.ONLINE_PARTITION
    assert controller.unclean_elections == 0
    # LeaderAndIsr goes to the partition's live replicas, UpdateMetadata to every live broker,
    # nothing to the dead one.
    assert channels.last_state(3, T0).leader == 3 and channels.last_state(1, T0).leader == 3
    assert channels.last_state(1, T1).isr == (1,)
    assert channels.last_state(3, T1) is None  # not a replica of t-1
    assert {s.broker_id for s in channels.sent("UpdateMetadata")} == {1, 3}
    for broker_id in (1, 3):
        offline = channels.last_state(broker_id, T2, "UpdateMetadata")
        assert offline is not None and offline.leader == -1 and offline.offline_replicas == (2,)
    assert not channels.sent(broker_id=2)
    assert channels.brokers == {1, 3}


def test_unclean_election_elects_a_replica_outside_the_isr_only_where_the_topic_enables_it(
    cluster: ControllerCluster,
) -> None:
    zookeeper = cluster.zookeeper
    zookeeper.create_topic("clean", {0: (2, 3)})
    zookeeper.create_topic("unclean", {0: (2, 3)}, {log_config.UNCLEAN_LEADER_ELECTION_ENABLE: "true"})
    for topic in ("clean", "unclean"):
        zookeeper.set_partition_state((topic, 0), leader=2, isr=(2,))  # broker 3 is out of sync
    cluster.start(2, controller=False)
    cluster.start(3, controller=False)
    cluster.start(1)
    controller = cluster.wait_for_controller(1, epoch=1)
    wait_until(lambda: cluster.brokers[1].channels.brokers == {1, 2, 3}, TIMEOUT, "channels to every broker")
    cluster.settled(1)

    cluster.crash(2)

    cluster.wait_for_state(("unclean", 0), leader=3, isr=(3,))
    cluster.wait_for_state(("clean", 0), leader=-1, isr=(2,))
    cluster.settled(1)
    assert controller.unclean_elections == 1
    assert controller.partition_state_machine.states[("clean", 0)] is PartitionState.OFFLINE_PARTITION
    assert cluster.brokers[1].channels.last_state(3, ("unclean", 0)).leader == 3


def test_a_broker_that_comes_back_hears_of_its_partitions_and_an_offline_partition_gets_its_leader_back(
    cluster: ControllerCluster,
) -> None:
    cluster.zookeeper.create_topic("t", {0: (2,)})
    cluster.zookeeper.set_partition_state(T0, leader=2, isr=(2,))
    cluster.start(2, controller=False)
    cluster.start(1)
    cluster.wait_for_controller(1, epoch=1)
    cluster.crash(2)
    cluster.wait_for_state(T0, leader=-1, isr=(2,))

    cluster.start(2, controller=False)

    cluster.wait_for_state(T0, leader=2, isr=(2,))
    channels = cluster.brokers[1].channels
    wait_until(lambda: (s := channels.last_state(2, T0)) is not None and s.leader == 2, TIMEOUT,
               "LeaderAndIsr to the returning broker")


def test_after_a_reconnection_lost_its_watches_the_controller_catches_up_on_a_broker_failure_it_missed(
    cluster: ControllerCluster,
) -> None:
    cluster.zookeeper.create_topic("t", {0: (2, 3)})
    cluster.zookeeper.set_partition_state(T0, leader=2, isr=(2, 3))
    cluster.start(2, controller=False)
    cluster.start(3, controller=False)
    cluster.start(1)
    controller = cluster.wait_for_controller(1, epoch=1)
    cluster.settled(1)

    cluster.brokers[1].zk.reconnect(while_away=lambda: cluster.crash(2))

    cluster.wait_for_state(T0, leader=3, isr=(3,))
    cluster.settled(1)
    assert controller.is_active and set(controller.context.live_brokers) == {1, 3}
    assert cluster.zookeeper.controller_epoch() == (1, 1)  # the same controller, no new election


def test_a_bounced_leader_is_out_while_its_partitions_are_re_elected_and_they_end_with_a_leader(
    cluster: ControllerCluster,
) -> None:
    """Broker 2 loses its session and registers again before the controller looks: a bounce. As
    Kafka does, the controller handles its failure with it out of the live brokers, so its
    partitions go to broker 3 rather than back to it, and none is left leaderless."""
    cluster.zookeeper.create_topic("t", {0: (2, 3), 1: (2,)})
    cluster.zookeeper.set_partition_state(T0, leader=2, isr=(2, 3))
    cluster.zookeeper.set_partition_state(T1, leader=2, isr=(2,))
    cluster.start(2, controller=False)
    cluster.start(3, controller=False)
    cluster.start(1)
    controller = cluster.wait_for_controller(1, epoch=1)
    cluster.settled(1)

    def bounce() -> None:
        cluster.crash(2)
        cluster.start(2, controller=False)

    cluster.brokers[1].zk.reconnect(while_away=bounce)

    cluster.wait_for_state(T0, leader=3, isr=(3,))
    cluster.wait_for_state(T1, leader=2, isr=(2,))  # its only replica is back: online again
    cluster.settled(1)
    assert set(controller.context.live_brokers) == {1, 2, 3}
    assert controller.partition_state_machine.states[T0] is PartitionState.ONLINE_PARTITION
    assert controller.partition_state_machine.states[T1] is PartitionState.ONLINE_PARTITION


# -- controlled shutdown --------------------------------------------------------------------------


def test_controlled_shutdown_moves_leadership_away_and_answers_what_the_broker_still_leads(
    cluster: ControllerCluster,
) -> None:
    zookeeper = cluster.zookeeper
    zookeeper.create_topic("t", {0: (2, 1, 3), 1: (2, 3), 2: (2,), 3: (1, 2)})
    zookeeper.set_partition_state(T0, leader=2, isr=(2, 1, 3))
    zookeeper.set_partition_state(T1, leader=2, isr=(2,))  # nobody else in sync: cannot move
    zookeeper.set_partition_state(T2, leader=2, isr=(2,))  # one replica: not even tried
    zookeeper.set_partition_state(T3, leader=1, isr=(1, 2))  # broker 2 follows
    controller, two = three_brokers_with_1_as_controller(cluster)
    channels = cluster.brokers[1].channels

    error, remaining = controller.controlled_shutdown(2, two.broker_epoch, TIMEOUT)

    assert error is Errors.NONE
    assert remaining == [T1]  # t-2 cannot move either, but with one replica it is no reason to retry
    assert cluster.state(T0) == (1, (1, 3), 1, 1)  # the first ISR replica not shutting down, in assignment order
    assert cluster.state(T3) == (1, (1,), 1, 1)  # the follower leaves the ISR
    # What the broker still leads stays as it was: it serves until it stops.
    assert cluster.state(T1) == (2, (2,), 0, 0)
    assert cluster.state(T2) == (2, (2,), 0, 0)
    assert channels.last_state(1, T0).leader == 1 and channels.last_state(3, T0).leader == 1
    assert channels.last_state(2, T0).leader == 1  # the shutting-down broker hears too
    # StopReplica (no delete) only for the partitions it followed: one it led hears of its new
    # leader instead, and one it still leads is left alone.
    stops = [s.stop for s in channels.sent("StopReplica")]
    assert stops and all(s.broker_id == 2 for s in channels.sent("StopReplica"))
    assert {tp: d for s in stops for tp, d in s.items()} == {T3: False}
    assert 2 in controller.context.shutting_down_broker_ids


def test_controlled_shutdown_refuses_an_unknown_broker_a_stale_broker_epoch_and_a_broker_that_is_not_controller(
    cluster: ControllerCluster,
) -> None:
    controller = cluster.start_with_controller(1, 2)
    two = cluster.brokers[2]

    assert controller.controlled_shutdown(7, -1, TIMEOUT) == (Errors.BROKER_NOT_AVAILABLE, [])
    assert controller.controlled_shutdown(2, two.broker_epoch - 1, TIMEOUT) == (Errors.STALE_BROKER_EPOCH, [])
    assert cluster.controller(2).controlled_shutdown(1, -1, TIMEOUT) == (Errors.NOT_CONTROLLER, [])
    assert controller.context.shutting_down_broker_ids == set()


# -- fencing ---------------------------------------------------------------------------------------


def test_a_write_fenced_by_an_old_controller_epoch_is_refused_by_the_double(cluster: ControllerCluster) -> None:
    """The double's fence, as the real adapter's: the check on /controller_epoch refuses the whole write."""
    zk = FakeKafkaZkClient(cluster.zookeeper)
    cluster.zookeeper.create_topic("t", {0: (1,)})
    cluster.zookeeper.set_partition_state(T0, leader=1, isr=(1,))
    epoch, version = zk.register_controller_and_increment_epoch(1)
    assert (epoch, version) == (1, 1)
    cluster.zookeeper.write(("set", zk_data.CONTROLLER_EPOCH_PATH, b"2", -1))
    write = zk.update_partition_states_async(version, {T0: (zk_data.encode_partition_state(1, 1, (1,), 1), 0)})
    with pytest.raises(ControllerMovedError):
        write()
    with pytest.raises(ControllerMovedError):
        zk.delete_controller(version)
    with pytest.raises(ControllerMovedError):
        zk.update_partition_states(-1, {})
    assert cluster.state(T0) == (1, (1,), 0, 0)
    assert cluster.zookeeper.controller_id() == 1


def test_a_zombie_controllers_fenced_write_is_refused_and_it_resigns_without_applying_or_sending_anything(
    cluster: ControllerCluster,
) -> None:
    zookeeper = cluster.zookeeper
    zookeeper.create_topic("t", {0: (3, 1, 2), 1: (1, 2, 3)})
    zookeeper.set_partition_state(T0, leader=3, isr=(3, 1, 2))
    zookeeper.set_partition_state(T1, leader=1, isr=(1, 2, 3))
    zombie = cluster.start_with_controller(1, 2, 3)
    three = cluster.brokers[3]

    # Broker 1 stalls past its session timeout: ZooKeeper expires the session, it has not heard.
    cluster.brokers[1].zk.expire_session(told=False)
    wait_until(lambda: zookeeper.controller_epoch() == (2, 2), TIMEOUT, "a controller of epoch 2")
    new_id = zookeeper.controller_id()
    assert new_id in (2, 3)
    cluster.wait_for_state(T1, leader=2, isr=(2, 3))
    cluster.settled(new_id)
    before = {tp: cluster.state(tp) for tp in (T0, T1)}
    zombie_channels = cluster.brokers[1].channels
    zombie_channels.clear()

    # The zombie still acts as controller; its first write goes out on a new session, fenced.
    assert zombie.is_active
    error, remaining = zombie.controlled_shutdown(3, three.broker_epoch, TIMEOUT)

    assert (error, remaining) == (Errors.NOT_CONTROLLER, [])
    wait_until(lambda: zombie.active_controller_id == new_id, TIMEOUT, "the zombie to follow the new controller")
    cluster.settled(1)  # its resignation, and the new session's events, are done
    assert not zombie.is_active
    assert {tp: cluster.state(tp) for tp in (T0, T1)} == before  # broker 3 still leads t-0
    assert zombie_channels.sent() == [] and zombie_channels.brokers == set()
    # Its fenced delete of /controller was refused as well.
    assert zookeeper.controller_id() == new_id and zookeeper.controller_epoch() == (2, 2)
    # It registered again on its new session, and the new controller saw it come back.
    wait_until(lambda: 1 in cluster.controller(new_id).context.live_brokers, TIMEOUT, "broker 1 back")
    assert cluster.fatal == []


# -- elections cut off ----------------------------------------------------------------------------


def six_partitions_led_by_3(cluster: ControllerCluster) -> list[TopicPartition]:
    partitions = [("t", p) for p in range(6)]
    cluster.zookeeper.create_topic("t", {p: (3, 1, 2) for _, p in partitions})
    for tp in partitions:
        cluster.zookeeper.set_partition_state(tp, leader=3, isr=(3, 1, 2))
    cluster.zookeeper.multi_ops = 2  # the election's write goes out in three multis
    return partitions


def cut_in_after_first_election_multi(
    cluster: ControllerCluster, cut: Callable[[], None]
) -> list[list[TopicPartition]]:
    """Run `cut` once, on broker 1's event thread, after the first multi of its write of partition states."""
    written: list[list[TopicPartition]] = []

    def after(client: FakeKafkaZkClient, keys: list[Any]) -> None:
        if client is cluster.brokers[1].zk and not written and keys and all(isinstance(k, tuple) for k in keys):
            written.append(keys)
            cut()

    cluster.zookeeper.after_fenced_multi = after
    return written


def test_elections_cut_off_by_a_controller_move_are_finished_by_the_next_controller(
    cluster: ControllerCluster,
) -> None:
    partitions = six_partitions_led_by_3(cluster)
    zookeeper = cluster.zookeeper
    cluster.start_with_controller(1, 2, 3)

    def move_controller() -> None:
        # An operator deletes /controller (the documented way to move it); broker 2 wins the race
        # while broker 1 is still writing its elections.
        zookeeper.delete(zk_data.CONTROLLER_PATH)
        wait_until(lambda: zookeeper.controller_epoch() == (2, 2), TIMEOUT, "broker 2 to win epoch 2")

    written = cut_in_after_first_election_multi(cluster, move_controller)
    cluster.brokers[1].channels.clear()

    cluster.crash(3)

    cluster.wait_for_controller(2, epoch=2)
    for tp in partitions:
        cluster.wait_for_state(tp, leader=1, isr=(1, 2))
    assert written == [partitions[:2]]
    # The first multi landed, written by epoch 1; the next controller found it and kept it, and
    # elected the partitions whose writes were refused.
    assert [cluster.state(tp)[2:] for tp in partitions] == [(1, 1)] * 2 + [(1, 2)] * 4
    cluster.wait_for_followers(2, 1)
    # Broker 1 sent nothing of its cut-off elections; broker 2 announced all six.
    assert cluster.brokers[1].channels.sent() == []
    new = cluster.brokers[2].channels
    wait_until(lambda: all((s := new.last_state(1, tp)) is not None and s.leader == 1 for tp in partitions),
               TIMEOUT, "broker 1 to hear of every leader from the new controller")


def test_elections_cut_off_by_the_controllers_session_expiring_are_finished_by_the_next_controller(
    cluster: ControllerCluster,
) -> None:
    partitions = six_partitions_led_by_3(cluster)
    cluster.start_with_controller(1, 2, 3)
    one = cluster.brokers[1]

    def lose_session() -> None:
        # Broker 1's session expires: /controller and its registration go, and broker 2, the only
        # broker left, re-elects everything before broker 1's next multi.
        one.zk.expire_session()
        wait_until(lambda: all((cluster.state(tp) or ())[::3] == (2, 2) for tp in partitions), TIMEOUT,
                   "broker 2 to elect every partition")

    written = cut_in_after_first_election_multi(cluster, lose_session)
    cluster.brokers[1].channels.clear()

    cluster.crash(3)

    cluster.wait_for_controller(2, epoch=2)
    cluster.wait_for_followers(2, 1)
    assert written == [partitions[:2]]
    assert [cluster.state(tp) for tp in partitions] == [(2, (2,), 2, 2)] * 2 + [(2, (2,), 1, 2)] * 4
    assert cluster.brokers[1].channels.sent() == []
    # Broker 1 registered again on its new session (a new broker epoch) and hears of every leader.
    new = cluster.controller(2)
    wait_until(lambda: 1 in new.context.live_brokers, TIMEOUT, "broker 1 to register again")
    assert new.context.live_brokers[1].broker_epoch > one.broker_epoch
    channels = cluster.brokers[2].channels
    wait_until(lambda: all((s := channels.last_state(1, tp)) is not None and s.leader == 2 for tp in partitions),
               TIMEOUT, "broker 1 to hear of every leader")
    assert cluster.fatal == []


# -- topics ----------------------------------------------------------------------------------------


def test_a_new_topics_partitions_are_led_by_their_first_live_replica_and_every_replica_hears_of_it_as_new(
    cluster: ControllerCluster,
) -> None:
    cluster.start(1)
    cluster.start(2, controller=False)
    controller = cluster.wait_for_controller(1, epoch=1)
    wait_until(lambda: cluster.brokers[1].channels.brokers == {1, 2}, TIMEOUT, "channels to every broker")

    cluster.zookeeper.create_topic("t", {0: (2, 1), 1: (3, 1, 2)})

    cluster.wait_for_state(T0, leader=2, isr=(2, 1))
    cluster.wait_for_state(T1, leader=1, isr=(1, 2))  # broker 3 was never started
    cluster.settled(1)
    assert cluster.state(T0) == (2, (2, 1), 0, 1)
    assert controller.partition_state_machine.states[T1] is PartitionState.ONLINE_PARTITION
    channels = cluster.brokers[1].channels
    assert channels.last_state(1, T0).is_new and channels.last_state(2, T1).is_new
