"""Topics and partition leader election by the controller, against real brokers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import grpc
import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, ClusterHarness

from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

pytestmark = pytest.mark.live

ELECTION_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + 20


def create(cluster: ClusterHarness, topic: str, partitions: int, replication: int, **configs: str) -> None:
    result = cluster.admin().create_topic(topic, partitions, replication, configs)
    assert result.error_code == 0, result.error_message


def partitions(cluster: ClusterHarness, topic: str, *via: int) -> dict[int, kafka_pb2.PartitionMetadata]:
    metadata = cluster.admin(*via).metadata([topic])
    assert metadata.topics[0].error_code == 0
    return {p.partition: p for p in metadata.topics[0].partitions}


def everywhere(cluster: ClusterHarness, topic: str, check: object, description: str, timeout: float = 30) -> None:
    """Wait until `check(partitions)` holds in the metadata cache of every live broker. A broker
    just restarted may not know the topic yet: that is not yet, not a failure."""
    live = [b for b, p in cluster.brokers.items() if p.running]

    def holds(broker_id: int) -> bool:
        metadata = cluster.admin(broker_id).metadata([topic])
        if metadata.topics[0].error_code != 0:
            return False
        return bool(check({p.partition: p for p in metadata.topics[0].partitions}))  # type: ignore[operator]

    wait_until(lambda: all(holds(b) for b in live), timeout, description)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client.cli", *args], capture_output=True, text=True, timeout=60)


def test_created_topic_gets_kafkas_znodes_and_its_first_leaders(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    cluster.wait_for_controller()
    # Every config the logs take is accepted at creation (the ones below were once refused).
    configs = {"unclean.leader.election.enable": "true", "segment.ms": "3600000", "index.interval.bytes": "1024",
               "segment.index.bytes": "4096", "file.delete.delay.ms": "1000"}
    create(cluster, "orders", 6, 3, **configs)

    data, _ = cluster.zk.get("/brokers/topics/orders")
    topic = json.loads(data)
    assert set(topic) == {"version", "partitions", "adding_replicas", "removing_replicas", "topic_id"}
    assert topic["version"] == 3 and len(topic["topic_id"]) == 22
    assert sorted(topic["partitions"]) == [str(p) for p in range(6)]
    for replicas in topic["partitions"].values():
        assert sorted(replicas) == [1, 2, 3]
    # Kafka's spread: each broker is the preferred replica of two partitions.
    assert sorted(r[0] for r in topic["partitions"].values()) == [1, 1, 2, 2, 3, 3]
    assert cluster.read_json("/config/topics/orders") == {"version": 1, "config": configs}
    for p, replicas in topic["partitions"].items():
        state = cluster.read_json(f"/brokers/topics/orders/partitions/{p}/state")
        assert state == {"version": 1, "leader": replicas[0], "leader_epoch": 0, "isr": replicas,
                         "controller_epoch": 1}
    everywhere(cluster, "orders", lambda ps: len(ps) == 6 and all(
        p.leader == topic["partitions"][str(n)][0] and list(p.isr) == topic["partitions"][str(n)]
        for n, p in ps.items()), "every broker to know the new topic")


def test_sigkilled_leader_is_replaced_from_the_isr_with_the_next_leader_epoch(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    controller = cluster.wait_for_controller().controller_id
    create(cluster, "payments", 3, 3)
    before = partitions(cluster, "payments")
    tp, victim = next((n, p.leader) for n, p in before.items() if p.leader != controller)

    cluster.brokers[victim].kill()
    everywhere(
        cluster, "payments",
        lambda ps: ps[tp].leader not in (victim, -1) and ps[tp].leader_epoch == before[tp].leader_epoch + 1,
        "a new leader with the next leader epoch in every live broker's cache", timeout=ELECTION_WAIT_S,
    )
    after = partitions(cluster, "payments")
    assert after[tp].leader in before[tp].isr
    assert after[tp].leader == next(r for r in before[tp].replicas if r != victim)  # assignment order
    assert victim not in after[tp].isr and list(after[tp].offline_replicas) == [victim]
    state = cluster.read_json(f"/brokers/topics/payments/partitions/{tp}/state")
    assert (state["leader"], state["leader_epoch"]) == (after[tp].leader, before[tp].leader_epoch + 1)
    assert all(p.leader != victim for p in after.values())
    # Each broker says in its state-change log when an UpdateMetadata reached its cache, as Kafka's do.
    for broker_id in {1, 2, 3} - {victim}:
        assert re.search(
            rf"\[Broker id={broker_id}\] Add \d+ partitions and deleted 0 partitions from metadata cache in "
            rf"response to UpdateMetadata request sent by controller {controller} epoch \d+",
            cluster.brokers[broker_id].log_text(),
        )


def take_partition_offline(cluster: ClusterHarness, topic: str, **configs: str) -> tuple[int, int, int, int]:
    """Brokers 1-3 and a topic of replication 2; one partition away from the controller loses
    its follower (the ISR shrinks to the leader) and then its leader (no replica is live).
    Returns (controller, partition, follower, leader): the leader is the last ISR member."""
    cluster.start_brokers(1, 2, 3)
    controller = cluster.wait_for_controller().controller_id
    create(cluster, topic, 3, 2, **configs)
    assignment = partitions(cluster, topic)
    tp = next(n for n, p in assignment.items() if controller not in p.replicas)
    leader, follower = assignment[tp].replicas
    cluster.brokers[follower].kill()
    everywhere(cluster, topic, lambda ps: list(ps[tp].isr) == [leader], "the ISR to shrink", ELECTION_WAIT_S)
    cluster.brokers[leader].kill()
    everywhere(cluster, topic, lambda ps: ps[tp].leader == -1, "the partition to go offline", ELECTION_WAIT_S)
    return controller, tp, follower, leader


def test_partition_without_live_replicas_goes_offline_until_one_returns(cluster: ClusterHarness) -> None:
    controller, tp, follower, leader = take_partition_offline(cluster, "audit")
    offline = partitions(cluster, "audit", controller)[tp]
    assert list(offline.isr) == [leader]  # the last ISR member is never removed
    described = run_cli("topics", "--bootstrap-server", cluster.brokers[controller].address, "--describe",
                        "--topic", "audit", "--unavailable-partitions")
    assert f"Partition: {tp}\tLeader: none\tReplicas: {leader},{follower}\tIsr: {leader}" in described.stdout

    cluster.start_broker(leader)
    everywhere(cluster, "audit", lambda ps: ps[tp].leader == leader, "the returning ISR member to lead", 30)


def test_unclean_election_picks_a_live_out_of_sync_replica_and_says_so(cluster: ClusterHarness) -> None:
    controller, tp, follower, leader = take_partition_offline(
        cluster, "metrics", **{"unclean.leader.election.enable": "true"}
    )
    cluster.start_broker(follower)  # out of sync: not in the ISR
    everywhere(cluster, "metrics", lambda ps: ps[tp].leader == follower, "the unclean election", 30)
    assert list(partitions(cluster, "metrics", controller)[tp].isr) == [follower]
    log = cluster.wait_for_log(controller, f"Unclean leader election for partition metrics-{tp}")
    assert f"broker {follower} was not in the ISR [{leader}]; records acknowledged by the old ISR may be lost" in log


def test_clean_election_only_by_default_leaves_the_partition_offline(cluster: ClusterHarness) -> None:
    controller, tp, follower, _ = take_partition_offline(cluster, "ledger")
    refusal = f"No replica of partition ledger-{tp} can lead"
    refusals = cluster.log(controller).count(refusal)
    cluster.start_broker(follower)
    epoch = cluster.wait_registered(follower)
    cluster.wait_for_log(controller, f"Broker {follower} registered with broker epoch {epoch}")
    wait_until(lambda: cluster.log(controller).count(refusal) > refusals, 30, "the controller to refuse again")
    assert "(unclean.leader.election.enable=false)" in cluster.log(controller)
    assert partitions(cluster, "ledger", controller)[tp].leader == -1


def test_sigterm_moves_leadership_away_before_the_broker_stops(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3, **{"controlled.shutdown.retry.backoff.ms": "200"})
    controller = cluster.wait_for_controller().controller_id
    create(cluster, "events", 12, 3)
    victim = next(b for b in (1, 2, 3) if b != controller)
    led = [n for n, p in partitions(cluster, "events").items() if p.leader == victim]
    assert led

    samples: list[dict[int, int]] = []
    stop = threading.Event()
    channel = grpc.insecure_channel(cluster.brokers[controller].address)
    stub = kafka_pb2_grpc.AdminStub(channel)

    def sample() -> None:
        while not stop.is_set():
            metadata = stub.Metadata(kafka_pb2.MetadataRequest(topics=["events"]), timeout=5)
            samples.append({p.partition: p.leader for p in metadata.topics[0].partitions})

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        wait_until(lambda: len(samples) > 3, 10, "the sampler to start")
        assert cluster.brokers[victim].terminate() == 0
    finally:
        stop.set()
        sampler.join()
        channel.close()
    assert len(samples) > 10
    assert all(leaders[n] != -1 for leaders in samples for n in led), "a partition had no leader"
    final = partitions(cluster, "events", controller)
    assert all(p.leader not in (victim, -1) for p in final.values())
    assert "Controlled shutdown request returned successfully" in cluster.log(victim)


def displace_preferred_leader(cluster: ClusterHarness, topic: str, **overrides: str) -> tuple[int, int, int]:
    """Brokers 1-3 and a topic; one partition's preferred leader (not the controller) is killed,
    loses its leadership, and is started again. Returns (controller, partition, preferred)."""
    cluster.start_brokers(1, 2, 3, **overrides)
    controller = cluster.wait_for_controller().controller_id
    create(cluster, topic, 3, 3)
    tp, preferred = next((n, p.replicas[0]) for n, p in partitions(cluster, topic).items()
                         if p.replicas[0] != controller)
    cluster.brokers[preferred].kill()
    everywhere(cluster, topic, lambda ps: ps[tp].leader != preferred, "the leadership to move", ELECTION_WAIT_S)
    cluster.start_broker(preferred)
    return controller, tp, preferred


def test_preferred_election_gives_a_returning_preferred_replica_its_leadership_back(cluster: ClusterHarness) -> None:
    no_rebalance = {"auto.leader.rebalance.enable": "false"}
    controller, tp, preferred = displace_preferred_leader(cluster, "clicks", **no_rebalance)
    everywhere(cluster, "clicks", lambda ps: preferred in ps[tp].isr, "the preferred replica back in the ISR")
    assert partitions(cluster, "clicks")[tp].leader != preferred

    result = run_cli("leader-election", "--bootstrap-server", cluster.brokers[controller].address,
                     "--preferred", "--topic", "clicks", "--partition", str(tp))
    assert result.returncode == 0, result.stderr
    assert f"Successfully completed leader election (PREFERRED) for partitions clicks-{tp}" in result.stdout
    everywhere(cluster, "clicks", lambda ps: ps[tp].leader == preferred, "the preferred leader to lead again")
    again = run_cli("leader-election", "--bootstrap-server", cluster.brokers[controller].address,
                    "--preferred", "--topic", "clicks", "--partition", str(tp))
    assert f"Valid replica already elected for partitions clicks-{tp}" in again.stdout


def test_automatic_preferred_election_rebalances_leadership(cluster: ClusterHarness) -> None:
    controller, tp, preferred = displace_preferred_leader(
        cluster, "views", **{"leader.imbalance.check.interval.seconds": "1"}
    )
    everywhere(cluster, "views", lambda ps: ps[tp].leader == preferred, "the automatic rebalance", 30)
    assert "Starting automatic preferred replica leader election" in cluster.log(controller)


def test_new_controller_finishes_a_mass_reelection_the_old_one_was_killed_in(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    controller = cluster.wait_for_controller().controller_id
    create(cluster, "bulk", 300, 3)
    victim = next(b for b in (1, 2, 3) if b != controller)
    survivor = ({1, 2, 3} - {victim, controller}).pop()

    cluster.brokers[victim].kill()
    wait_until(lambda: victim not in cluster.registered_ids(), ELECTION_WAIT_S, "the victim's session to expire")
    cluster.brokers[controller].kill()  # in the middle of (or right after) re-electing a hundred partitions
    new = cluster.wait_for_controller(timeout=ELECTION_WAIT_S, other_than=controller)
    assert new.controller_id == survivor
    everywhere(cluster, "bulk", lambda ps: all(p.leader == survivor for p in ps.values()),
               "the survivor to lead every partition", 60)
    for n in (0, 150, 299):
        state = cluster.read_json(f"/brokers/topics/bulk/partitions/{n}/state")
        assert state["leader"] == survivor


def test_stale_controller_epoch_and_stale_leader_epoch_are_refused(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    old = cluster.wait_for_controller()
    create(cluster, "ticks", 1, 3)
    cluster.brokers[old.controller_id].kill()
    new = cluster.wait_for_controller(timeout=ELECTION_WAIT_S, other_than=old.controller_id)
    target = next(b for b in (1, 2, 3) if b not in (old.controller_id,))
    everywhere(cluster, "ticks", lambda ps: ps[0].leader not in (-1, old.controller_id), "the re-election")
    current = partitions(cluster, "ticks", target)[0]

    def leader_and_isr(controller_id: int, controller_epoch: int, leader_epoch: int) -> kafka_pb2.LeaderAndIsrResponse:
        with grpc.insecure_channel(cluster.brokers[target].address) as channel:
            return kafka_pb2_grpc.BrokerControlStub(channel).LeaderAndIsr(
                kafka_pb2.LeaderAndIsrRequest(
                    controller_id=controller_id, controller_epoch=controller_epoch, broker_epoch=-1,
                    partition_states=[kafka_pb2.PartitionState(
                        topic="ticks", partition=0, controller_epoch=controller_epoch, leader=target,
                        leader_epoch=leader_epoch, isr=[target], zk_version=0, replicas=list(current.replicas),
                    )],
                ),
                timeout=10,
            )

    stale = leader_and_isr(old.controller_id, old.epoch, current.leader_epoch + 5)
    assert stale.error_code == Errors.STALE_CONTROLLER_EPOCH.code
    assert f"since it is older than the latest known controller epoch {new.epoch}" in cluster.log(target)
    not_newer = leader_and_isr(new.controller_id, new.epoch, current.leader_epoch)
    assert not_newer.error_code == 0
    assert [e.error_code for e in not_newer.partition_errors] == [Errors.STALE_CONTROLLER_EPOCH.code]
    assert partitions(cluster, "ticks", target)[0].leader == current.leader


def test_bad_topic_requests_get_kafkas_errors(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2)
    controller = cluster.wait_for_controller().controller_id
    bootstrap = cluster.brokers[controller].address
    create(cluster, "exists", 1, 1)
    cases = [
        (["--create", "--topic", "exists"], "TOPIC_ALREADY_EXISTS: Topic 'exists' already exists."),
        (["--create", "--topic", "x", "--partitions", "0"], "INVALID_PARTITIONS"),
        (["--create", "--topic", "x", "--replication-factor", "3"],
         "INVALID_REPLICATION_FACTOR: Replication factor: 3 larger than available brokers: 2."),
        (["--create", "--topic", ".."], "INVALID_TOPIC_EXCEPTION"),
        (["--create", "--topic", "a" * 250], "INVALID_TOPIC_EXCEPTION"),
        (["--create", "--topic", "x", "--config", "no.such=1"], "INVALID_CONFIG: Unknown topic config name: no.such"),
        (["--create", "--topic", "x", "--config", "segment.bytes=20"],
         "INVALID_CONFIG: Invalid value 20 for configuration segment.bytes: Value must be at least 61"),
        (["--describe", "--topic", "missing"], "Topic 'missing' does not exist"),
        (["--delete", "--topic", "missing"], "UNKNOWN_TOPIC_OR_PARTITION"),
    ]
    for args, message in cases:
        result = run_cli("topics", "--bootstrap-server", bootstrap, *args)
        assert result.returncode == 1, (args, result.stdout)
        assert result.stderr.startswith("minikafka: error: ") and message in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1
    unknown = run_cli("leader-election", "--bootstrap-server", bootstrap, "--preferred", "--topic", "exists",
                      "--partition", "7")
    assert unknown.returncode == 1
    assert "Election for partition exists-7 failed: UNKNOWN_TOPIC_OR_PARTITION" in unknown.stderr


def test_deleted_topic_leaves_zookeeper_and_every_cache(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    cluster.wait_for_controller()
    create(cluster, "temp", 4, 2)
    result = run_cli("topics", "--bootstrap-server", cluster.brokers[1].address, "--delete", "--topic", "temp")
    assert result.returncode == 0, result.stderr
    assert cluster.zk.exists("/brokers/topics/temp") is None
    assert cluster.zk.exists("/config/topics/temp") is None
    assert cluster.zk.exists("/admin/delete_topics/temp") is None
    for b in (1, 2, 3):
        wait_until(lambda b=b: cluster.admin(b).metadata(["temp"]).topics[0].error_code == 3, 10,
                   f"broker {b} to forget the topic")


def test_preferred_election_asked_for_in_zookeeper_runs_and_the_request_is_removed(cluster: ClusterHarness) -> None:
    _, tp, preferred = displace_preferred_leader(cluster, "zkasked", **{"auto.leader.rebalance.enable": "false"})
    everywhere(cluster, "zkasked", lambda ps: preferred in ps[tp].isr, "the preferred replica back in the ISR")

    cluster.zk.create(
        "/admin/preferred_replica_election",
        json.dumps({"version": 1, "partitions": [{"topic": "zkasked", "partition": tp}]}).encode(),
    )
    everywhere(cluster, "zkasked", lambda ps: ps[tp].leader == preferred, "the preferred leader to lead again")
    wait_until(lambda: cluster.zk.exists("/admin/preferred_replica_election") is None, 10,
               "the controller to remove the request")
