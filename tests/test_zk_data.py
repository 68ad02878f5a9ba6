"""The bytes Kafka writes in ZooKeeper, and refusing what it would not write."""

from __future__ import annotations

import json

import pytest

from broker.zk import zk_data
from broker.zk.zk_data import BrokerInfo, ZNodeDecodeError


def test_controller_znode_is_kafkas_json() -> None:
    assert zk_data.encode_controller(3, timestamp_ms=1710691902625) == (
        b'{"version":1,"brokerid":3,"timestamp":"1710691902625"}'
    )
    assert zk_data.decode_controller(b'{"version":1,"brokerid":3,"timestamp":"1"}') == 3


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"3", b"[]", b'{"version":1}', b'{"brokerid":"3"}', b'{"brokerid":true}', b"\xff"]
)
def test_malformed_controller_znode_is_refused(data: bytes) -> None:
    with pytest.raises(ZNodeDecodeError):
        zk_data.decode_controller(data)


def test_controller_epoch_is_plain_decimal_text() -> None:
    assert zk_data.encode_controller_epoch(5) == b"5"
    assert zk_data.decode_controller_epoch(b"5") == 5
    for bad in (b"", b"-1", b"five", b'{"epoch":5}'):
        with pytest.raises(ZNodeDecodeError):
            zk_data.decode_controller_epoch(bad)


def test_broker_registration_is_version_5() -> None:
    info = BrokerInfo(1, ("PLAINTEXT://broker1:9092",), rack=None,
                      security_protocol_map={"PLAINTEXT": "PLAINTEXT"}, timestamp_ms=1710691902625)
    assert json.loads(zk_data.encode_broker_info(info)) == {
        "version": 5,
        "host": "broker1",
        "port": 9092,
        "jmx_port": -1,
        "timestamp": "1710691902625",
        "endpoints": ["PLAINTEXT://broker1:9092"],
        "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"},
        "rack": None,
        "features": {},
    }
    decoded = zk_data.decode_broker_info(1, zk_data.encode_broker_info(info), czxid=42)
    assert decoded == BrokerInfo(1, ("PLAINTEXT://broker1:9092",), None, {"PLAINTEXT": "PLAINTEXT"},
                                 1710691902625, broker_epoch=42)
    assert decoded.endpoint() == ("broker1", 9092)


def test_registration_without_a_plaintext_listener_has_no_top_level_host() -> None:
    info = BrokerInfo(2, ("SSL://h:9093",), security_protocol_map={"SSL": "SSL"}, timestamp_ms=1)
    encoded = json.loads(zk_data.encode_broker_info(info))
    assert (encoded["host"], encoded["port"]) == (None, -1)


@pytest.mark.parametrize(
    "data",
    [b'{"version":5,"host":', b"[1]", b'{"version":5,"endpoints":[]}', b'{"version":5,"endpoints":["nohost"]}',
     b'{"endpoints":["PLAINTEXT://h:1"]}', b'{"version":5,"endpoints":["PLAINTEXT://h:1"],'
     b'"listener_security_protocol_map":[]}'],
)
def test_malformed_broker_registration_is_refused(data: bytes) -> None:
    with pytest.raises(ZNodeDecodeError):
        zk_data.decode_broker_info(9, data, czxid=1)


def test_cluster_id_is_kafkas_uuid_in_url_safe_base64() -> None:
    cluster_id = zk_data.new_uuid()
    assert len(cluster_id) == 22 and "=" not in cluster_id and "+" not in cluster_id and "/" not in cluster_id
    assert zk_data.encode_cluster_id(cluster_id) == f'{{"version":"1","id":"{cluster_id}"}}'.encode()
    assert zk_data.decode_cluster_id(zk_data.encode_cluster_id(cluster_id)) == cluster_id


def test_broker_ids_are_decimal_children() -> None:
    assert zk_data.parse_broker_id("12") == 12
    assert zk_data.parse_broker_id("x") is None
    assert zk_data.parse_broker_id("-1") is None
