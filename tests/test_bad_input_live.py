"""Bad input to a broker: a clear error, a bounded wait, never a crash or a hang."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import ClusterHarness

from client.tooling.local_cluster import BrokerProcess
from client.tooling.processes import free_port, wait_until

pytestmark = pytest.mark.live


def run_broker(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "broker", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_duplicate_broker_id_exits_at_once_with_a_clear_error(cluster: ClusterHarness, tmp_path: Path) -> None:
    cluster.start_broker(1)
    original = cluster.zk.exists("/brokers/ids/1")
    duplicate = BrokerProcess(
        1, cluster.zookeeper.connect + cluster.chroot, tmp_path / "duplicate",
        overrides={"zookeeper.session.timeout.ms": "4000"},
    )
    duplicate.start()
    assert duplicate.wait(timeout=30) == 1
    log = duplicate.log_text()
    assert "minikafka-broker: error: Broker id 1 is already registered" in log
    assert "broker.id must be unique" in log
    assert "Traceback" not in log
    # The broker that was there first is untouched.
    assert cluster.zk.exists("/brokers/ids/1").ephemeralOwner == original.ephemeralOwner
    assert cluster.brokers[1].running


def test_zookeeper_that_does_not_answer_is_a_clear_error_after_the_connection_timeout(tmp_path: Path) -> None:
    silent = f"127.0.0.1:{free_port()}"
    result = run_broker(
        "--override", "broker.id=1",
        "--override", f"zookeeper.connect={silent}",
        "--override", "zookeeper.connection.timeout.ms=2000",
        "--override", f"log.dirs={tmp_path}",
        "--override", "listeners=PLAINTEXT://127.0.0.1:0",
    )
    assert result.returncode == 1
    assert (
        f"minikafka-broker: error: Timed out waiting for connection to ZooKeeper at {silent} after 2000 ms"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_malformed_controller_and_broker_registrations_are_logged_and_the_election_converges(
    cluster: ClusterHarness,
) -> None:
    cluster.zk.ensure_path("/brokers/ids")
    cluster.zk.create("/controller", b"this is not json")
    cluster.zk.create("/brokers/ids/9", b'{"version":5,"host":')
    cluster.zk.create("/brokers/ids/not-a-number", b"{}")

    cluster.start_brokers(1, 2, 3)
    state = cluster.wait_for_controller()
    assert state.controller_id in (1, 2, 3)
    logs = {b: cluster.log(b) for b in (1, 2, 3)}
    assert any("Ignoring malformed controller registration" in log for log in logs.values())
    controller_log = cluster.wait_for_log(state.controller_id, "Ignoring malformed broker registration")
    assert "/brokers/ids/9 does not hold JSON" in controller_log
    assert "/brokers/ids/not-a-number: not a broker id" in controller_log

    # Malformed data arriving while the cluster runs: logged, no crash.
    cluster.zk.create("/brokers/ids/10", b"[1, 2, 3]")
    wait_until(
        lambda: "/brokers/ids/10 holds list, not a JSON object" in cluster.log(state.controller_id),
        30, "the controller to log the malformed registration of broker 10",
    )
    assert all(cluster.brokers[b].running for b in (1, 2, 3))
    assert all("Traceback" not in cluster.log(b) for b in (1, 2, 3))
    d = cluster.describe()
    assert (d.controller_id, [b.id for b in d.brokers]) == (state.controller_id, [1, 2, 3])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--override", "no.such.property=1"], "Unknown configuration 'no.such.property' (from --override)"),
        (["--override", "broker.id=abc"], "Invalid value abc for configuration broker.id: Not a number of type INT"),
        (["--override", "zookeeper.connect=localhost"],
         "Invalid value localhost for configuration zookeeper.connect: 'localhost' is not host:port"),
        (["--override", "listeners=http//x"],
         "Invalid value http//x for configuration listeners: 'http//x' is not of the form LISTENER_NAME://host:port"),
        (["--override", "justaname"], "Invalid override 'justaname': expected name=value"),
    ],
)
def test_bad_properties_are_a_one_line_error(args: list[str], message: str) -> None:
    base = ["--override", "broker.id=1", "--override", "zookeeper.connect=127.0.0.1:1"]
    result = run_broker(*base, *args)
    assert result.returncode == 2
    assert result.stderr == f"minikafka-broker: error: {message}\n"


def test_unknown_property_in_the_file_names_the_file(tmp_path: Path) -> None:
    properties = tmp_path / "server.properties"
    properties.write_text("broker.id=1\nzookeeper.connect=127.0.0.1:1\nlog.retention.hourz=1\n")
    result = run_broker(str(properties))
    assert result.returncode == 2
    assert result.stderr == f"minikafka-broker: error: Unknown configuration 'log.retention.hourz' (in {properties})\n"


def test_missing_properties_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_broker(str(tmp_path / "nope.properties"))
    assert result.returncode == 2
    assert result.stderr.startswith("minikafka-broker: error: Cannot read properties file")
    assert result.stderr.count("\n") == 1
