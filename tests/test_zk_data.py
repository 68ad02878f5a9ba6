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


def test_partition_state_is_kafkas_json() -> None:
    data = zk_data.encode_partition_state(2, 7, (2, 3, 1), 4)
    assert json.loads(data) == {"version": 1, "leader": 2, "leader_epoch": 7, "isr": [2, 3, 1], "controller_epoch": 4}
    assert b" " not in data  # Kafka writes compact JSON
    assert zk_data.decode_partition_state("/p", data, 5) == zk_data.PartitionStateZNode(2, 7, (2, 3, 1), 4, 5)
    assert json.loads(zk_data.encode_partition_state(-1, 0, [], 1))["isr"] == []


MALFORMED_STATES = [
    b"not json", b"[1]", b'{"leader":1,"leader_epoch":0,"controller_epoch":1}',
    b'{"leader":true,"leader_epoch":0,"isr":[1],"controller_epoch":1}',
    b'{"leader":1,"leader_epoch":0,"isr":[1,"2"],"controller_epoch":1}', b"", None,
]


@pytest.mark.parametrize("data", MALFORMED_STATES)
def test_malformed_partition_state_is_refused(data: bytes | None) -> None:
    with pytest.raises(zk_data.ZNodeDecodeError):
        zk_data.decode_partition_state("/p", data, 0)


def test_many_partition_states_decode_as_each_alone() -> None:
    good = [(f"/p{i}", zk_data.encode_partition_state(i, i + 1, (i, 9), 3), i) for i in range(5)]
    decoded = zk_data.decode_partition_states(good)
    assert decoded == [zk_data.decode_partition_state(*item) for item in good]
    # One malformed znode among them: it alone is reported, the others still decode.
    for bad in MALFORMED_STATES:
        mixed = [*good[:2], ("/bad", bad, 0), *good[2:]]
        decoded = zk_data.decode_partition_states(mixed)
        assert isinstance(decoded[2], zk_data.ZNodeDecodeError) and "/bad" in str(decoded[2])
        assert decoded[:2] + decoded[3:] == [zk_data.decode_partition_state(*item) for item in good]
