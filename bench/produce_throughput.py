"""Produce and fetch throughput on a 3-broker local cluster, replication 3.

1. Throughput: one KafkaProducer sends as fast as it can (batches of 1,000 records) to a topic of
   3 partitions, one led by each broker; records/s and MB/s for 100-byte and 1 KiB records, with
   acks=1 and acks=all.
2. Latency: the same producer paced at half the acks=all rate of 100-byte records; p50 and p99 of
   the time from send() to the acknowledgement, for acks=1 and acks=all.
3. Fetch: a consumer reads everything written back from the beginning; records/s and MB/s.
4. The cost of TLS: 100-byte records with acks=all on a second cluster whose listeners are SSL
   with client certificates and whose brokers replicate over mutual TLS, beside the plaintext rate.

    python bench/produce_throughput.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

from client.admin import AdminClient
from client.consumer import KafkaConsumer
from client.producer import KafkaProducer
from client.security import PLAINTEXT, read_command_config
from client.tooling.local_cluster import LocalCluster

THROUGHPUT_GOAL = 100_000  # records/s of 100 bytes with acks=all
P99_GOAL_MS = 50.0
RECORDS_PER_BATCH = 1000
PARTITIONS = 3


class Cluster:
    def __init__(self, work: Path, secure: bool = False) -> None:
        self.local = LocalCluster(work, 3, overrides={"auto.leader.rebalance.enable": "false"}, secure=secure)
        self.local.start()
        self.local.wait_ready()
        self.bootstrap = self.local.bootstrap_servers
        self.security = PLAINTEXT if self.local.certs is None else \
            read_command_config(str(self.local.certs / "admin.properties"))
        self.admin = AdminClient(self.bootstrap, timeout_s=60, security=self.security)
        self._topics = 0

    def topic(self) -> str:
        self._topics += 1
        name = f"bench-{self._topics}"
        result = self.admin.create_topic(name, PARTITIONS, 3, {})
        if result.error_code != 0:
            raise RuntimeError(f"cannot create {name}: {result.error_message}")
        return name

    def stop(self) -> None:
        self.local.kill()


def producer(cluster: Cluster, acks: str, record_size: int, linger_ms: float) -> KafkaProducer:
    # batch.size fits 1,000 records with their per-record framing.
    return KafkaProducer(cluster.bootstrap, acks=acks, batch_size=RECORDS_PER_BATCH * (record_size + 12) + 100,
                         linger_ms=linger_ms, buffer_memory=256 * 1024 * 1024, security=cluster.security)


def throughput(cluster: Cluster, topic: str, acks: str, record_size: int, seconds: float) -> tuple[float, int]:
    """(records/s, records written) at full speed."""
    value = b"x" * record_size
    p = producer(cluster, acks, record_size, linger_ms=20)
    failures: list[BaseException] = []
    try:
        for _ in range(2000):  # warm up: metadata, producer id, connections
            p.send(topic, value)
        p.flush(60)
        sent = 0
        start = time.perf_counter()
        end = start + seconds
        last = None
        while time.perf_counter() < end:
            for _ in range(1000):
                last = p.send(topic, value)
            sent += 1000
        p.flush(120)
        elapsed = time.perf_counter() - start
        if last is not None and last.exception() is not None:
            failures.append(last.exception())  # type: ignore[arg-type]
    finally:
        p.close(30)
    if failures:
        raise RuntimeError(f"writes failed: {failures[0]}")
    return sent / elapsed, sent


def latency(cluster: Cluster, topic: str, acks: str, rate: float, seconds: float) -> tuple[float, float]:
    """(p50, p99) in ms from send() to acknowledgement, sending `rate` 100-byte records/s."""
    value = b"x" * 100
    p = producer(cluster, acks, 100, linger_ms=5)  # Kafka's default linger.ms
    latencies: list[float] = []
    lock = threading.Lock()

    def done(sent_at: float) -> object:
        def callback(_future: object) -> None:
            with lock:
                latencies.append(time.perf_counter() - sent_at)
        return callback

    try:
        for _ in range(2000):
            p.send(topic, value)
        p.flush(60)
        start = time.perf_counter()
        chunk = max(1, int(rate / 1000))  # send in 1 ms slices
        n = 0
        while (now := time.perf_counter()) < start + seconds:
            due = int((now - start) * rate)
            while n < due:
                sent_at = time.perf_counter()
                for _ in range(min(chunk, due - n)):
                    p.send(topic, value).add_done_callback(done(sent_at))
                    n += 1
            time.sleep(0.0005)
        p.flush(120)
    finally:
        p.close(30)
    latencies.sort()
    return latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000


def fetch(cluster: Cluster, topic: str, expected: int) -> float:
    """records/s reading `expected` records back from the beginning."""
    consumer = KafkaConsumer(cluster.bootstrap, auto_offset_reset="earliest", security=cluster.security)
    try:
        consumer.assign([(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        got = 0
        start = time.perf_counter()
        deadline = start + 300
        while got < expected and time.perf_counter() < deadline:
            got += len(consumer.poll(1000))
        return got / (time.perf_counter() - start)
    finally:
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="minikafka-bench-") as work:
        cluster = Cluster(Path(work))
        try:
            print(f"Produce throughput (3 brokers, {PARTITIONS} partitions, replication 3, batches of "
                  f"{RECORDS_PER_BATCH} records, {args.seconds:.0f} s each)")
            all_rate = 0.0
            fetch_topic, fetch_count = "", 0
            for size in (100, 1024):
                for acks in ("1", "all"):
                    topic = cluster.topic()
                    rate, sent = throughput(cluster, topic, acks, size, args.seconds)
                    goal = ""
                    if size == 100 and acks == "all":
                        all_rate = rate
                        fetch_topic, fetch_count = topic, sent + 2000
                        goal = f" (goal >= {THROUGHPUT_GOAL:,}: {'met' if rate >= THROUGHPUT_GOAL else 'MISSED'})"
                    print(f"  {size:5d} B, acks={acks:3s}: {rate:10,.0f} records/s {rate * size / 1e6:7.1f} MB/s"
                          f"{goal}", flush=True)
            half = all_rate / 2
            print(f"Produce latency at {half:,.0f} records/s of 100 B (half the acks=all rate), send() to ack")
            for acks in ("1", "all"):
                p50, p99 = latency(cluster, cluster.topic(), acks, half, args.seconds)
                goal = f" (goal p99 < {P99_GOAL_MS:.0f} ms: {'met' if p99 < P99_GOAL_MS else 'MISSED'})" \
                    if acks == "all" else ""
                print(f"  acks={acks:3s}: p50 {p50:6.1f} ms, p99 {p99:6.1f} ms{goal}", flush=True)
            rate = fetch(cluster, fetch_topic, fetch_count)
            print(f"Fetch: {fetch_count:,} records of 100 B read back at {rate:,.0f} records/s "
                  f"({rate * 100 / 1e6:.1f} MB/s)", flush=True)
        finally:
            cluster.stop()
        secure = Cluster(Path(work) / "secure", secure=True)
        try:
            tls_rate, _ = throughput(secure, secure.topic(), "all", 100, args.seconds)
        finally:
            secure.stop()
        print(f"TLS cost, 100 B, acks=all: plaintext {all_rate:,.0f} records/s, mutual TLS {tls_rate:,.0f} "
              f"records/s ({tls_rate / all_rate:.2f} of plaintext)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
