"""`minikafka watch` over plain data: the elections found between two snapshots and their causes,
what a refresh that could not see everything carries over, the election log, and the JSON and
text views."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fake_cluster import FakeCluster, wait_for
from rich.console import Console

from client import cli
from client.consumer import KafkaConsumer
from client.group.member import MemberState
from client.watch.collector import SnapshotCollector, parse_srvr, parse_zookeeper_connect
from client.watch.elections import (
    FOLD_OVER,
    Election,
    ElectionEvent,
    Watch,
    diff_elections,
    fold_partition_elections,
    remembered,
)
from client.watch.render import render, snapshot_json, status_lines
from client.watch.snapshot import (
    BrokerCounters,
    BrokerState,
    ClusterSnapshot,
    GroupMember,
    GroupState,
    PartitionState,
    ZooKeeperServerState,
    short_member_id,
)
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.group import OFFSETS_TOPIC

NOW = 1_700_000_000.0
A = "first-6c9e4c7f-2b64-4f89-bb30-4ccaf72fb8e7"
B = "second-3ce8844e-9db5-4b0f-b900-c0147ea404f5"
C = "third-0a1b2c3d-0000-4000-8000-123456789abc"


def broker(broker_id: int, alive: bool = True, reachable: bool | None = None, epoch: int | None = None
           ) -> BrokerState:
    return BrokerState(broker_id, "127.0.0.1", 9091 + broker_id, 100 + broker_id if epoch is None else epoch, alive,
                       alive if reachable is None else reachable,
                       BrokerCounters(1, 3, 0, 0, 1) if alive else None)


def partition(p: int, leader: int, epoch: int = 0, replicas: tuple[int, ...] = (1, 2, 3),
              isr: tuple[int, ...] | None = None, topic: str = "orders") -> PartitionState:
    return PartitionState(topic, p, leader, epoch, replicas, replicas if isr is None else isr)


def member(member_id: str, *partitions: int) -> GroupMember:
    return GroupMember(member_id, member_id.split("-")[0], "/127.0.0.1", None,
                       tuple(TopicPartition("orders", p) for p in partitions))


def group(coordinator: int = 2, generation: int = 1, leader: str = A,
          members: tuple[GroupMember, ...] = (member(A, 0, 1, 2),), offsets_partition: int = 9,
          state: str = "Stable") -> GroupState:
    return GroupState("billing", coordinator, offsets_partition, state, "consumer", "range", generation, leader,
                      members)


def snapshot(controller: int | None = 1, epoch: int | None = 1, brokers: tuple[BrokerState, ...] | None = None,
             partitions: tuple[PartitionState, ...] | None = (), groups: tuple[GroupState, ...] = (),
             zookeeper: tuple[ZooKeeperServerState, ...] = ()) -> ClusterSnapshot:
    return ClusterSnapshot(NOW, "cluster-1", controller, epoch,
                           brokers if brokers is not None else (broker(1), broker(2), broker(3)),
                           partitions, groups, zookeeper)


def down(broker_id: int) -> tuple[BrokerState, ...]:
    return tuple(broker(b, alive=b != broker_id) for b in (1, 2, 3))


def only(events: list[ElectionEvent], election: Election) -> ElectionEvent:
    matching = [e for e in events if e.election is election]
    assert len(matching) == 1, events
    return matching[0]


# -- controller election --------------------------------------------------------------------------


def test_controller_that_is_gone_is_replaced_with_the_next_epoch() -> None:
    events = diff_elections(snapshot(1, 4), snapshot(2, 5, brokers=down(1)), NOW)
    assert events == [ElectionEvent(NOW, Election.CONTROLLER, "cluster", 1, 2, 5, "controller 1 is gone")]


def test_controller_that_is_still_registered_resigned() -> None:
    event = only(diff_elections(snapshot(1, 4), snapshot(3, 5), NOW), Election.CONTROLLER)
    assert (event.old, event.new, event.epoch, event.why) == (1, 3, 5, "controller 1 resigned")


def test_controller_re_elected_after_registering_again() -> None:
    again = (broker(1, epoch=900), broker(2), broker(3))
    event = only(diff_elections(snapshot(1, 4), snapshot(1, 5, brokers=again), NOW), Election.CONTROLLER)
    assert (event.old, event.new, event.why) == (1, 1, "broker 1 registered again and won")
    event = only(diff_elections(snapshot(1, 4), snapshot(1, 5), NOW), Election.CONTROLLER)
    assert event.why == "controller 1 re-elected"


def test_no_controller_then_a_new_one() -> None:
    vacant = snapshot(-1, 4, brokers=down(1))
    event = only(diff_elections(snapshot(1, 4), vacant, NOW), Election.CONTROLLER)
    assert (event.old, event.new, event.why) == (1, None, "controller 1 is gone")
    event = only(diff_elections(vacant, snapshot(2, 5, brokers=down(1)), NOW), Election.CONTROLLER)
    assert (event.old, event.new, event.epoch, event.why) == (None, 2, 5, "there was no controller")
    assert diff_elections(vacant, vacant, NOW) == []


def test_a_controller_nobody_answered_for_is_no_election() -> None:
    assert diff_elections(snapshot(1, 4), snapshot(None, None), NOW) == []
    assert diff_elections(snapshot(None, None), snapshot(2, 5), NOW) == []


# -- partition leader election ----------------------------------------------------------------------


@pytest.mark.parametrize("before, after, brokers, why", [
    (partition(0, 2, 0, isr=(2, 1, 3)), partition(0, 1, 1, isr=(1, 3)), down(2), "leader 2 is gone"),
    (partition(0, 2, 1, isr=(2, 3)), partition(0, 1, 2, isr=(2, 3, 1)), None, "preferred replica 1 back"),
    (partition(0, 1, 0), partition(0, 2, 1, isr=(2, 3)), None, "controlled shutdown of 1"),
    (partition(0, 1, 0), partition(0, 2, 1, replicas=(2, 3, 4), isr=(2, 3, 4)), None,
     "reassignment: 1 is no longer a replica"),
    (partition(0, 1, 0), partition(0, 3, 1, replicas=(2, 3, 1)), None, "controlled shutdown or reassignment"),
    (partition(0, 2, 3, isr=(2,)), partition(0, -1, 4, isr=(2,)), down(2), "went offline: leader 2 is gone"),
    (partition(0, -1, 4, isr=(2,)), partition(0, 2, 5, isr=(2,)), None, "back online"),
    (partition(0, -1, 4, isr=(2,)), partition(0, 3, 5, isr=(3,)), None,
     "back online; unclean: 3 was not in the ISR"),
    (partition(0, 2, 3, isr=(2,)), partition(0, 3, 4, isr=(3,)), down(2),
     "leader 2 is gone; unclean: 3 was not in the ISR"),
])
def test_partition_leader_election_causes(before: PartitionState, after: PartitionState,
                                          brokers: tuple[BrokerState, ...] | None, why: str) -> None:
    event = only(diff_elections(snapshot(partitions=(before,)), snapshot(partitions=(after,), brokers=brokers), NOW),
                 Election.PARTITION_LEADER)
    assert event == ElectionEvent(NOW, Election.PARTITION_LEADER, "orders-0", before.leader if before.leader >= 0
                                  else None, after.leader if after.leader >= 0 else None, after.leader_epoch, why)


def test_leader_of_a_restarted_broker_is_replaced() -> None:
    again = (broker(1), broker(2, epoch=555), broker(3))
    event = only(diff_elections(snapshot(partitions=(partition(0, 2, isr=(2, 1)),)),
                                snapshot(partitions=(partition(0, 1, 1, isr=(1,)),), brokers=again), NOW),
                 Election.PARTITION_LEADER)
    assert event.why == "leader 2 restarted"


def test_same_leader_and_unknown_partitions_are_no_election() -> None:
    shrunk = snapshot(partitions=(partition(0, 1, 1, isr=(1, 2)),))
    assert diff_elections(snapshot(partitions=(partition(0, 1, 0),)), shrunk, NOW) == []
    assert diff_elections(snapshot(partitions=None), shrunk, NOW) == []
    assert diff_elections(shrunk, snapshot(partitions=None), NOW) == []
    assert diff_elections(snapshot(partitions=()), shrunk, NOW) == []  # a new topic's first leaders


# -- group coordinator and group leader ----------------------------------------------------------------


def test_group_coordinator_follows_its_offsets_partition_leader() -> None:
    offsets = partition(9, 3, 1, topic=OFFSETS_TOPIC)
    events = diff_elections(snapshot(groups=(group(coordinator=2),)),
                            snapshot(groups=(group(coordinator=3),), partitions=(offsets,), brokers=down(2)), NOW)
    assert only(events, Election.GROUP_COORDINATOR) == ElectionEvent(
        NOW, Election.GROUP_COORDINATOR, "billing", 2, 3, 1, f"leader of {OFFSETS_TOPIC}-9 moved: broker 2 is gone")
    event = only(diff_elections(snapshot(groups=(group(coordinator=2),)), snapshot(groups=(group(coordinator=1),)),
                                NOW), Election.GROUP_COORDINATOR)
    assert event.why == f"leader of {OFFSETS_TOPIC}-9 moved"


def test_no_coordinator_found_is_no_move() -> None:
    lost = replace(group(coordinator=-1), state=None, error="no coordinator found")
    assert diff_elections(snapshot(groups=(group(),)), snapshot(groups=(lost,)), NOW) == []


def test_group_leader_that_died_is_replaced_in_the_next_generation() -> None:
    before = group(generation=2, leader=A, members=(member(A, 0, 1), member(B, 2)))
    after = group(generation=3, leader=B, members=(member(B, 0, 1, 2),))
    event = only(diff_elections(snapshot(groups=(before,)), snapshot(groups=(after,)), NOW), Election.GROUP_LEADER)
    assert event == ElectionEvent(NOW, Election.GROUP_LEADER, "billing", A, B, 3, "leader first-6c9e4c7f left or died")


def test_last_member_leaving_empties_the_group() -> None:
    empty = group(generation=4, leader="", members=(), state="Empty")
    event = only(diff_elections(snapshot(groups=(group(generation=3),)), snapshot(groups=(empty,)), NOW),
                 Election.GROUP_LEADER)
    assert (event.old, event.new, event.epoch) == (A, None, 4)
    assert event.why == "leader first-6c9e4c7f left or died; the group is empty"


def test_rebalance_names_who_joined_and_who_left() -> None:
    before = group(generation=2, members=(member(A, 0, 1), member(B, 2)))
    after = group(generation=3, members=(member(A, 0), member(C, 1, 2)))
    event = only(diff_elections(snapshot(groups=(before,)), snapshot(groups=(after,)), NOW), Election.GROUP_LEADER)
    assert (event.old, event.new, event.why) == (A, A, "rebalance: third-0a1b2c3d joined; second-3ce8844e left")


def test_rebalance_after_a_coordinator_move() -> None:
    events = diff_elections(snapshot(groups=(group(coordinator=2, generation=2),)),
                            snapshot(groups=(group(coordinator=1, generation=3),)), NOW)
    assert only(events, Election.GROUP_LEADER).why == "rebalance: the members rejoined at coordinator 1"


def test_a_new_group_has_its_first_leader() -> None:
    event = only(diff_elections(snapshot(), snapshot(groups=(group(),)), NOW), Election.GROUP_LEADER)
    assert (event.old, event.new, event.epoch, event.why) == (None, A, 1, "a new group")


# -- ZooKeeper's own election --------------------------------------------------------------------------


def zk(leader: str, epoch: int, gone: str | None = None) -> tuple[ZooKeeperServerState, ...]:
    servers = []
    for address in ("zk1:2181", "zk2:2181", "zk3:2181"):
        if address == gone:
            servers.append(ZooKeeperServerState(address, None, error="unreachable (Connection refused)"))
        else:
            servers.append(ZooKeeperServerState(address, "leader" if address == leader else "follower",
                                                epoch << 32 | 7))
    return tuple(servers)


def test_zookeeper_leader_election_through_a_refresh_without_a_leader() -> None:
    watch = Watch()
    watch.observe(snapshot(zookeeper=zk("zk1:2181", 1)), NOW)
    no_quorum = tuple(ZooKeeperServerState(a, None, error="This ZooKeeper instance is not currently serving requests")
                      for a in ("zk1:2181", "zk2:2181", "zk3:2181"))
    assert watch.observe(snapshot(zookeeper=no_quorum), NOW + 1) == []
    events = watch.observe(snapshot(zookeeper=zk("zk3:2181", 2, gone="zk1:2181")), NOW + 2)
    assert events == [ElectionEvent(NOW + 2, Election.ZOOKEEPER_LEADER, "ensemble", "zk1:2181", "zk3:2181", 2,
                                    "leader zk1:2181 is gone")]


# -- what is known across refreshes --------------------------------------------------------------------


def test_a_coordinator_failover_seen_through_a_refresh_that_could_not_describe_the_group_is_told_once() -> None:
    watch = Watch()
    watch.observe(snapshot(groups=(group(coordinator=2, generation=2),)), NOW)
    moving = GroupState("billing", -1, 9, None, error="DescribeGroups: COORDINATOR_LOAD_IN_PROGRESS")
    assert watch.observe(snapshot(groups=(moving,), brokers=down(2)), NOW + 1) == []
    shown = watch.known
    assert shown is not None and shown.groups[0].stale and shown.groups[0].coordinator == 2
    assert shown.groups[0].generation == 2 and shown.groups[0].error == moving.error
    events = watch.observe(snapshot(groups=(group(coordinator=3, generation=3),), brokers=down(2)), NOW + 2)
    assert [(e.election, e.old, e.new) for e in events] == [
        (Election.GROUP_COORDINATOR, 2, 3), (Election.GROUP_LEADER, A, A)]
    assert only(events, Election.GROUP_COORDINATOR).why == f"leader of {OFFSETS_TOPIC}-9 moved: broker 2 is gone"


def test_what_nobody_answered_for_is_carried_over() -> None:
    old = snapshot(2, 7, partitions=(partition(0, 1),))
    blind = snapshot(None, None, brokers=tuple(replace(broker(b), alive=None, reachable=False) for b in (1, 2, 3)),
                     partitions=None)
    known = remembered(old, blind)
    assert (known.controller_id, known.controller_epoch, known.partitions) == (2, 7, old.partitions)
    assert [(b.alive, b.reachable) for b in known.brokers] == [(True, False)] * 3


def test_changed_values_are_marked_and_the_log_is_bounded() -> None:
    watch = Watch(log_size=3)
    watch.observe(snapshot(1, 1, partitions=(partition(0, 1),)), NOW)
    for n in range(2, 7):
        watch.observe(snapshot(n, n, partitions=(partition(0, 1, isr=(1, 2)),)), NOW + n)
    assert [e.new for e in watch.log] == [4, 5, 6]
    assert watch.changed[("controller",)] == NOW + 6
    assert watch.changed[("partition", "orders", 0, "isr")] == NOW + 2
    watch.observe(snapshot(6, 6, partitions=(partition(0, 1, isr=(1, 2)), partition(1, 2))), NOW + 7)
    assert watch.changed[("partition", "orders", 1, "leader")] == NOW + 7  # a new partition is new to see
    assert ("partition", "orders", 0, "isr") in watch.changed
    watch.observe(snapshot(6, 6, partitions=(partition(0, 1, isr=(1, 2)), partition(1, 2))), NOW + 20)
    assert watch.changed == {}  # faded


def test_many_partition_elections_of_a_topic_are_one_line_and_hidden_internal_ones_too() -> None:
    events = [ElectionEvent(NOW, Election.PARTITION_LEADER, f"orders-{p}", 2, 1, 1, "leader 2 is gone")
              for p in range(FOLD_OVER + 1)]
    events += [ElectionEvent(NOW, Election.PARTITION_LEADER, f"{OFFSETS_TOPIC}-{p}", 2, p % 2 + 1, 1,
                             "leader 2 is gone") for p in range(4)]
    events += [ElectionEvent(NOW, Election.CONTROLLER, "cluster", 2, 1, 3, "controller 2 is gone")]
    folded = fold_partition_elections(events, lambda topic, p: topic != OFFSETS_TOPIC or p == 3)
    assert [(e.subject, e.old, e.new, e.why) for e in folded] == [
        (f"orders ({FOLD_OVER + 1} partitions)", "2", "1", "leader 2 is gone"),
        (f"{OFFSETS_TOPIC} (3 partitions not shown)", "2", "1,2", "leader 2 is gone"),
        (f"{OFFSETS_TOPIC}-3", 2, 2, "leader 2 is gone"),
        ("cluster", 2, 1, "controller 2 is gone"),
    ]


# -- the views ------------------------------------------------------------------------------------


def cluster_view() -> ClusterSnapshot:
    offsets = tuple(partition(p, p % 3 + 1, topic=OFFSETS_TOPIC) for p in range(10))
    return snapshot(
        3, 5, brokers=(broker(1), broker(2, reachable=False), broker(3)),
        partitions=(partition(0, 1), partition(1, 3, 2, isr=(3, 1)), *offsets),
        groups=(group(coordinator=1, generation=4, leader=B, members=(member(B, 0), member(A, 1)),
                      offsets_partition=9),),
        zookeeper=(ZooKeeperServerState("127.0.0.1:2181", "standalone", 0x300000012),),
    )


def test_status_lines_name_what_is_wrong() -> None:
    assert status_lines(cluster_view()) == ["broker 2 unreachable"]
    blind = snapshot(-1, 4, brokers=(broker(1), broker(2, alive=False)), partitions=None,
                     groups=(GroupState("billing", -1, None, None, error="no coordinator found"),))
    assert status_lines(blind) == ["no controller", "broker 2 unreachable, not registered",
                                   "partitions unknown: no broker answered Metadata",
                                   "group billing: no coordinator found"]
    assert status_lines(snapshot(partitions=(partition(0, -1),))) == ["1 partitions offline: orders-0"]


def test_json_snapshot() -> None:
    event = ElectionEvent(NOW, Election.CONTROLLER, "cluster", 1, 3, 5, "controller 1 is gone")
    data = snapshot_json(cluster_view(), events=[event])
    assert data["controller"] == {"id": 3, "epoch": 5}
    assert data["brokers"][1] == {"id": 2, "host": "127.0.0.1", "port": 9093, "broker_epoch": 102, "alive": True,
                                  "reachable": False, "controller": False,
                                  "metrics": {"leader_count": 1, "partition_count": 3,
                                              "under_replicated_partitions": 0, "offline_partitions_count": 0,
                                              "num_groups": 1}}
    assert [b["controller"] for b in data["brokers"]] == [False, False, True]
    assert [(p["topic"], p["partition"], p["leader"], p["isr"]) for p in data["partitions"]] == [
        ("orders", 0, 1, [1, 2, 3]), ("orders", 1, 3, [3, 1]), (OFFSETS_TOPIC, 9, 1, [1, 2, 3])]
    assert data["internal_partitions_folded"] == 9
    assert data["groups"] == [{
        "group": "billing", "coordinator": 1, "offsets_partition": 9, "state": "Stable", "protocol_type": "consumer",
        "assignor": "range", "generation": 4, "leader": B, "error": None, "stale": False,
        "members": [
            {"member_id": B, "client_id": "second", "host": "/127.0.0.1", "group_instance_id": None, "leader": True,
             "assignment": [["orders", 0]]},
            {"member_id": A, "client_id": "first", "host": "/127.0.0.1", "group_instance_id": None, "leader": False,
             "assignment": [["orders", 1]]},
        ],
    }]
    assert data["zookeeper"] == [{"server": "127.0.0.1:2181", "mode": "standalone", "epoch": 3, "zxid": "0x300000012",
                                  "error": None, "stale": False}]
    assert data["status"] == ["broker 2 unreachable"]
    assert data["events"] == [{"at": "2023-11-14T22:13:20.000Z", "election": "controller", "subject": "cluster",
                               "old": 1, "new": 3, "epoch": 5, "why": "controller 1 is gone"}]
    assert len(snapshot_json(cluster_view(), show_internal=True)["partitions"]) == 12
    none = snapshot_json(snapshot(-1, 2, partitions=(partition(0, -1),)))
    assert none["controller"] == {"id": None, "epoch": 2} and none["partitions"][0]["leader"] is None


def rendered(view: object) -> str:
    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(view)
    return console.export_text()


def test_text_view() -> None:
    event = ElectionEvent(NOW - 1, Election.PARTITION_LEADER, "orders-1", 2, 3, 2, "leader 2 is gone")
    text = rendered(render(cluster_view(), now=NOW, events=[event], interval_s=1.0))
    lines = [line.split() for line in text.splitlines()]
    assert "Controller: broker 3 (epoch 5)" in text
    assert "Status: broker 2 unreachable" in text
    assert ["2", "127.0.0.1:9093", "unreachable", "1", "3", "0", "1"] in lines
    assert ["3", "127.0.0.1:9094", "up", "*"] in [line[:4] for line in lines]
    assert ["127.0.0.1:2181", "standalone", "3"] in lines
    assert ["billing", "1", f"({OFFSETS_TOPIC}-9)", "Stable", "4", "second-3ce8844e", "second-3ce8844e", "*",
            "second", "orders:0"] in lines
    assert ["first-6c9e4c7f", "first", "orders:1"] in lines
    assert ["orders", "1", "3", "2", "1,2,3", "3,1", "-"] in lines
    assert f"{OFFSETS_TOPIC}: 9 partitions that coordinate no known group not shown" in text
    assert any(" ".join(line).endswith("partition leader orders-1 2 → 3 leader epoch 2 leader 2 is gone")
               for line in lines)
    once = rendered(render(cluster_view(), now=NOW))
    assert "Elections" not in once and "Controller: broker 3 (epoch 5)" in once


def test_fresh_changes_are_highlighted_then_fade() -> None:
    changed = {("controller",): NOW}

    def controller_style(now: float) -> str:
        console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
        console.print(render(snapshot(3, 5), now=now, changed=changed))
        return next(line for line in console.export_text(styles=True).splitlines() if "Controller" in line)

    assert "\x1b[1;7m" in controller_style(NOW + 1)  # bold, reversed
    assert "\x1b[1m" in controller_style(NOW + 5) and "7m" not in controller_style(NOW + 5)
    assert "\x1b[1" not in controller_style(NOW + 60).split("Controller: ")[1]


# -- the collector, against the fake cluster ------------------------------------------------------------


def test_collector_fills_a_snapshot_and_follows_a_leader_and_a_coordinator_move() -> None:
    fake = FakeCluster((1, 2))
    fake.create_topic("t", [1, 2])
    consumer = KafkaConsumer(fake.bootstrap, group_id="G", client_id="client-1", heartbeat_interval_ms=20,
                             session_timeout_ms=3000, retry_backoff_ms=10, enable_auto_commit=False)
    collector = SnapshotCollector(fake.bootstrap, timeout_s=2.0)
    try:
        consumer.subscribe(["t"])

        def stable() -> bool:
            consumer.poll(20)
            state = consumer.group_state()
            return state.state is MemberState.STABLE and state.generation_id == 1

        wait_for(stable, 5, "the member in generation 1")
        member_id = consumer.group_state().member_id
        first = collector.collect()
        # The fake has no DescribeCluster: who is alive comes from the metadata caches.
        assert (first.controller_id, first.cluster_id) == (None, "fake")
        assert [(b.broker_id, b.address, b.alive, b.reachable) for b in first.brokers] == [
            (1, fake.address(1), True, True), (2, fake.address(2), True, True)]
        assert [(p.name, p.leader) for p in first.partitions or ()] == [("t-0", 1), ("t-1", 2)]
        (group,) = first.groups
        assert (group.group_id, group.coordinator, group.state, group.generation, group.leader) == (
            "G", 1, "Stable", 1, member_id)
        assert [m.assignment for m in group.members] == [(TopicPartition("t", 0), TopicPartition("t", 1))]

        watch = Watch()
        watch.observe(first, NOW)
        fake.move_leader(("t", 0), 2)
        fake.move_coordinator("G", 2)
        events = watch.observe(collector.collect(), NOW + 1)
        assert [(e.election, e.subject, e.old, e.new) for e in events] == [
            (Election.PARTITION_LEADER, "t-0", 1, 2), (Election.GROUP_COORDINATOR, "G", 1, 2)]

        fake.stop_broker(1)
        blind = collector.collect()
        assert "broker 1 unreachable" in status_lines(blind)
        assert watch.observe(blind, NOW + 2) == []
        assert [g.coordinator for g in blind.groups] == [2]
    finally:
        collector.close()
        consumer.close(timeout_ms=500)
        fake.close()


# -- small parsers -----------------------------------------------------------------------------------


def test_srvr_answer_gives_the_mode_and_the_epoch() -> None:
    answer = ("Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\n"
              "Outstanding: 0\nZxid: 0x200000004\nMode: follower\nNode count: 5\n")
    assert parse_srvr(answer) == ("follower", 0x200000004)
    assert ZooKeeperServerState("zk", "follower", 0x200000004).epoch == 2
    assert parse_srvr("This ZooKeeper instance is not currently serving requests\n") == (None, None)


def test_zookeeper_connect_string() -> None:
    assert parse_zookeeper_connect("zk1:2181,zk2:2181/minikafka") == ["zk1:2181", "zk2:2181"]
    with pytest.raises(ValueError, match="ZooKeeper server 'zk1' is not HOST:PORT"):
        parse_zookeeper_connect("zk1")


def test_member_ids_are_shortened_to_the_uuids_first_digits() -> None:
    assert short_member_id(A) == "first-6c9e4c7f"
    assert short_member_id("consumer-billing-1-6c9e4c7f-2b64-4f89-bb30-4ccaf72fb8e7") == "consumer-billing-1-6c9e4c7f"
    assert short_member_id("not-a-uuid") == "not-a-uuid"


# -- the command line -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv, status, message", [
    (["--bootstrap-server", "nohost"], 2, "bootstrap server 'nohost' is not HOST:PORT"),
    (["--bootstrap-server", "h:1", "--interval", "0"], 2, "--interval and --timeout must be positive"),
    (["--bootstrap-server", "h:1", "--zookeeper", "zk"], 2, "ZooKeeper server 'zk' is not HOST:PORT"),
])
def test_bad_arguments_are_one_line_errors(capsys: pytest.CaptureFixture[str], argv: list[str], status: int,
                                           message: str) -> None:
    assert cli.main(["watch", *argv]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"minikafka: error: {message}\n"
