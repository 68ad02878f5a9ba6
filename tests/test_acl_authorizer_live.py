"""The ACL authorizer on a real ZooKeeper: two brokers' caches, one writing, the other following
its change notifications; ACLs written in Kafka's own format are read as Kafka writes them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from broker.authorizer.acl import AclEntry, Operation, PatternType, Permission, ResourcePattern, ResourceType
from broker.authorizer.acl_authorizer import AclAuthorizer
from broker.zk.kafka_zk_client import KafkaZkClient
from client.tooling.processes import wait_until
from client.tooling.zookeeper import ZooKeeperServer

pytestmark = pytest.mark.live

ALICE, BOB = "User:CN=alice,OU=clients,O=minikafka", "User:CN=bob,OU=clients,O=minikafka"
TOPIC = ResourcePattern(ResourceType.TOPIC, "orders")


@pytest.fixture
def connect(zookeeper: ZooKeeperServer) -> str:
    return f"{zookeeper.connect}/acls-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def brokers(connect: str) -> Iterator[list[AclAuthorizer]]:
    clients = [KafkaZkClient(connect, 10000, 10000) for _ in range(2)]
    authorizers = []
    for i, client in enumerate(clients, start=1):
        client.start()
        authorizers.append(AclAuthorizer(client, prefix=f"[Broker id={i}]"))
    yield authorizers
    for authorizer, client in zip(authorizers, clients, strict=True):
        authorizer.stop()
        client.close()


def reads(authorizer: AclAuthorizer, principal: str, topic: str = "orders") -> bool:
    return authorizer.authorize(principal, "127.0.0.1", Operation.READ, ResourceType.TOPIC, topic, "FETCH")


def test_an_acl_added_on_one_broker_is_followed_by_the_other(brokers: list[AclAuthorizer]) -> None:
    one, two = brokers
    for authorizer in brokers:
        authorizer.start()
    assert not reads(two, ALICE)
    one.add_acls(TOPIC, frozenset({AclEntry(ALICE, Permission.ALLOW, Operation.READ)}))
    assert reads(one, ALICE)
    wait_until(lambda: reads(two, ALICE), 15, "broker 2 to follow the new ACL")
    assert not reads(two, BOB)
    prefixed = ResourcePattern(ResourceType.TOPIC, "bob-", PatternType.PREFIXED)
    one.add_acls(prefixed, frozenset({AclEntry(BOB, Permission.ALLOW, Operation.ALL)}))
    wait_until(lambda: reads(two, BOB, "bob-orders"), 15, "broker 2 to follow the prefixed ACL")
    one.remove_acls(TOPIC)
    wait_until(lambda: not reads(two, ALICE), 15, "broker 2 to follow the removal")
    assert TOPIC not in two.acls() and prefixed in two.acls()


def test_acls_already_in_zookeeper_in_kafkas_format_are_loaded_at_start(
    brokers: list[AclAuthorizer], connect: str
) -> None:
    hosts, _, chroot = connect.partition("/")
    kazoo = KazooClient(hosts=hosts)
    kazoo.start()
    try:
        kazoo.create(f"/{chroot}/kafka-acl/Topic/orders", makepath=True, value=(
            b'{"version":1,"acls":[{"principal":"' + ALICE.encode() + b'","permissionType":"Allow",'
            b'"operation":"Read","host":"*"}]}'))
        kazoo.create(f"/{chroot}/kafka-acl/Topic/broken", b"not json", makepath=True)
    finally:
        kazoo.stop()
        kazoo.close()
    one = brokers[0]
    one.start()
    assert reads(one, ALICE) and not reads(one, BOB)
    assert set(one.acls()) == {TOPIC}  # the malformed znode is logged and skipped
