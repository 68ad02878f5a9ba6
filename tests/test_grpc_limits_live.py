"""A listener's limits on a real broker: a request above socket.request.max.bytes, and requests
beyond queued.max.requests at once, are refused with RESOURCE_EXHAUSTED, and the broker goes on
serving."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from harness import ClusterHarness

from broker.grpc_options import OPTIONS
from client.tooling.processes import wait_until
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

pytestmark = pytest.mark.live

PARKED_MS = 20000


def limited_broker(cluster: ClusterHarness, name: str, value: str) -> kafka_pb2_grpc.DataStub:
    """Broker 1 with one limit set, leading the one partition of topic `limits`."""
    cluster.start_broker(1, **{name: value})
    cluster.wait_for_controller()
    assert cluster.admin().create_topic("limits", 1, 1, {}).error_code == 0
    return kafka_pb2_grpc.DataStub(grpc.insecure_channel(cluster.brokers[1].address, options=OPTIONS))


def produce(size: int) -> kafka_pb2.ProduceRequest:
    return kafka_pb2.ProduceRequest(acks=1, timeout_ms=5000, topics=[kafka_pb2.ProduceTopicData(
        name="limits", partitions=[kafka_pb2.ProducePartitionData(partition=0, records=b"\0" * size)])])


def long_poll(wait_ms: int) -> kafka_pb2.FetchRequest:
    """A consumer's fetch at the log end: parked until wait_ms passes."""
    return kafka_pb2.FetchRequest(replica_id=-1, replica_epoch=-1, max_wait_ms=wait_ms, min_bytes=1,
                                  max_bytes=1 << 20, topics=[kafka_pb2.FetchTopic(topic="limits", partitions=[
                                      kafka_pb2.FetchPartition(partition=0, current_leader_epoch=-1,
                                                               fetch_offset=0, partition_max_bytes=1 << 20)])])


def test_a_request_above_socket_request_max_bytes_is_refused_and_the_broker_goes_on(
        cluster: ClusterHarness) -> None:
    stub = limited_broker(cluster, "socket.request.max.bytes", "4096")
    with pytest.raises(grpc.RpcError) as refused:
        stub.Produce(produce(64 * 1024), timeout=10)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    # Still serving: a small request is answered (with the corrupt batch's own error code).
    answer = stub.Produce(produce(100), timeout=10)
    assert answer.topics[0].partitions[0].error_code != 0
    assert cluster.brokers[1].running


def test_requests_beyond_queued_max_requests_are_refused_at_once_and_served_again_after(
        cluster: ClusterHarness) -> None:
    stub = limited_broker(cluster, "queued.max.requests", "4")
    wait_until(lambda: stub.Fetch(long_poll(0), timeout=10).topics[0].partitions[0].error_code == 0, 30,
               "the partition's leader serving fetches")
    with ThreadPoolExecutor(4) as pool:
        # Parked long enough that all four are surely in the broker at once on a loaded machine.
        parked = [pool.submit(stub.Fetch, long_poll(PARKED_MS), timeout=60) for _ in range(4)]

        # Each parked fetch holds one of the four; the next is refused until one completes.
        def refused() -> bool:
            try:
                stub.Fetch(long_poll(0), timeout=10)
            except grpc.RpcError as e:
                assert e.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, e
                return True
            assert not any(f.done() for f in parked), "a parked fetch ended early: " + repr(
                [f.exception() or f.result() for f in parked if f.done()])
            return False

        wait_until(refused, PARKED_MS / 1000 - 5, "a fifth request refused while four are parked")
        assert all(f.result().topics[0].partitions[0].error_code == 0 for f in parked)
    assert stub.Fetch(long_poll(0), timeout=10).topics[0].partitions[0].error_code == 0
