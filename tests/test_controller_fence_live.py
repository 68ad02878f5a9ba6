"""Forged controller requests against a plaintext cluster of real brokers: a made-up controller
epoch deletes nothing and cannot take the cluster from its real controller, which keeps creating
topics and failing over."""

from __future__ import annotations

import grpc
import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, ClusterHarness

from broker.grpc_options import OPTIONS
from client.producer import KafkaProducer
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

pytestmark = pytest.mark.live

ELECTION_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + 20
RECORDS = 50


def control(cluster: ClusterHarness, broker_id: int) -> kafka_pb2_grpc.BrokerControlStub:
    return kafka_pb2_grpc.BrokerControlStub(grpc.insecure_channel(cluster.brokers[broker_id].address,
                                                                  options=OPTIONS))


def replica_ends(cluster: ClusterHarness, topic: str) -> dict[int, int]:
    """Each replica's log end offset, as the partition's leader sees them."""
    metadata = cluster.admin().metadata([topic])
    leader = metadata.topics[0].partitions[0].leader
    stub = kafka_pb2_grpc.DataStub(grpc.insecure_channel(cluster.brokers[leader].address, options=OPTIONS))
    described = stub.DescribeReplicas(kafka_pb2.DescribeReplicasRequest(
        partitions=[kafka_pb2.TopicPartition(topic=topic, partition=0)]), timeout=10)
    return {r.broker_id: r.log_end_offset for r in described.partitions[0].replicas}


def test_forged_controller_epochs_are_refused_and_the_real_controller_keeps_the_cluster(
    cluster: ClusterHarness,
) -> None:
    cluster.start_brokers(1, 2, 3)
    controller = cluster.wait_for_controller()
    assert cluster.admin().create_topic("victim", 1, 3, {}).error_code == 0
    producer = KafkaProducer(",".join(p.address for p in cluster.brokers.values()), acks="all")
    try:
        for i in range(RECORDS):
            producer.send("victim", f"v{i}".encode())
        producer.flush(30)
    finally:
        producer.close()
    wait_until(lambda: replica_ends(cluster, "victim") == {1: RECORDS, 2: RECORDS, 3: RECORDS}, 30,
               "every replica to have every record")

    # The two attacks: a StopReplica that deletes, and an empty UpdateMetadata, at epoch 999, to every broker;
    # then the same at the real epoch from a broker that is not the controller.
    impostor = next(b for b in (1, 2, 3) if b != controller.controller_id)
    forged = [
        (999, controller.controller_id), (controller.epoch, impostor),
    ]
    for broker_id in (1, 2, 3):
        stub = control(cluster, broker_id)
        for epoch, sender in forged:
            stopped = stub.StopReplica(kafka_pb2.StopReplicaRequest(
                controller_id=sender, controller_epoch=epoch, broker_epoch=-1,
                partitions=[kafka_pb2.StopReplicaPartition(topic="victim", partition=0, leader_epoch=-2,
                                                           delete_partition=True)],
            ), timeout=30)
            emptied = stub.UpdateMetadata(kafka_pb2.UpdateMetadataRequest(
                controller_id=sender, controller_epoch=epoch, broker_epoch=-1), timeout=30)
            assert (stopped.error_code, emptied.error_code) == (Errors.STALE_CONTROLLER_EPOCH.code,) * 2
        log = cluster.log(broker_id)
        assert f"Refusing StopReplica request from /127.0.0.1 claiming controller {controller.controller_id} " \
               f"epoch 999: ZooKeeper names controller {controller.controller_id} epoch {controller.epoch}" in log
        assert f"Refusing UpdateMetadata request from /127.0.0.1 claiming controller {impostor} " \
               f"epoch {controller.epoch}" in log

    assert replica_ends(cluster, "victim") == {1: RECORDS, 2: RECORDS, 3: RECORDS}
    # The real controller still runs the cluster: a topic is created and led, then it fails over.
    assert cluster.admin().create_topic("after", 3, 3, {}).error_code == 0

    def led_everywhere(topic: str, dead: int | None = None) -> bool:
        for broker_id, process in cluster.brokers.items():
            if not process.running:
                continue
            partitions = cluster.admin(broker_id).metadata([topic]).topics[0].partitions
            if not partitions or any(p.leader in (-1, dead) for p in partitions):
                return False
        return True

    wait_until(lambda: led_everywhere("after"), 30, "every broker to know the new topic's leaders")
    cluster.brokers[controller.controller_id].kill()
    successor = cluster.wait_for_controller(timeout=ELECTION_WAIT_S, other_than=controller.controller_id)
    assert successor.epoch == controller.epoch + 1
    wait_until(lambda: led_everywhere("victim", controller.controller_id) and
               led_everywhere("after", controller.controller_id), ELECTION_WAIT_S, "the failover's elections")
    for broker_id in cluster.brokers:
        if cluster.brokers[broker_id].running:
            assert f"Confirmed controller {successor.controller_id} epoch {successor.epoch} in ZooKeeper" \
                in cluster.log(broker_id)
