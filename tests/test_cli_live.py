"""The `minikafka` command line against real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ClusterHarness
from kafka import KafkaAdminClient

from client.admin import AdminClient
from client.tooling.processes import free_port, free_port_run, wait_until

pytestmark = pytest.mark.live


def minikafka(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_cluster_describe_prints_the_controller_and_every_live_broker(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    state = cluster.wait_for_controller()
    bootstrap = cluster.brokers[2].address

    result = minikafka("cluster", "describe", "--bootstrap-server", bootstrap, "--output", "json")
    assert result.returncode == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["controller"] == {"id": state.controller_id, "epoch": state.epoch}
    assert described["cluster_id"] == cluster.read_json("/cluster/id")["id"]
    assert [(b["id"], b["host"], b["port"]) for b in described["brokers"]] == [
        (b, "127.0.0.1", cluster.brokers[b].port) for b in (1, 2, 3)
    ]
    assert described["responding_broker_id"] == 2

    text = minikafka("cluster", "describe", "--bootstrap-server", bootstrap).stdout
    assert f"Cluster ID: {described['cluster_id']}" in text
    assert f"Controller: {state.controller_id} (epoch {state.epoch})" in text
    rows = [line.split() for line in text.splitlines() if line.split() and line.split()[0] in {"1", "2", "3"}]
    assert [row[:3] for row in rows] == [[str(b), "127.0.0.1", str(cluster.brokers[b].port)] for b in (1, 2, 3)]


def test_dead_bootstrap_servers_are_skipped_for_a_live_one(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1)
    cluster.wait_for_controller()
    dead = f"127.0.0.1:{free_port()}"
    result = minikafka("cluster", "describe", "--bootstrap-server", f"{dead},{cluster.brokers[1].address}")
    assert result.returncode == 0, result.stderr
    assert "Controller: 1 (epoch 1)" in result.stdout


def test_unreachable_bootstrap_server_is_a_one_line_error_within_the_timeout() -> None:
    dead = f"127.0.0.1:{free_port()}"
    result = minikafka("cluster", "describe", "--bootstrap-server", dead, "--timeout", "2", timeout=30)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"minikafka: error: no bootstrap server answered within 2.0 s: {dead}: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("bootstrap", ["", "nohost", "h:port", "h:0", ":9092"])
def test_malformed_bootstrap_server_is_a_one_line_error(bootstrap: str) -> None:
    result = minikafka("cluster", "describe", "--bootstrap-server", bootstrap)
    assert result.returncode == 1
    assert result.stderr.startswith("minikafka: error: ")
    assert result.stderr.count("\n") == 1


def test_local_cluster_starts_zookeeper_and_brokers_and_stops_them_on_sigterm(tmp_path: Path) -> None:
    zk_port, base_port = free_port(), free_port_run(6)
    kafka_base_port = base_port + 3
    process = subprocess.Popen(
        [sys.executable, "-m", "client.cli", "local-cluster", "--brokers", "3", "--zookeeper-port", str(zk_port),
         "--base-port", str(base_port), "--kafka-base-port", str(kafka_base_port), "--dir", str(tmp_path),
         "--override", "zookeeper.session.timeout.ms=4000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C") or len(lines) > 50:
                break
        output = "".join(lines)
        assert f"ZooKeeper: 127.0.0.1:{zk_port}" in output, output
        bootstrap = ",".join(f"127.0.0.1:{base_port + i}" for i in range(3))
        assert f"Bootstrap servers: {bootstrap}" in output
        kafka_bootstrap = ",".join(f"127.0.0.1:{kafka_base_port + i}" for i in range(3))
        assert f"Kafka protocol bootstrap servers: {kafka_bootstrap}" in output
        assert "Controller: broker " in output

        description = AdminClient(bootstrap).describe_cluster()
        assert [b.id for b in description.brokers] == [1, 2, 3]
        kafka_admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            assert sorted(b["port"] for b in kafka_admin.describe_cluster()["brokers"]) == [
                kafka_base_port + i for i in range(3)]
        finally:
            kafka_admin.close()
        pids = [int(line.split("pid ")[1].split(",")[0]) for line in lines if line.startswith("Broker ")]
        assert len(pids) == 3
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), 10, f"broker pid {pid} to exit")
    with pytest.raises(Exception):  # noqa: B017 - nothing answers any more
        AdminClient(bootstrap, timeout_s=1).describe_cluster()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of the (exited) cluster process is dead too.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_local_cluster_on_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = minikafka("local-cluster", "--brokers", "1", "--zookeeper-port", str(port), "--dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"minikafka: error: cannot start ZooKeeper on 127.0.0.1:{port}: ")
    assert result.stderr.count("\n") == 1


def test_produce_lines_and_consume_them_back_from_the_beginning(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1, 2, 3)
    cluster.wait_for_controller()
    bootstrap = ",".join(b.address for b in cluster.brokers.values())
    assert minikafka("topics", "--bootstrap-server", bootstrap, "--create", "--topic", "lines",
                     "--partitions", "2", "--replication-factor", "3").returncode == 0
    lines = [f"k{i % 5}:value {i}" for i in range(40)]
    produced = subprocess.run(
        [sys.executable, "-m", "client.cli", "produce", "--bootstrap-server", bootstrap, "--topic", "lines",
         "--acks", "all", "--key-separator", ":"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60,
    )
    assert produced.returncode == 0, produced.stderr
    consumed = minikafka("consume", "--bootstrap-server", bootstrap, "--topic", "lines", "--from-beginning",
                         "--max-messages", "40", "--print-keys", "--timeout-ms", "20000")
    assert consumed.returncode == 0, consumed.stderr
    got = [line.split("\t")[-2:] for line in consumed.stdout.splitlines()]
    assert sorted(f"{k}:{v}" for k, v in got) == sorted(lines)
    # One key, one partition: each key's values come back in the order they were written.
    for key in {k for k, _ in got}:
        values = [int(v.split()[1]) for k, v in got if k == key]
        assert values == sorted(values)


def test_consuming_a_missing_topic_is_a_one_line_error(cluster: ClusterHarness) -> None:
    cluster.start_brokers(1)
    cluster.wait_for_controller()
    result = subprocess.run(
        [sys.executable, "-m", "client.cli", "consume", "--bootstrap-server", cluster.brokers[1].address,
         "--topic", "nowhere", "--timeout-ms", "2000"], capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "nowhere" in result.stderr


def test_local_cluster_with_a_broker_port_taken_names_the_broker_and_why(tmp_path: Path) -> None:
    base_port = free_port_run(4)  # the brokers' gRPC ports, then their Kafka-protocol ports
    with socket.create_server(("127.0.0.1", base_port + 1)):
        result = minikafka("local-cluster", "--brokers", "2", "--zookeeper-port", str(free_port()),
                           "--base-port", str(base_port), "--kafka-base-port", str(base_port + 2),
                           "--dir", str(tmp_path), timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("minikafka: error: broker 2 exited: Cannot listen on ")
    assert f":{base_port + 1}" in result.stderr
    assert result.stderr.count("\n") == 1
