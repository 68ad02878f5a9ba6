"""A cluster whose brokers listen on SSL only, require client certificates, replicate over
mutual TLS and run the ACL authorizer: clients with a certificate of the cluster's CA produce
and consume as their ACLs allow; a plaintext client, a client without a certificate and one
with a stranger's certificate are refused at the listener, and a certified client's forged
controller request by the authorizer."""

from __future__ import annotations

import time

import grpc
import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, ClusterHarness

from broker.grpc_options import OPTIONS
from client import cli
from client.admin import AdminClient, AdminError
from client.cluster import KafkaError
from client.consumer import KafkaConsumer
from client.producer import KafkaProducer
from client.security import ClientSecurity, read_command_config
from client.tooling.certs import make_cluster_certs, principal
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

pytestmark = pytest.mark.live

ELECTION_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + 20
RECORDS = 30


def bootstrap(cluster: ClusterHarness) -> str:
    return ",".join(p.address for p in cluster.brokers.values() if p.running)


def read(cluster: ClusterHarness, security: ClientSecurity, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap(cluster), auto_offset_reset="earliest", security=security,
                             default_api_timeout_ms=20000)
    try:
        tp = (topic, 0)
        consumer.assign([tp])
        end = consumer.end_offsets([tp])[tp]
        values: list[bytes] = []

        def drained() -> bool:
            values.extend(r.value for r in consumer.poll(500))
            return consumer.position(tp) >= end

        wait_until(drained, 30, f"reading {topic} to its end over TLS")
        return values
    finally:
        consumer.close()


