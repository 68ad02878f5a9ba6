"""zookeeper.set.acl on a real ZooKeeper, through `local-cluster --secure`: the brokers create
every znode with their digest login's ACL, so a ZooKeeper client without it reads but cannot
create /controller, take it over, or change a partition's state; `minikafka acls` writes with
the brokers' login and is refused in one line without it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pytest
from harness import ClusterHarness
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.security import Permissions

from broker.zk import zk_data
from client.admin import AdminClient
from client.security import read_command_config
from client.tooling.local_cluster import LocalCluster
from client.tooling.processes import wait_until

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("secure"), brokers=2,
                           overrides={"zookeeper.session.timeout.ms": "6000"}, secure=True)
    cluster.start()
    try:
        cluster.wait_ready()
        admin = AdminClient(cluster.bootstrap_servers,
                            security=read_command_config(str(cluster.certs / "admin.properties")))
        assert admin.create_topic("guarded", 1, 2, {}).error_code == 0
        yield cluster
    finally:
        cluster.stop()


def kazoo(cluster: LocalCluster, digest: str | None = None) -> KazooClient:
    client = KazooClient(hosts=cluster.zookeeper_connect, timeout=10,
                         auth_data=[("digest", digest)] if digest else None)
    client.start()
    return client


@pytest.fixture
def stranger(secure_cluster: LocalCluster) -> Iterator[KazooClient]:
    client = kazoo(secure_cluster)
    yield client
    client.stop()
    client.close()


def test_the_brokers_znodes_are_theirs_to_change_and_everyones_to_read(
        secure_cluster: LocalCluster, stranger: KazooClient) -> None:
    state_path = zk_data.partition_state_path("guarded", 0)
    for path in ("", zk_data.CONTROLLER_PATH, zk_data.CONTROLLER_EPOCH_PATH, zk_data.BROKER_IDS_PATH,
                 state_path, zk_data.topic_path("guarded"), "/kafka-acl"):
        acls, _ = stranger.get_acls(path or "/")
        world = [a for a in acls if a.id.scheme == "world"]
        assert [a.perms for a in world] == [Permissions.READ], (path, acls)
        assert {a.id.scheme for a in acls} == {"world", "digest"}, (path, acls)
    # Reading still works for `watch --zookeeper` and anyone else.
    assert stranger.get(state_path)[0]


def test_a_client_without_the_brokers_login_cannot_take_or_forge_the_cluster_state(
        secure_cluster: LocalCluster, stranger: KazooClient) -> None:
    state_path = zk_data.partition_state_path("guarded", 0)
    data, stat = stranger.get(state_path)
    with pytest.raises(NoAuthError):
        stranger.set(state_path, b'{"controller_epoch":999,"leader":-1,"version":1,"leader_epoch":9,"isr":[]}')
    with pytest.raises(NoAuthError):
        stranger.set(zk_data.CONTROLLER_EPOCH_PATH, b"999")
    with pytest.raises(NoAuthError):
        stranger.delete(zk_data.CONTROLLER_PATH)
    with pytest.raises(NoAuthError):
        stranger.create("/controller-elsewhere", b'{"brokerid":99}')
    with pytest.raises(NoAuthError):
        stranger.create(zk_data.BROKER_IDS_PATH + "/99", b"{}", ephemeral=True)
    assert stranger.get(state_path) == (data, stat)


def test_with_no_controller_a_stranger_still_cannot_create_controller(
        secure_cluster: LocalCluster, stranger: KazooClient) -> None:
    """Between one controller's death and the next election /controller is absent: that is
    when an open parent would let anyone claim it."""
    digest = secure_cluster.zookeeper_auth["zookeeper.auth.digest"]
    broker = kazoo(secure_cluster, digest)
    try:
        # The brokers' own login may delete it, which a controller's resignation does.
        with contextlib.suppress(NoNodeError):
            broker.delete(zk_data.CONTROLLER_PATH)
        # ZooKeeper checks the parent's ACL before whether the znode exists, so this is refused
        # whether or not a broker has already won the next election.
        with pytest.raises(NoAuthError):
            stranger.create(zk_data.CONTROLLER_PATH, b'{"version":1,"brokerid":99,"timestamp":"0"}',
                            ephemeral=True)
    finally:
        broker.stop()
        broker.close()
    wait_until(lambda: stranger.exists(zk_data.CONTROLLER_PATH), 30, "the brokers to elect a controller again")
    controller = stranger.get(zk_data.CONTROLLER_PATH)[0]
    assert zk_data.decode_controller(controller) in (1, 2)


def minikafka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client.cli", *args], capture_output=True, text=True, timeout=60)


def test_acls_cli_writes_with_the_brokers_login_and_refuses_in_one_line_without_it(
        secure_cluster: LocalCluster) -> None:
    connect = f"zookeeper.connect={secure_cluster.zookeeper_connect}"
    acl = ("--add", "--allow-principal", "User:CN=carol", "--operation", "Read", "--topic", "guarded")
    refused = minikafka("acls", "--authorizer-properties", connect, *acl)
    assert refused.returncode == 1
    assert refused.stderr.startswith("minikafka: error: ZooKeeper refused to write /kafka-acl")
    assert refused.stderr.count("\n") == 1

    login = [f"{k}={v}" for k, v in secure_cluster.zookeeper_auth.items()]
    added = minikafka("acls", "--authorizer-properties", connect, *login, *acl)
    assert added.returncode == 0, added.stderr
    listed = minikafka("acls", "--authorizer-properties", connect, "--list", "--topic", "guarded")
    assert "principal=User:CN=carol" in listed.stdout, listed.stdout


def test_a_broker_setting_acls_under_an_open_parent_warns_that_controller_is_not_protected(
        cluster: ClusterHarness) -> None:
    # The harness made this test's chroot with ZooKeeper's open ACL.
    broker = cluster.start_broker(1, **{"zookeeper.set.acl": "true", "zookeeper.auth.digest": "kafka:secret"})
    wait_until(lambda: "is open to everyone, so any ZooKeeper client can delete and create /controller"
               in broker.log_text(), 30, "the warning in the broker's log")
