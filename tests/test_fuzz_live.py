"""Hostile input harms nothing: a broker on a secured listener (TLS, the ACL authorizer) is sent
randomized and malformed requests on every RPC by a certified client with ACLs on the `fuzz`
topics and groups only. Each must be answered (never a gRPC error, a crash or a hang), the
broker keeps serving, and the acknowledged records of a topic the fuzzer may not touch are all
there afterwards. `bench/fuzz.py` runs the same for longer."""

from __future__ import annotations

import os

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import ClusterHarness

from broker.grpc_options import OPTIONS
from client import cli
from client.consumer import KafkaConsumer
from client.producer import KafkaProducer
from client.security import read_command_config
from client.tooling import fuzz
from client.tooling.certs import principal
from client.tooling.processes import wait_until

pytestmark = pytest.mark.live

REQUESTS = int(os.environ.get("MINIKAFKA_FUZZ_REQUESTS", "2000"))
KEPT = 100
CALL_TIMEOUT_S = 20  # fuzzed waits stay under a second: an answer later than this is a hang


# The harness's kazoo client jitters its retries with `random` on a thread of its own while
# hypothesis draws, which hypothesis takes for a strategy using `random`.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_every_rpc_answers_hostile_requests_and_no_acknowledged_record_is_lost(cluster: ClusterHarness) -> None:
    certs = cluster.use_tls()
    cluster.start_brokers(1, **{"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"})
    cluster.wait_for_controller()
    broker = cluster.brokers[1]
    zookeeper = f"{cluster.zookeeper.connect}{cluster.chroot}"
    for kind in ("--topic", "--group"):
        assert cli.main(["acls", "--zookeeper", zookeeper, "--add", "--allow-principal", principal("alice", "clients"),
                         "--resource-pattern-type", "prefixed", kind, "fuzz"]) == 0
    cluster.wait_for_log(1, "Processing Acl change notification for Group:PREFIXED:fuzz")
    assert cluster.admin().create_topic("kept", 1, 1, {}).error_code == 0
    assert cluster.admin().create_topic("fuzz-0", 2, 1, {}).error_code == 0
    producer = KafkaProducer(broker.address, acks="all", security=cluster.security)
    try:
        acked = [producer.send("kept", f"k{i}".encode()) for i in range(KEPT)]
        producer.flush(30)
        assert all(f.exception() is None for f in acked)
    finally:
        producer.close()

    channel = read_command_config(str(certs / "alice.properties")).channel(broker.address, OPTIONS)
    fuzzed = fuzz.run(channel, REQUESTS, CALL_TIMEOUT_S)
    channel.close()
    assert not fuzzed.failures, f"{len(fuzzed.failures)} of {fuzzed.sent} requests failed:\n" + "\n".join(
        fuzzed.failures[:20])
    assert fuzzed.sent == REQUESTS and broker.running
    with cluster.security.channel(broker.address, OPTIONS) as admin_channel:
        health = health_pb2_grpc.HealthStub(admin_channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert "Traceback" not in cluster.log(1)

    consumer = KafkaConsumer(broker.address, auto_offset_reset="earliest", security=cluster.security)
    try:
        consumer.assign([("kept", 0)])
        values: list[bytes] = []

        def read_all() -> bool:
            values.extend(r.value for r in consumer.poll(500))
            return len(values) >= KEPT

        wait_until(read_all, 30, "every acknowledged record of 'kept'")
        assert values == [f"k{i}".encode() for i in range(KEPT)]
    finally:
        consumer.close()
