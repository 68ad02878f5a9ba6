"""`minikafka acls` against a real ZooKeeper: Kafka's znodes, kafka-acls' output and errors."""

from __future__ import annotations

import json
import uuid

import pytest
from kazoo.client import KazooClient

from client import cli
from client.tooling.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.live


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["acls", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_add_list_and_remove_as_kafka_acls(zookeeper: ZooKeeperServer, capsys: pytest.CaptureFixture[str]) -> None:
    chroot = f"/cli-acls-{uuid.uuid4().hex[:8]}"
    zk = ["--zookeeper", zookeeper.connect + chroot]
    code, out, _ = run(capsys, *zk, "--add", "--allow-principal", "User:alice", "--consumer", "--topic", "t",
                       "--group", "g")
    assert code == 0
    assert ("Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL)`: \n"
            " \t(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)\n"
            "\t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW) \n") in out
    code, out, _ = run(capsys, *zk, "--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.9",
                       "--operation", "ClusterAction", "--cluster")
    assert code == 0
    kazoo = KazooClient(hosts=zookeeper.connect)
    kazoo.start()
    try:
        data, _ = kazoo.get(f"{chroot}/kafka-acl/Cluster/kafka-cluster")
        assert json.loads(data) == {"version": 1, "acls": [
            {"principal": "User:bob", "permissionType": "Deny", "operation": "ClusterAction", "host": "10.0.0.9"}]}
        changes = kazoo.get_children(f"{chroot}/kafka-acl-changes")
        notified = sorted(kazoo.get(f"{chroot}/kafka-acl-changes/{c}")[0] for c in changes)
        assert notified == [b"CLUSTER:kafka-cluster", b"GROUP:g", b"TOPIC:t"]
        code, out, _ = run(capsys, *zk, "--list", "--group", "g")
        assert code == 0 and "name=g," in out and "name=t," not in out
        assert run(capsys, *zk, "--remove", "--topic", "t", "--force")[0] == 0
        assert kazoo.exists(f"{chroot}/kafka-acl/Topic/t") is None
        code, out, _ = run(capsys, *zk, "--list")
        assert "name=t," not in out and "name=kafka-cluster," in out
    finally:
        kazoo.stop()
        kazoo.close()


@pytest.mark.parametrize(("argv", "message"), [
    (["--add", "--list", "--topic", "t"], "exactly one action"),
    (["--add", "--allow-principal", "alice", "--topic", "t"], "not a principal of the form Type:name"),
    (["--add", "--allow-principal", "User:a", "--operation", "Fly", "--topic", "t"], "--operation: 'Fly'"),
    (["--add", "--allow-principal", "User:a", "--operation", "Write", "--group", "g"],
     "Group only supports operations"),
    (["--add", "--allow-principal", "User:a"], "give --topic, --group or --cluster"),
    (["--add", "--allow-principal", "User:a", "--consumer", "--topic", "t"], "--consumer needs --topic and --group"),
])
def test_bad_acl_commands_are_one_line_errors(zookeeper: ZooKeeperServer, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    code, _, err = run(capsys, "--zookeeper", zookeeper.connect + "/cli-acls-bad", *argv)
    assert code in (1, 2) and message in err and err.count("\n") == 1, err
