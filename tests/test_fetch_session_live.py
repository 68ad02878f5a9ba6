"""Replication in incremental fetch sessions (KIP-227) against real brokers: idle followers stay in
the ISR for longer than replica.lag.time.max.ms while their fetches name nothing, and partitions
that change leader move between sessions and keep replicating."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, ClusterHarness

from broker.grpc_options import OPTIONS
from client.producer import KafkaProducer
from client.tooling.processes import wait_until
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

pytestmark = pytest.mark.live

LAG_MS = 1500
PARTITIONS = 12
ELECTION_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + 20
BROKER_CONFIG = {"replica.lag.time.max.ms": str(LAG_MS), "auto.leader.rebalance.enable": "false"}


def metrics(cluster: ClusterHarness, broker_id: int) -> kafka_pb2.BrokerMetricsResponse:
    with grpc.insecure_channel(cluster.brokers[broker_id].address, options=OPTIONS) as channel:
        return kafka_pb2_grpc.AdminStub(channel).BrokerMetrics(kafka_pb2.BrokerMetricsRequest(), timeout=10)


def zk_isrs(cluster: ClusterHarness, topic: str) -> dict[int, list[int]]:
    return {p: cluster.read_json(f"/brokers/topics/{topic}/partitions/{p}/state")["isr"] for p in range(PARTITIONS)}


def write_one_record_per_partition(cluster: ClusterHarness, topic: str, tag: str) -> None:
    """acks=all with min.insync.replicas=3: acknowledged only once every replica has the record."""
    producer = KafkaProducer(",".join(b.address for b in cluster.brokers.values() if b.running), acks="all",
                             request_timeout_ms=10000, delivery_timeout_ms=60000)
    try:
        futures = [producer.send(topic, f"{tag}-{p}".encode(), partition=p) for p in range(PARTITIONS)]
        producer.flush(60)
        failed = [str(f.exception()) for f in futures if f.exception() is not None]
        assert not failed, failed[:3]
    finally:
        producer.close(10)


def fully_replicated(cluster: ClusterHarness, topic: str) -> bool:
    """Every leader's view: each follower's log ends where the leader's does, the high watermark too."""
    admin = cluster.admin(*[b for b, p in cluster.brokers.items() if p.running])
    states = admin.replica_states(admin.metadata([topic]))
    if len(states) != PARTITIONS:
        return False
    for state in states.values():
        ends = {r.log_end_offset for r in state.replicas}
        if len(state.replicas) != 3 or len(ends) != 1 or state.high_watermark not in ends:
            return False
    return True


def holds_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Check `condition` again and again for `seconds`: it must never fail."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert condition(), f"{what} stopped holding"
        time.sleep(0.2)


def in_sync(cluster: ClusterHarness, topic: str, brokers: tuple[int, ...]) -> bool:
    """Every ISR is `brokers` in ZooKeeper; with all three, no leader counts a partition under-replicated."""
    if any(sorted(isr) != sorted(brokers) for isr in zk_isrs(cluster, topic).values()):
        return False
    return len(brokers) < 3 or all(metrics(cluster, b).under_replicated_partitions == 0 for b in brokers)


def three_brokers_and_a_replicated_topic(cluster: ClusterHarness, topic: str, min_insync_replicas: int) -> None:
    """Brokers 1-3 and `topic` (replication 3) with a first record in every partition on every replica."""
    cluster.start_brokers(1, 2, 3, **BROKER_CONFIG)
    cluster.wait_for_controller()
    result = cluster.admin().create_topic(topic, PARTITIONS, 3, {"min.insync.replicas": str(min_insync_replicas)})
    assert result.error_code == 0, result.error_message
    write_one_record_per_partition(cluster, topic, "first")
    wait_until(lambda: fully_replicated(cluster, topic), 30, "the first records on every replica")


def test_idle_followers_stay_in_the_isr_past_the_lag_time_while_their_fetches_name_nothing(
    cluster: ClusterHarness,
) -> None:
    three_brokers_and_a_replicated_topic(cluster, "idle", min_insync_replicas=3)
    # Each broker leads some partitions and is fetched by the two others, each in its session.
    wait_until(lambda: all(metrics(cluster, b).incremental_fetch_sessions == 2 for b in (1, 2, 3)), 30,
               "two fetch sessions at every leader")
    before = {b: metrics(cluster, b).incremental_fetches for b in (1, 2, 3)}

    holds_for(lambda: in_sync(cluster, "idle", (1, 2, 3)), 3 * LAG_MS / 1000, "a full ISR while idle")

    for b in (1, 2, 3):
        after = metrics(cluster, b)
        assert after.isr_shrinks == 0, f"broker {b} shrank an ISR"
        # Idle fetches come back after replica.fetch.wait.max.ms (500 ms): two sessions, 4.5 s.
        assert after.incremental_fetches - before[b] >= 8, f"broker {b} answered few incremental fetches"
        assert after.incremental_fetch_partitions_cached == 2 * after.leader_count
    write_one_record_per_partition(cluster, "idle", "after")
    wait_until(lambda: fully_replicated(cluster, "idle"), 30, "the new records on every replica")


def test_partitions_that_change_leader_move_between_fetch_sessions_and_keep_replicating(
    cluster: ClusterHarness,
) -> None:
    three_brokers_and_a_replicated_topic(cluster, "moving", min_insync_replicas=2)

    # A leader goes: its partitions join the survivors' sessions with each other.
    cluster.brokers[3].kill()
    wait_until(lambda: in_sync(cluster, "moving", (1, 2)), ELECTION_WAIT_S, "the survivors alone in every ISR")
    write_one_record_per_partition(cluster, "moving", "second")
    wait_until(lambda: cluster.zk.exists("/brokers/ids/3") is None, ELECTION_WAIT_S, "broker 3's old registration")
    cluster.start_broker(3)
    wait_until(lambda: in_sync(cluster, "moving", (1, 2, 3)), 60, "broker 3 back in every ISR")
    # And comes back as preferred leader: its partitions leave the survivors' sessions with each other.
    elected = cluster.admin().elect_preferred_leaders(None)
    assert elected.error_code == 0, elected.error_message
    holds_for(lambda: in_sync(cluster, "moving", (1, 2, 3)), 2 * LAG_MS / 1000, "a full ISR after the moves")
    assert sorted(metrics(cluster, b).leader_count for b in (1, 2, 3)) == [4, 4, 4]
    write_one_record_per_partition(cluster, "moving", "third")
    wait_until(lambda: fully_replicated(cluster, "moving"), 30, "every record on every replica")