def test_a_tls_cluster_serves_certified_clients_and_refuses_the_rest(
        cluster: ClusterHarness, capsys: pytest.CaptureFixture[str]) -> None:
    certs = cluster.use_tls()
    alice = read_command_config(str(certs / "alice.properties"))
    bob = read_command_config(str(certs / "bob.properties"))
    cluster.start_brokers(1, 2, 3)
    controller = cluster.wait_for_controller()
    assert cluster.admin().create_topic("secret", 1, 3, {"min.insync.replicas": "2"}).error_code == 0
    # Alice may write and read the topic; bob only read it. The brokers follow the ACLs' change notifications.
    zookeeper = f"{cluster.zookeeper.connect}{cluster.chroot}"
    assert cli.main(["acls", "--zookeeper", zookeeper, "--add", "--allow-principal", principal("alice", "clients"),
                     "--operation", "Write", "--operation", "Read", "--topic", "secret"]) == 0
    assert cli.main(["acls", "--zookeeper", zookeeper, "--add", "--allow-principal", principal("bob", "clients"),
                     "--operation", "Read", "--topic", "secret"]) == 0
    for broker_id in (1, 2, 3):
        cluster.wait_for_log(broker_id, "Processing Acl change notification for Topic:LITERAL:secret")

    producer = KafkaProducer(bootstrap(cluster), acks="all", security=alice)
    try:
        for i in range(RECORDS):
            producer.send("secret", f"s{i}".encode())
        producer.flush(30)
    finally:
        producer.close()
    # acks=all with min.insync.replicas=2: the followers fetched over mutual TLS.
    assert read(cluster, alice, "secret") == [f"s{i}".encode() for i in range(RECORDS)]
    assert read(cluster, bob, "secret") == [f"s{i}".encode() for i in range(RECORDS)]
    refused_writer = KafkaProducer(bootstrap(cluster), acks=1, enable_idempotence=False, security=bob)
    try:
        with pytest.raises(KafkaError, match="TOPIC_AUTHORIZATION_FAILED"):
            refused_writer.send("secret", b"from bob").result(30)
    finally:
        refused_writer.close()
    # Reading a topic is not joining a group: bob needs Read on the group too.
    grouped = KafkaConsumer(bootstrap(cluster), group_id="audit", auto_offset_reset="earliest", security=bob,
                            default_api_timeout_ms=20000)
    try:
        grouped.subscribe(["secret"])
        deadline = time.monotonic() + 30
        with pytest.raises(KafkaError, match="GROUP_AUTHORIZATION_FAILED"):
            while time.monotonic() < deadline:
                grouped.poll(500)
    finally:
        grouped.close()
    # Through the brokers this time (CreateAcls), as admin; bob may not change ACLs himself.
    grant = ["acls", "--bootstrap-server", bootstrap(cluster), "--add", "--allow-principal",
             principal("bob", "clients"), "--operation", "Read", "--group", "audit"]
    assert cli.main([*grant, "--command-config", str(certs / "bob.properties")]) == 1
    assert "CLUSTER_AUTHORIZATION_FAILED" in capsys.readouterr().err
    assert cli.main([*grant, "--command-config", str(certs / "admin.properties")]) == 0
    listed = ["acls", "--bootstrap-server", bootstrap(cluster), "--command-config", str(certs / "admin.properties"),
              "--list"]
    capsys.readouterr()
    assert cli.main(listed) == 0
    out = capsys.readouterr().out
    assert "name=audit, patternType=LITERAL" in out and "name=secret, patternType=LITERAL" in out, out
    for broker_id in (1, 2, 3):
        cluster.wait_for_log(broker_id, "Processing Acl change notification for Group:LITERAL:audit")
    grouped = KafkaConsumer(bootstrap(cluster), group_id="audit", auto_offset_reset="earliest", security=bob,
                            default_api_timeout_ms=20000)
    try:
        grouped.subscribe(["secret"])
        values: list[bytes] = []
        wait_until(lambda: values.extend(r.value for r in grouped.poll(500)) or len(values) >= RECORDS, 60,
                   "bob reading secret in group audit")
        grouped.commit()
    finally:
        grouped.close()

    # A certificate gets a client past the listener, not past the authorizer: bob is no broker.
    with bob.channel(cluster.brokers[1].address, OPTIONS) as channel:
        forged = kafka_pb2_grpc.BrokerControlStub(channel).StopReplica(kafka_pb2.StopReplicaRequest(
            controller_id=controller.controller_id, controller_epoch=controller.epoch, broker_epoch=-1,
            partitions=[kafka_pb2.StopReplicaPartition(topic="secret", partition=0, delete_partition=True)],
        ), timeout=10)
    assert forged.error_code == Errors.CLUSTER_AUTHORIZATION_FAILED.code
    assert ("Principal = User:CN=bob,OU=clients,O=minikafka is Denied Operation = ClusterAction from host = "
            "127.0.0.1 on resource = Cluster:LITERAL:kafka-cluster for request = STOP_REPLICA") in cluster.log(1)
    log = cluster.log(1)
    assert "(SSL, SSL)" in log and "PLAINTEXT" not in "".join(
        line for line in log.splitlines() if "Awaiting socket connections" in line)

    # Refused at the listener: no TLS, TLS without a certificate, a certificate of another CA.
    stranger = make_cluster_certs(cluster.work_dir / "stranger", [], ["mallory"])
    refused = {
        "plaintext": ClientSecurity(),
        "no certificate": ClientSecurity.from_options("SSL", ssl_cafile=str(certs / "ca.pem")),
        "another CA": ClientSecurity.from_options("SSL", ssl_cafile=str(certs / "ca.pem"),
                                                  ssl_certfile=str(stranger.keystores["mallory"])),
    }
    for name, security in refused.items():
        with pytest.raises(AdminError, match="no bootstrap server answered"):
            AdminClient(bootstrap(cluster), timeout_s=3, security=security).metadata(["secret"])
        channel = security.channel(cluster.brokers[1].address, OPTIONS)
        with pytest.raises(grpc.RpcError) as refusal:
            kafka_pb2_grpc.BrokerControlStub(channel).StopReplica(kafka_pb2.StopReplicaRequest(
                controller_id=controller.controller_id, controller_epoch=999, broker_epoch=-1,
                partitions=[kafka_pb2.StopReplicaPartition(topic="secret", partition=0, delete_partition=True)],
            ), timeout=5)
        assert refusal.value.code() is grpc.StatusCode.UNAVAILABLE, name
        channel.close()

    # The controller fails over over mutual TLS too, and the data is all there.
    cluster.brokers[controller.controller_id].kill()
    cluster.wait_for_controller(timeout=ELECTION_WAIT_S, other_than=controller.controller_id)

    def re_elected() -> bool:
        partitions = cluster.admin().metadata(["secret"]).topics[0].partitions
        return bool(partitions) and partitions[0].leader not in (-1, controller.controller_id)

    wait_until(re_elected, ELECTION_WAIT_S, "a new leader of secret-0")
    assert read(cluster, alice, "secret") == [f"s{i}".encode() for i in range(RECORDS)]
