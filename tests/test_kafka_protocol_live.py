"""Kafka's own clients against the Kafka-protocol listener of real brokers: kafka-python
bootstraps through ApiVersions (its first ask, v4, is answered UNSUPPORTED_VERSION in the v0
layout with our ranges) and reads the cluster through Metadata on that listener."""

from __future__ import annotations

import socket
import struct

import pytest
from harness import ClusterHarness
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from client.tooling.processes import wait_until

pytestmark = pytest.mark.live


def kafka_cluster(cluster: ClusterHarness, *broker_ids: int) -> str:
    """Brokers with a Kafka-protocol listener each; their bootstrap servers."""
    for broker_id in broker_ids:
        cluster.start_broker(broker_id, kafka_protocol=True)
    cluster.wait_for_controller()
    return ",".join(str(cluster.brokers[b].kafka_address) for b in broker_ids)


def test_kafka_python_bootstraps_and_sees_the_brokers_and_topics_on_the_kafka_listener(
        cluster: ClusterHarness) -> None:
    bootstrap = kafka_cluster(cluster, 1, 2)
    assert cluster.admin().create_topic("seen", 3, 2, {}).error_code == 0
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        described = admin.describe_cluster()
        # Each broker as it is reached on this listener, not on its gRPC one.
        assert sorted((b["broker_id"], b["port"]) for b in described["brokers"]) == [
            (b, cluster.brokers[b].kafka_port) for b in (1, 2)]
        assert described["controller_id"] in (1, 2)
        assert "seen" in admin.list_topics()
        (topic,) = wait_until(lambda: [t for t in admin.describe_topics(["seen"])
                                       if all(p["leader_id"] in (1, 2) for p in t["partitions"])], 30,
                              "every partition of seen led")
        assert topic["error_code"] == 0
        assert sorted(p["partition_index"] for p in topic["partitions"]) == [0, 1, 2]
        assert all(sorted(p["replica_nodes"]) == [1, 2] for p in topic["partitions"])
    finally:
        admin.close()


def raw_request(address: str, frame: bytes) -> bytes:
    """One frame sent on a fresh connection; what comes back before the broker closes or answers."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = s.recv(4)
        if len(size) < 4:
            return b""
        (length,) = struct.unpack(">i", size)
        body = b""
        while len(body) < length:
            chunk = s.recv(length - len(body))
            if not chunk:
                break
            body += chunk
        return body


def test_api_versions_at_an_unknown_version_is_answered_in_the_v0_layout(cluster: ClusterHarness) -> None:
    bootstrap = kafka_cluster(cluster, 1)
    # ApiVersions v99, correlation id 7, client id "x".
    body = raw_request(bootstrap, struct.pack(">hhih", 18, 99, 7, 1) + b"x")
    correlation_id, error_code = struct.unpack_from(">ih", body)
    assert (correlation_id, error_code) == (7, 35)
    (count,) = struct.unpack_from(">i", body, 6)
    ranges = {struct.unpack_from(">hhh", body, 10 + 6 * i) for i in range(count)}
    assert (18, 0, 3) in ranges


def test_garbage_and_unknown_apis_close_the_connection_and_the_broker_goes_on(cluster: ClusterHarness) -> None:
    bootstrap = kafka_cluster(cluster, 1)
    assert raw_request(bootstrap, b"\x01") == b""
    assert raw_request(bootstrap, struct.pack(">hhih", 9999, 0, 1, -1)) == b""
    assert raw_request(bootstrap, struct.pack(">hhih", 3, 12, 1, -1) + b"\xff" * 3) == b""
    assert cluster.brokers[1].running
    body = raw_request(bootstrap, struct.pack(">hhih", 18, 99, 8, -1))
    assert struct.unpack_from(">ih", body) == (8, 35)


def test_kafka_python_produces_idempotently_with_acks_all_and_reads_it_all_back(cluster: ClusterHarness) -> None:
    bootstrap = kafka_cluster(cluster, 1, 2)
    assert cluster.admin().create_topic("orders", 3, 2, {}).error_code == 0
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    try:
        sent = [producer.send("orders", key=f"k{i % 7}".encode(), value=f"v{i}".encode()) for i in range(300)]
        producer.flush(30)
        written = [future.get(30) for future in sent]
    finally:
        producer.close()
    assert {w.partition for w in written} == {0, 1, 2}

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=15000)
    try:
        partitions = [TopicPartition("orders", p) for p in range(3)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        read: list[tuple[int, int, bytes]] = []
        for record in consumer:
            read.append((record.partition, record.offset, record.value))
            if len(read) == 300:
                break
        ends = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    assert sorted(v for _, _, v in read) == sorted(f"v{i}".encode() for i in range(300))
    # Each record where the producer was told it is, once.
    assert sorted((p, o) for p, o, _ in read) == sorted((w.partition, w.offset) for w in written)
    assert sum(ends.values()) == 300
