"""Hostile requests for longer than `make test` sends them: one broker on a TLS listener with the
ACL authorizer, a certified client with ACLs on the `fuzz` topics and groups only, N requests
drawn by client/tooling/fuzz.py on every RPC. Prints how many were sent, answered with a gRPC
error (crashes, hangs) and whether the acknowledged records survived.

    python bench/fuzz.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from broker.grpc_options import OPTIONS
from client import cli
from client.admin import AdminClient
from client.consumer import KafkaConsumer
from client.producer import KafkaProducer
from client.security import read_command_config
from client.tooling import fuzz
from client.tooling.certs import principal
from client.tooling.local_cluster import LocalCluster

KEPT = 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="minikafka-fuzz-") as work:
        cluster = LocalCluster(Path(work), 1, overrides={"offsets.topic.num.partitions": "3"}, secure=True)
        cluster.start()
        try:
            cluster.wait_ready()
            assert cluster.certs is not None
            admin_security = read_command_config(str(cluster.certs / "admin.properties"))
            for kind in ("--topic", "--group"):
                cli.main(["acls", "--bootstrap-server", cluster.bootstrap_servers, "--command-config",
                          str(cluster.certs / "admin.properties"), "--add", "--allow-principal",
                          principal("alice", "clients"), "--resource-pattern-type", "prefixed", kind, "fuzz"])
            admin = AdminClient(cluster.bootstrap_servers, timeout_s=30, security=admin_security)
            admin.create_topic("kept", 1, 1, {})
            producer = KafkaProducer(cluster.bootstrap_servers, acks="all", security=admin_security)
            acked = [producer.send("kept", f"k{i}".encode()) for i in range(KEPT)]
            producer.flush(60)
            producer.close()
            ok = sum(f.exception() is None for f in acked)
            channel = read_command_config(str(cluster.certs / "alice.properties")).channel(
                cluster.brokers[0].address, OPTIONS)
            start = time.perf_counter()
            result = fuzz.run(channel, args.requests)
            elapsed = time.perf_counter() - start
            consumer = KafkaConsumer(cluster.bootstrap_servers, auto_offset_reset="earliest", security=admin_security)
            consumer.assign([("kept", 0)])
            values: list[bytes] = []
            deadline = time.monotonic() + 60
            while len(values) < ok and time.monotonic() < deadline:
                values.extend(r.value for r in consumer.poll(500))
            consumer.close()
            lost = ok - sum(1 for v in values if v.startswith(b"k"))
            print(f"Fuzz: {result.sent:,} hostile requests on {len(fuzz.rpcs())} RPCs in {elapsed:.0f} s; "
                  f"gRPC errors (crashes, hangs) {len(result.failures)}; broker alive: "
                  f"{cluster.brokers[0].running}; acknowledged records lost: {lost} of {ok}")
            for failure in result.failures[:10]:
                print("  " + failure)
            return 0 if not result.failures and lost == 0 and cluster.brokers[0].running else 1
        finally:
            cluster.kill()


if __name__ == "__main__":
    sys.exit(main())
