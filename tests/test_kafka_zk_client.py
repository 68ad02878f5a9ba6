"""The pure parts of the ZooKeeper adapter."""

from __future__ import annotations

from broker.zk.kafka_zk_client import bounded_handshake_hosts, parse_zk_connect


def test_chroot_is_split_from_the_servers() -> None:
    assert parse_zk_connect("zk1:2181,zk2:2181/kafka/prod") == ("zk1:2181,zk2:2181", "/kafka/prod")
    assert parse_zk_connect("zk1:2181") == ("zk1:2181", None)


def test_each_handshake_is_bounded_whatever_the_session_timeout() -> None:
    # kazoo gives one handshake session_timeout / len(hosts): at most 2 s here.
    hosts = bounded_handshake_hosts("zk:2181", "/kafka", 18000)
    assert hosts == ",".join(["zk:2181"] * 9) + "/kafka"
    assert bounded_handshake_hosts("a:1,b:2,c:3", None, 6000) == "a:1,b:2,c:3"
    assert bounded_handshake_hosts("a:1", None, 1000) == "a:1"
