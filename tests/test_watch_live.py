"""`minikafka watch` against real brokers: one snapshot of the four elections' outcomes, and the
collector following a SIGKILLed controller through the elections it sets off."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, OFFSETS_PARTITIONS, ClusterHarness
from test_consumer_group_live import GroupConsumer, find_coordinator
from test_replication_live import bootstrap, create

from client.tooling.processes import free_port, wait_until
from client.watch.collector import SnapshotCollector
from client.watch.elections import Election, ElectionEvent, Watch
from client.watch.render import status_lines
from client.watch.snapshot import ClusterSnapshot
from minikafka_protocol.group import OFFSETS_TOPIC, partition_for

pytestmark = pytest.mark.live

# The dead broker's session, then the elections, a coordinator's load and the members' rejoin.
FAILOVER_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + 40


def minikafka(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_watch_once_shows_the_controller_brokers_partition_leaders_and_a_group_with_its_leader_and_assignment(
    group_brokers: ClusterHarness, consumers: list[GroupConsumer]
) -> None:
    cluster = group_brokers
    create(cluster, "orders", 3, 3)
    consumers.append(GroupConsumer(cluster, "billing", "orders", "first"))
    joined = wait_until(lambda: consumers[0].latest(), 60, "the member to join")
    coordinator = find_coordinator(cluster, "billing")
    controller = cluster.wait_for_controller()
    args = ("watch", "--bootstrap-server", cluster.brokers[1].address, "--zookeeper", cluster.zookeeper.connect,
            "--once")

    def stable() -> dict | None:
        result = minikafka(*args, "--output", "json")
        assert result.returncode == 0, result.stderr
        view = json.loads(result.stdout)
        groups = view["groups"]
        return view if groups and groups[0]["state"] == "Stable" and groups[0]["members"] else None

    view = wait_until(stable, 30, "the group described as stable")
    assert view["controller"] == {"id": controller.controller_id, "epoch": controller.epoch}
    assert [(b["id"], b["host"], b["port"], b["alive"], b["reachable"], b["controller"]) for b in view["brokers"]] == [
        (b, "127.0.0.1", cluster.brokers[b].port, True, True, b == controller.controller_id) for b in (1, 2, 3)]
    assert sum(b["metrics"]["num_groups"] for b in view["brokers"]) == 1
    orders = [p for p in view["partitions"] if p["topic"] == "orders"]
    assert [p["partition"] for p in orders] == [0, 1, 2]
    for p in orders:
        state = cluster.read_json(f"/brokers/topics/orders/partitions/{p['partition']}/state")
        assert (p["leader"], p["leader_epoch"]) == (state["leader"], state["leader_epoch"])
        assert sorted(p["replicas"]) == [1, 2, 3] and p["leader"] in p["isr"]
    offsets_partition = partition_for("billing", OFFSETS_PARTITIONS)
    # __consumer_offsets is folded to the partition that coordinates the group.
    assert [p["partition"] for p in view["partitions"] if p["topic"] == OFFSETS_TOPIC] == [offsets_partition]
    assert view["internal_partitions_folded"] == OFFSETS_PARTITIONS - 1
    (group,) = view["groups"]
    assert (group["group"], group["coordinator"], group["offsets_partition"]) == (
        "billing", coordinator, offsets_partition)
    assert (group["generation"], group["leader"]) == (joined.generation, joined.member_id)
    assert [(m["member_id"], m["client_id"], m["leader"], m["assignment"]) for m in group["members"]] == [
        (joined.member_id, "first", True, [["orders", 0], ["orders", 1], ["orders", 2]])]
    assert [(z["server"], z["mode"]) for z in view["zookeeper"]] == [(cluster.zookeeper.connect, "standalone")]
    assert view["status"] == []

    text = minikafka(*args)
    assert text.returncode == 0, text.stderr
    assert f"Controller: broker {controller.controller_id} (epoch {controller.epoch})" in text.stdout
    rows = [" ".join(line.split()) for line in text.stdout.splitlines()]
    assert any(row.startswith(f"billing {coordinator} ({OFFSETS_TOPIC}-{offsets_partition}) Stable "
                              f"{joined.generation}") for row in rows), text.stdout


def test_collector_across_a_sigkilled_controller_sees_the_controller_partition_leader_and_coordinator_elections(
    group_brokers: ClusterHarness, consumers: list[GroupConsumer]
) -> None:
    cluster = group_brokers
    victim = cluster.wait_for_controller().controller_id
    create(cluster, "orders", 3, 3)
    find_coordinator(cluster, "probe")  # creates __consumer_offsets
    collector = SnapshotCollector(bootstrap(cluster), timeout_s=2.0)
    watch = Watch()
    seen: list[ElectionEvent] = []
    statuses: list[str] = []

    def refresh() -> ClusterSnapshot:
        snapshot = collector.collect()
        statuses.extend(status_lines(snapshot))
        seen.extend(watch.observe(snapshot, time.time()))
        return watch.known or snapshot

    try:
        def offsets_leaders() -> dict[int, int] | None:
            partitions = refresh().partitions or ()
            leaders = {p.partition: p.leader for p in partitions if p.topic == OFFSETS_TOPIC}
            return leaders if len(leaders) == OFFSETS_PARTITIONS and min(leaders.values()) >= 0 else None

        leaders = wait_until(offsets_leaders, 30, f"every {OFFSETS_TOPIC} partition to have a leader")
        # A group the controller coordinates: one SIGKILL sets off all three elections.
        group = next(g for g in (f"billing-{n}" for n in range(1000))
                     if leaders[partition_for(g, OFFSETS_PARTITIONS)] == victim)
        consumers.append(GroupConsumer(cluster, group, "orders", "first"))

        def described() -> ClusterSnapshot | None:
            known = refresh()
            ours = [g for g in known.groups if g.group_id == group and g.state == "Stable" and not g.stale]
            return known if ours and ours[0].coordinator == victim and ours[0].members else None

        before = wait_until(described, 60, f"group {group} coordinated by broker {victim}")
        led = next(p for p in before.partitions or () if p.topic == "orders" and p.leader == victim)
        del seen[:]

        cluster.brokers[victim].kill()

        def elections() -> dict[Election, list[ElectionEvent]] | None:
            refresh()
            found: dict[Election, list[ElectionEvent]] = {}
            for e in seen:
                found.setdefault(e.election, []).append(e)
            wanted = (Election.CONTROLLER, Election.PARTITION_LEADER, Election.GROUP_COORDINATOR)
            moved = [e for e in found.get(Election.PARTITION_LEADER, []) if e.subject == led.name]
            return found if all(k in found for k in wanted) and moved else None

        found = wait_until(elections, FAILOVER_WAIT_S, "the controller, partition leader and coordinator elections",
                           interval=0.2)
    finally:
        collector.close()

    new_controller = cluster.wait_for_controller(other_than=victim)
    (controller,) = found[Election.CONTROLLER]
    assert (controller.old, controller.new, controller.epoch, controller.why) == (
        victim, new_controller.controller_id, new_controller.epoch, f"controller {victim} is gone")
    (leader,) = [e for e in found[Election.PARTITION_LEADER] if e.subject == led.name]
    state = cluster.read_json(f"/brokers/topics/orders/partitions/{led.partition}/state")
    assert (leader.old, leader.new, leader.epoch, leader.why) == (
        victim, state["leader"], state["leader_epoch"], f"leader {victim} is gone")
    (coordinator,) = found[Election.GROUP_COORDINATOR]
    offsets_partition = partition_for(group, OFFSETS_PARTITIONS)
    assert (coordinator.subject, coordinator.old, coordinator.why) == (
        group, victim, f"leader of {OFFSETS_TOPIC}-{offsets_partition} moved: broker {victim} is gone")
    assert coordinator.new == find_coordinator(cluster, group) != victim
    assert f"broker {victim} unreachable" in statuses  # while its registration lived on


def test_unreachable_bootstrap_server_is_a_one_line_error() -> None:
    dead = f"127.0.0.1:{free_port()}"
    result = minikafka("watch", "--bootstrap-server", dead, "--once", "--timeout", "2", timeout=30)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"minikafka: error: no bootstrap server answered within 2.0 s: {dead}: ")
    assert result.stderr.count("\n") == 1
