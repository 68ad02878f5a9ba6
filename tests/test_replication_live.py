"""Replicated logs against real brokers: acknowledged writes survive a leader's death and a paused
follower, the ISR follows the followers, an unclean election's loss is caught and reported, a
torn log is recovered, and bad requests get Kafka's errors."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from harness import DEFAULT_SESSION_TIMEOUT_MS, ClusterHarness

from broker.grpc_options import OPTIONS
from broker.log import record_batch as rb
from client.consumer import KafkaConsumer
from client.producer import KafkaProducer
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

pytestmark = pytest.mark.live

ELECTION_WAIT_S = DEFAULT_SESSION_TIMEOUT_MS / 1000 + 20
LAG_MS = 2000


def create(cluster: ClusterHarness, topic: str, partitions: int, replication: int, **configs: str) -> None:
    result = cluster.admin().create_topic(topic, partitions, replication, configs)
    assert result.error_code == 0, result.error_message


def partition_state(
    cluster: ClusterHarness, topic: str, partition: int, via: int | None = None
) -> kafka_pb2.PartitionMetadata:
    """The partition as a broker's metadata cache has it; leader -1 while the broker does not know
    the topic yet (just restarted)."""
    live = [via] if via else [b for b, p in cluster.brokers.items() if p.running]
    metadata = cluster.admin(*live).metadata([topic])
    found = [p for p in metadata.topics[0].partitions if p.partition == partition]
    return found[0] if found else kafka_pb2.PartitionMetadata(partition=partition, leader=-1)


def zk_isr(cluster: ClusterHarness, topic: str, partition: int) -> list[int]:
    return cluster.read_json(f"/brokers/topics/{topic}/partitions/{partition}/state")["isr"]


def data_stub(cluster: ClusterHarness, broker_id: int) -> kafka_pb2_grpc.DataStub:
    return kafka_pb2_grpc.DataStub(grpc.insecure_channel(cluster.brokers[broker_id].address, options=OPTIONS))


def metrics(cluster: ClusterHarness, broker_id: int) -> kafka_pb2.BrokerMetricsResponse:
    channel = grpc.insecure_channel(cluster.brokers[broker_id].address, options=OPTIONS)
    return kafka_pb2_grpc.AdminStub(channel).BrokerMetrics(kafka_pb2.BrokerMetricsRequest(), timeout=10)


def restart(cluster: ClusterHarness, broker_id: int) -> None:
    """Start a SIGKILLed broker again once ZooKeeper has expired its old session, and wait until
    it knows every topic again: a client may bootstrap from it next."""
    wait_until(lambda: cluster.zk.exists(f"/brokers/ids/{broker_id}") is None, ELECTION_WAIT_S,
               f"broker {broker_id}'s old registration to expire")
    cluster.start_broker(broker_id)
    topics = cluster.zk.get_children("/brokers/topics")

    def knows_every_topic() -> bool:
        metadata = cluster.admin(broker_id).metadata(topics)
        return all(t.error_code == 0 and t.partitions for t in metadata.topics)

    wait_until(knows_every_topic, ELECTION_WAIT_S, f"broker {broker_id} to learn the topics again")


def bootstrap(cluster: ClusterHarness) -> str:
    return ",".join(p.address for p in cluster.brokers.values())


class SteadyWriter:
    """A producer writing numbered records until stopped, remembering each acknowledgement."""

    def __init__(self, cluster: ClusterHarness, topic: str, acks: str = "all") -> None:
        self.producer = KafkaProducer(bootstrap(cluster), acks=acks, linger_ms=5, delivery_timeout_ms=120000,
                                      request_timeout_ms=10000)
        self.topic = topic
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            value = f"record-{n:07d}".encode()
            self.producer.send(self.topic, value).add_done_callback(lambda f, v=value: self._done(v, f))
            n += 1
            if n % 50 == 0:
                time.sleep(0.005)  # a steady stream, not a flood

    def _done(self, value: bytes, future: object) -> None:
        error = future.exception()  # type: ignore[attr-defined]
        with self._lock:
            if error is None:
                metadata = future.result()  # type: ignore[attr-defined]
                self.acked[value] = (metadata.partition, metadata.offset)
            else:
                self.failed.append(f"{value!r}: {error}")

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.producer.flush(120)
        self.producer.close(10)


def read_all(cluster: ClusterHarness, topic: str, partitions: int) -> dict[int, list[tuple[int, bytes]]]:
    """Every record of every partition, from the beginning to the current high watermark."""
    consumer = KafkaConsumer(bootstrap(cluster), auto_offset_reset="earliest")
    try:
        tps = [(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        seen: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "could not read every partition to its end"
            for record in consumer.poll(1000):
                seen[record.partition].append((record.offset, record.value))
        return seen
    finally:
        consumer.close()


def assert_every_acknowledged_record_once_in_order(
    writer: SteadyWriter, seen: dict[int, list[tuple[int, bytes]]]
) -> None:
    values = [v for records in seen.values() for _, v in records]
    duplicates = {v for v in values if values.count(v) > 1} if len(values) != len(set(values)) else set()
    assert not duplicates, f"read more than once: {sorted(duplicates)[:5]}"
    where = {v: (p, o) for p, records in seen.items() for o, v in records}
    missing = [v for v in writer.acked if v not in where]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:5]}"
    moved = [v for v, at in writer.acked.items() if where[v] != at]
    assert not moved, f"acknowledged at one offset, found at another: {moved[:5]}"
    for records in seen.values():
        offsets = [o for o, _ in records]
        assert offsets == sorted(offsets)
        # One producer, in order per partition: the values it wrote come back in the order written.
        numbers = [v for _, v in records if v in writer.acked]
        assert numbers == sorted(numbers)


@pytest.fixture
def three_brokers(cluster: ClusterHarness) -> Iterator[ClusterHarness]:
    cluster.start_brokers(1, 2, 3, **{"replica.lag.time.max.ms": str(LAG_MS), "auto.leader.rebalance.enable": "false"})
    cluster.wait_for_controller()
    yield cluster
    for process in cluster.brokers.values():
        if process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)


def test_acks_all_writes_survive_a_leader_sigkill_and_a_paused_follower(three_brokers: ClusterHarness) -> None:
    cluster = three_brokers
    create(cluster, "ledger", 3, 3, **{"min.insync.replicas": "2"})
    writer = SteadyWriter(cluster, "ledger")
    try:
        wait_until(lambda: writer.count() > 500, 60, "the first acknowledgements")
        victim = partition_state(cluster, "ledger", 0).leader
        cluster.brokers[victim].kill()
        wait_until(lambda: partition_state(cluster, "ledger", 0).leader not in (victim, -1), ELECTION_WAIT_S,
                   "a new leader of ledger-0")
        acked = writer.count()
        wait_until(lambda: writer.count() > acked + 500, 60, "acknowledgements from the new leaders")
        # A follower paused past replica.lag.time.max.ms leaves the ISR; writes go on with two.
        leader = partition_state(cluster, "ledger", 0).leader
        paused = next(b for b in (1, 2, 3) if b not in (victim, leader))
        os.kill(cluster.brokers[paused].pid, signal.SIGSTOP)  # type: ignore[arg-type]
        wait_until(lambda: paused not in zk_isr(cluster, "ledger", 0), LAG_MS / 1000 + 20, "the ISR to shrink")
        acked = writer.count()
        # min.insync.replicas=2 with one broker dead and one paused: writes must wait, not be lost.
        os.kill(cluster.brokers[paused].pid, signal.SIGCONT)  # type: ignore[arg-type]
        wait_until(lambda: writer.count() > acked + 200, 60, "acknowledgements after the follower is back")
    finally:
        writer.stop()
    assert not [f for f in writer.failed if "NOT_ENOUGH_REPLICAS" not in f and "TIMED_OUT" not in f], writer.failed[:5]
    restart(cluster, victim)
    assert_every_acknowledged_record_once_in_order(writer, read_all(cluster, "ledger", 3))


def test_a_paused_follower_leaves_the_isr_and_returns_once_caught_up(three_brokers: ClusterHarness) -> None:
    cluster = three_brokers
    create(cluster, "isr", 1, 3)
    state = partition_state(cluster, "isr", 0)
    leader, follower = state.leader, next(r for r in state.replicas if r != state.leader)
    producer = KafkaProducer(bootstrap(cluster), acks=1)
    try:
        os.kill(cluster.brokers[follower].pid, signal.SIGSTOP)  # type: ignore[arg-type]
        for i in range(200):
            producer.send("isr", f"v{i}".encode())
        producer.flush(30)
        wait_until(lambda: follower not in zk_isr(cluster, "isr", 0), LAG_MS / 1000 + 20,
                   "the ISR to shrink in ZooKeeper")
        wait_until(lambda: follower not in partition_state(cluster, "isr", 0).isr, 20, "describe to show the shrink")
        assert metrics(cluster, leader).isr_shrinks >= 1
        assert metrics(cluster, leader).under_replicated_partitions == 1
        os.kill(cluster.brokers[follower].pid, signal.SIGCONT)  # type: ignore[arg-type]
        wait_until(lambda: follower in zk_isr(cluster, "isr", 0), 30, "the follower back in the ISR")
        wait_until(lambda: follower in partition_state(cluster, "isr", 0).isr, 20, "describe to show it back")
        assert metrics(cluster, leader).isr_expands >= 1
        replicas = data_stub(cluster, leader).DescribeReplicas(kafka_pb2.DescribeReplicasRequest(), timeout=10)
        states = {r.broker_id: r.log_end_offset for r in replicas.partitions[0].replicas}
        assert states[follower] == states[leader] == replicas.partitions[0].high_watermark == 200
        # minikafka topics --describe shows them too.
        described = subprocess.run(
            [sys.executable, "-m", "client.cli", "topics", "--bootstrap-server", bootstrap(cluster), "--describe",
             "--topic", "isr", "--output", "json"], capture_output=True, text=True, timeout=60, check=True,
        )
        partition = json.loads(described.stdout)[0]["partitions"][0]
        assert partition["high_watermark"] == 200
        assert partition["log_end_offsets"] == {str(b): 200 for b in state.replicas}
    finally:
        producer.close(10)


def test_an_unclean_election_loses_acknowledged_writes_and_says_so(three_brokers: ClusterHarness) -> None:
    """The Jepsen 2013 scenario: the ISR shrinks to the leader, which acknowledges writes alone
    and dies; a stale replica is elected. When the old leader returns it must drop the writes
    nobody else has: the loss is logged and counted."""
    cluster = three_brokers
    create(cluster, "jepsen", 1, 2, **{"unclean.leader.election.enable": "true"})
    state = partition_state(cluster, "jepsen", 0)
    leader, follower = state.leader, next(r for r in state.replicas if r != state.leader)
    producer = KafkaProducer(bootstrap(cluster), acks="all", enable_idempotence=False)
    try:
        for i in range(50):
            producer.send("jepsen", f"both-{i}".encode())
        producer.flush(30)
        wait_until(lambda: follower in zk_isr(cluster, "jepsen", 0), 20, "both replicas in the ISR")
        os.kill(cluster.brokers[follower].pid, signal.SIGSTOP)  # type: ignore[arg-type]
        wait_until(lambda: zk_isr(cluster, "jepsen", 0) == [leader], LAG_MS / 1000 + 20, "the ISR shrunk to the leader")
        futures = [producer.send("jepsen", f"only-leader-{i}".encode()) for i in range(30)]
        producer.flush(30)
        assert all(f.exception() is None for f in futures)  # acknowledged with acks=all by an ISR of one
        cluster.brokers[leader].kill()
        os.kill(cluster.brokers[follower].pid, signal.SIGCONT)  # type: ignore[arg-type]
        wait_until(lambda: partition_state(cluster, "jepsen", 0, via=follower).leader == follower, ELECTION_WAIT_S,
                   "the stale replica elected")
        controller = cluster.wait_for_controller().controller_id
        assert metrics(cluster, controller).unclean_leader_elections >= 1
        restart(cluster, leader)
        wait_until(lambda: metrics(cluster, leader).records_truncated == 30, 30,
                   "the old leader to truncate the 30 writes only it had")
        assert "This discards 30 records the new leader does not have" in cluster.log(leader)
    finally:
        producer.close(10)


def test_a_broker_recovers_a_torn_log_after_sigkill_and_catches_up(three_brokers: ClusterHarness) -> None:
    cluster = three_brokers
    create(cluster, "torn", 1, 3)
    state = partition_state(cluster, "torn", 0)
    follower = next(r for r in state.replicas if r != state.leader)
    producer = KafkaProducer(bootstrap(cluster), acks="all")
    try:
        for i in range(100):  # ten batches
            producer.send("torn", f"before-{i}".encode())
            if i % 10 == 9:
                producer.flush(30)
        wait_until(lambda: follower in zk_isr(cluster, "torn", 0), 20, "the follower in sync")
        cluster.brokers[follower].kill()
        segment = cluster.brokers[follower].work_dir / "data" / "torn-0" / f"{0:020d}.log"
        size = segment.stat().st_size
        with open(segment, "r+b") as f:  # a write torn half way through the last batch
            f.truncate(size - 7)
        for i in range(100):
            producer.send("torn", f"after-{i}".encode())
        producer.flush(30)
        restart(cluster, follower)
        wait_until(lambda: follower in zk_isr(cluster, "torn", 0), 30, "the recovered follower back in sync")
        assert "recovery cut" in cluster.log(follower)
    finally:
        producer.close(10)
    # Make the recovered broker the only copy that answers, and read everything from it.
    others = [b for b in (1, 2, 3) if b != follower]
    for b in others:
        cluster.brokers[b].kill()
    wait_until(lambda: partition_state(cluster, "torn", 0, via=follower).leader == follower, ELECTION_WAIT_S,
               "the recovered broker to lead")
    consumer = KafkaConsumer(cluster.brokers[follower].address, auto_offset_reset="earliest")
    try:
        consumer.assign([("torn", 0)])
        consumer.seek_to_beginning()
        values: list[bytes] = []
        wait_until(lambda: values.extend(r.value for r in consumer.poll(500)) or len(values) >= 200, 30,
                   "every record from the recovered broker")
    finally:
        consumer.close()
    assert values == [f"before-{i}".encode() for i in range(100)] + [f"after-{i}".encode() for i in range(100)]


def test_bad_produce_and_fetch_requests_get_kafkas_errors(three_brokers: ClusterHarness) -> None:
    cluster = three_brokers
    create(cluster, "strict", 1, 3, **{"max.message.bytes": "2000", "min.insync.replicas": "3"})
    state = partition_state(cluster, "strict", 0)
    follower = next(r for r in state.replicas if r != state.leader)

    def produce(
        broker: int, records: bytes, acks: int = 1, topic: str = "strict"
    ) -> kafka_pb2.ProducePartitionResponse:
        request = kafka_pb2.ProduceRequest(acks=acks, timeout_ms=5000, topics=[kafka_pb2.ProduceTopicData(
            name=topic, partitions=[kafka_pb2.ProducePartitionData(partition=0, records=records)])])
        return data_stub(cluster, broker).Produce(request, timeout=10).topics[0].partitions[0]

    good = rb.build_batch([(None, b"fine")])
    answer = produce(follower, good)
    assert answer.error_code == Errors.NOT_LEADER_OR_FOLLOWER.code and answer.current_leader_id == state.leader
    assert produce(state.leader, good, acks=2).error_code == Errors.INVALID_REQUIRED_ACKS.code
    assert produce(state.leader, good, topic="nowhere").error_code == Errors.UNKNOWN_TOPIC_OR_PARTITION.code
    assert produce(state.leader, rb.build_batch([(None, b"x" * 5000)])).error_code == Errors.MESSAGE_TOO_LARGE.code
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    assert produce(state.leader, bytes(corrupt)).error_code == Errors.CORRUPT_MESSAGE.code
    assert produce(state.leader, b"\x00" * 10).error_code == Errors.CORRUPT_MESSAGE.code
    assert produce(state.leader, good, acks=-1).error_code == Errors.NONE.code
    os.kill(cluster.brokers[follower].pid, signal.SIGSTOP)  # type: ignore[arg-type]
    wait_until(lambda: follower not in zk_isr(cluster, "strict", 0), LAG_MS / 1000 + 20, "the ISR to shrink")
    wait_until(lambda: produce(state.leader, good, acks=-1).error_code == Errors.NOT_ENOUGH_REPLICAS.code, 10,
               "the leader to refuse writes below min.insync.replicas")
    os.kill(cluster.brokers[follower].pid, signal.SIGCONT)  # type: ignore[arg-type]

    def fetch(offset: int, epoch: int = -1) -> kafka_pb2.FetchPartitionResponse:
        request = kafka_pb2.FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, topics=[
            kafka_pb2.FetchTopic(topic="strict", partitions=[kafka_pb2.FetchPartition(
                partition=0, fetch_offset=offset, current_leader_epoch=epoch, partition_max_bytes=1 << 20)])])
        return data_stub(cluster, state.leader).Fetch(request, timeout=10).topics[0].partitions[0]

    assert fetch(1000).error_code == Errors.OFFSET_OUT_OF_RANGE.code
    assert fetch(0, epoch=state.leader_epoch + 5).error_code == Errors.UNKNOWN_LEADER_EPOCH.code
    assert fetch(0).error_code == Errors.NONE.code


def cli(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def test_a_consumer_started_at_once_after_a_leader_failover_reads_every_acknowledged_record(
    cluster: ClusterHarness,
) -> None:
    """Issue 13: three brokers, replication 3, min.insync.replicas=2, 3 s sessions; keyless lines with
    acks=all, the leader of partition 0 SIGKILLed, more lines through the survivors, and at once a
    consumer from the beginning on the survivors. It must read all of them, and say nothing of a
    stalled partition (its stall warning comes after 10 s without progress here)."""
    cluster.start_brokers(1, 2, 3, session_timeout_ms=3000)
    cluster.wait_for_controller()
    create(cluster, "failover", 3, 3, **{"min.insync.replicas": "2"})
    everyone = bootstrap(cluster)
    first = cli("produce", "--bootstrap-server", everyone, "--topic", "failover", "--acks", "all",
                "--print-acknowledged", stdin="".join(f"{i}\n" for i in range(1000)))
    assert first.returncode == 0, first.stderr
    victim = partition_state(cluster, "failover", 0).leader
    cluster.brokers[victim].kill()
    survivors = ",".join(p.address for b, p in cluster.brokers.items() if b != victim)
    second = cli("produce", "--bootstrap-server", survivors, "--topic", "failover", "--acks", "all",
                 "--print-acknowledged", stdin="".join(f"{i}\n" for i in range(1000, 2000)))
    assert second.returncode == 0, second.stderr
    acknowledged = sorted(tuple(line.split("\t")) for line in (first.stdout + second.stdout).splitlines())
    assert len(acknowledged) == 2000
    # Exits once it has read 2,000 records, or after 30 s without one (a stall).
    consumed = cli("consume", "--bootstrap-server", survivors, "--topic", "failover", "--from-beginning",
                   "--print-offsets", "--max-messages", "2000", "--timeout-ms", "30000",
                   "--consumer-property", "stall.warning.ms=10000")
    assert consumed.returncode == 0, consumed.stderr
    assert "no progress" not in consumed.stderr, consumed.stderr
    assert sorted(tuple(line.split("\t")) for line in consumed.stdout.splitlines()) == acknowledged
