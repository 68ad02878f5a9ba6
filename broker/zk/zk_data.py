"""Kafka's ZooKeeper layout: paths and the exact bytes Kafka writes there (ZkData.scala).

Pure code: encoders return bytes, decoders raise ZNodeDecodeError on anything Kafka would not
have written, so the callers can log malformed data and carry on.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from minikafka_protocol.security import endpoint_address

CONTROLLER_PATH = "/controller"
CONTROLLER_EPOCH_PATH = "/controller_epoch"
BROKER_IDS_PATH = "/brokers/ids"
BROKER_TOPICS_PATH = "/brokers/topics"
BROKER_SEQ_ID_PATH = "/brokers/seqid"
CLUSTER_ID_PATH = "/cluster/id"
DELETE_TOPICS_PATH = "/admin/delete_topics"
ISR_CHANGE_NOTIFICATION_PATH = "/isr_change_notification"
CONFIG_TOPICS_PATH = "/config/topics"
CONFIG_CHANGES_PATH = "/config/changes"

# Created at start-up by every broker, as Kafka's KafkaZkClient.createTopLevelPaths does.
PERSISTENT_PATHS = (
    BROKER_IDS_PATH,
    BROKER_TOPICS_PATH,
    BROKER_SEQ_ID_PATH,
    DELETE_TOPICS_PATH,
    ISR_CHANGE_NOTIFICATION_PATH,
    CONFIG_TOPICS_PATH,
    CONFIG_CHANGES_PATH,
    "/cluster",
)

# KafkaController.InitialControllerEpoch and InitialControllerEpochZkVersion.
INITIAL_CONTROLLER_EPOCH = 0
INITIAL_CONTROLLER_EPOCH_ZK_VERSION = 0


class ZNodeDecodeError(ValueError):
    """The znode holds data Kafka would not have written."""


def now_ms() -> int:
    return int(time.time() * 1000)


def _json(value: dict[str, Any]) -> bytes:
    # Kafka writes compact JSON.
    return json.dumps(value, separators=(",", ":")).encode()


def _load_object(path: str, data: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads((data or b"").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ZNodeDecodeError(f"{path} does not hold JSON ({e}): {data!r}") from None
    if not isinstance(value, dict):
        raise ZNodeDecodeError(f"{path} holds {type(value).__name__}, not a JSON object: {data!r}")
    return value


def _int_field(path: str, obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ZNodeDecodeError(f"{path}: field '{key}' is {value!r}, not an integer")
    return value


# /controller ------------------------------------------------------------------------------


def encode_controller(broker_id: int, timestamp_ms: int | None = None) -> bytes:
    stamp = now_ms() if timestamp_ms is None else timestamp_ms
    return _json({"version": 1, "brokerid": broker_id, "timestamp": str(stamp)})


def decode_controller(data: bytes | None) -> int:
    """The controller's broker id."""
    return _int_field(CONTROLLER_PATH, _load_object(CONTROLLER_PATH, data), "brokerid")


# /controller_epoch ------------------------------------------------------------------------


def encode_controller_epoch(epoch: int) -> bytes:
    return str(epoch).encode()


def decode_controller_epoch(data: bytes | None) -> int:
    text = (data or b"").decode("utf-8", errors="replace").strip()
    if not text.isdigit():
        raise ZNodeDecodeError(f"{CONTROLLER_EPOCH_PATH} holds {data!r}, not a decimal epoch")
    return int(text)


# /brokers/ids/<id> ------------------------------------------------------------------------


def broker_id_path(broker_id: int) -> str:
    return f"{BROKER_IDS_PATH}/{broker_id}"


@dataclass(frozen=True)
class BrokerInfo:
    """A broker registration (version 5 of Kafka's BrokerIdZNode) and its broker epoch."""

    broker_id: int
    endpoints: tuple[str, ...]  # "PLAINTEXT://host:port"
    rack: str | None = None
    security_protocol_map: dict[str, str] = field(default_factory=dict)
    timestamp_ms: int = 0
    # The czxid of the znode; -1 until it is read back from ZooKeeper.
    broker_epoch: int = -1

    def plaintext_host_port(self) -> tuple[str | None, int]:
        """Kafka's top-level host and port: those of the PLAINTEXT endpoint, if any."""
        for endpoint in self.endpoints:
            name, _, address = endpoint.partition("://")
            if self.security_protocol_map.get(name, name) == "PLAINTEXT":
                host, _, port = address.rpartition(":")
                return host.strip("[]"), int(port)
        return None, -1

    def endpoint(self, listener_name: str | None = None) -> tuple[str, int]:
        """Where clients reach this broker: its endpoint on `listener_name`, else its first."""
        found = endpoint_address(self.endpoints, listener_name) if listener_name else None
        if found is not None:
            return found
        _, _, address = self.endpoints[0].partition("://")
        host, _, port = address.rpartition(":")
        return host.strip("[]"), int(port)


def encode_broker_info(info: BrokerInfo) -> bytes:
    host, port = info.plaintext_host_port()
    protocol_map = info.security_protocol_map or {
        e.partition("://")[0]: e.partition("://")[0] for e in info.endpoints
    }
    return _json(
        {
            "version": 5,
            "host": host,
            "port": port,
            "jmx_port": -1,
            "timestamp": str(info.timestamp_ms or now_ms()),
            "endpoints": list(info.endpoints),
            "listener_security_protocol_map": protocol_map,
            "rack": info.rack,
            "features": {},
        }
    )


def decode_broker_info(broker_id: int, data: bytes | None, czxid: int) -> BrokerInfo:
    path = broker_id_path(broker_id)
    obj = _load_object(path, data)
    _int_field(path, obj, "version")
    endpoints = obj.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints or not all(
        isinstance(e, str) and "://" in e and e.rpartition(":")[2].isdigit() for e in endpoints
    ):
        raise ZNodeDecodeError(f"{path}: 'endpoints' is {endpoints!r}, not a list of NAME://host:port")
    protocol_map = obj.get("listener_security_protocol_map", {})
    if not isinstance(protocol_map, dict):
        raise ZNodeDecodeError(f"{path}: 'listener_security_protocol_map' is not an object")
    rack = obj.get("rack")
    timestamp = obj.get("timestamp", "0")
    return BrokerInfo(
        broker_id=broker_id,
        endpoints=tuple(endpoints),
        rack=rack if isinstance(rack, str) else None,
        security_protocol_map={str(k): str(v) for k, v in protocol_map.items()},
        timestamp_ms=int(timestamp) if str(timestamp).isdigit() else 0,
        broker_epoch=czxid,
    )


def parse_broker_id(child: str) -> int | None:
    return int(child) if child.isdigit() else None


# /cluster/id ------------------------------------------------------------------------------


def new_uuid() -> str:
    """Kafka's Uuid.randomUuid().toString(): URL-safe base64 of 16 bytes, unpadded."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def encode_cluster_id(cluster_id: str) -> bytes:
    return _json({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes | None) -> str:
    obj = _load_object(CLUSTER_ID_PATH, data)
    cluster_id = obj.get("id")
    if not isinstance(cluster_id, str) or not cluster_id:
        raise ZNodeDecodeError(f"{CLUSTER_ID_PATH}: 'id' is {cluster_id!r}")
    return cluster_id


# /brokers/topics/<topic> ------------------------------------------------------------------


def topic_path(topic: str) -> str:
    return f"{BROKER_TOPICS_PATH}/{topic}"


def topic_partitions_path(topic: str) -> str:
    return f"{topic_path(topic)}/partitions"


def partition_path(topic: str, partition: int) -> str:
    return f"{topic_partitions_path(topic)}/{partition}"


def partition_state_path(topic: str, partition: int) -> str:
    return f"{partition_path(topic, partition)}/state"


def topic_config_path(topic: str) -> str:
    return f"{CONFIG_TOPICS_PATH}/{topic}"


def delete_topic_path(topic: str) -> str:
    return f"{DELETE_TOPICS_PATH}/{topic}"


@dataclass(frozen=True)
class TopicAssignment:
    """The replica assignment of a topic; the first replica of each list is the preferred one."""

    topic: str
    partitions: dict[int, tuple[int, ...]]
    topic_id: str


def encode_topic_assignment(assignment: TopicAssignment) -> bytes:
    return _json(
        {
            "version": 3,
            "partitions": {str(p): list(r) for p, r in sorted(assignment.partitions.items())},
            "adding_replicas": {},
            "removing_replicas": {},
            "topic_id": assignment.topic_id,
        }
    )


def decode_topic_assignment(topic: str, data: bytes | None) -> TopicAssignment:
    path = topic_path(topic)
    obj = _load_object(path, data)
    partitions = obj.get("partitions")
    if not isinstance(partitions, dict):
        raise ZNodeDecodeError(f"{path}: 'partitions' is not an object")
    decoded: dict[int, tuple[int, ...]] = {}
    for key, replicas in partitions.items():
        if not str(key).isdigit() or not isinstance(replicas, list) or not all(
            isinstance(r, int) and not isinstance(r, bool) for r in replicas
        ):
            raise ZNodeDecodeError(f"{path}: partition {key!r} has replicas {replicas!r}")
        decoded[int(key)] = tuple(replicas)
    topic_id = obj.get("topic_id")
    return TopicAssignment(topic, decoded, topic_id if isinstance(topic_id, str) else "")


# /brokers/topics/<topic>/partitions/<partition>/state --------------------------------------


@dataclass(frozen=True)
class PartitionStateZNode:
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int
    zk_version: int = -1


def encode_partition_state(leader: int, leader_epoch: int, isr: tuple[int, ...] | list[int],
                           controller_epoch: int) -> bytes:
    # Formatted by hand, the same bytes json.dumps gives: a mass election encodes tens of
    # thousands of these, and this is several times faster.
    return b'{"version":1,"leader":%d,"leader_epoch":%d,"isr":[%s],"controller_epoch":%d}' % (
        leader, leader_epoch, b",".join(b"%d" % r for r in isr), controller_epoch
    )


def decode_partition_states(
    items: list[tuple[str, bytes | None, int]],
) -> list[PartitionStateZNode | ZNodeDecodeError]:
    """Many (path, data, zk version) at once, for a controller loading every partition: one
    JSON parse of them all, each then checked as decode_partition_state does; if the joined
    parse fails (some znode is not JSON), each is decoded alone to say which."""
    try:
        objects = json.loads(b"[" + b",".join(data or b"null" for _, data, _ in items) + b"]")
    except (UnicodeDecodeError, json.JSONDecodeError):
        objects = None
    if objects is None or len(objects) != len(items):
        objects = [None] * len(items)
    results: list[PartitionStateZNode | ZNodeDecodeError] = []
    for (path, data, zk_version), obj in zip(items, objects, strict=True):
        state = _well_formed_partition_state(obj, zk_version) if type(obj) is dict else None
        if state is not None:
            results.append(state)
            continue
        try:
            results.append(decode_partition_state(path, data, zk_version))
        except ZNodeDecodeError as e:
            results.append(e)
    return results


def _well_formed_partition_state(obj: dict[str, Any], zk_version: int) -> PartitionStateZNode | None:
    """The common case checked in one go (a new controller decodes every partition's state);
    None sends anything unusual down the careful path, which says what is wrong."""
    leader, leader_epoch, isr, controller_epoch = (
        obj.get("leader"), obj.get("leader_epoch"), obj.get("isr"), obj.get("controller_epoch")
    )
    if (type(leader) is int and type(leader_epoch) is int and type(controller_epoch) is int and type(isr) is list
            and all(type(r) is int for r in isr)):
        return PartitionStateZNode(leader, leader_epoch, tuple(isr), controller_epoch, zk_version)
    return None


def decode_partition_state(path: str, data: bytes | None, zk_version: int) -> PartitionStateZNode:
    obj = _load_object(path, data)
    state = _well_formed_partition_state(obj, zk_version)
    if state is not None:
        return state
    isr = obj.get("isr")
    if not isinstance(isr, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in isr):
        raise ZNodeDecodeError(f"{path}: 'isr' is {isr!r}")
    return PartitionStateZNode(
        leader=_int_field(path, obj, "leader"),
        leader_epoch=_int_field(path, obj, "leader_epoch"),
        isr=tuple(isr),
        controller_epoch=_int_field(path, obj, "controller_epoch"),
        zk_version=zk_version,
    )


# /config/topics/<topic> -------------------------------------------------------------------


def encode_topic_config(config: dict[str, str]) -> bytes:
    return _json({"version": 1, "config": dict(sorted(config.items()))})


def decode_topic_config(topic: str, data: bytes | None) -> dict[str, str]:
    path = topic_config_path(topic)
    obj = _load_object(path, data)
    config = obj.get("config", {})
    if not isinstance(config, dict):
        raise ZNodeDecodeError(f"{path}: 'config' is not an object")
    return {str(k): str(v) for k, v in config.items()}


# /admin/preferred_replica_election ----------------------------------------------------------

PREFERRED_REPLICA_ELECTION_PATH = "/admin/preferred_replica_election"


def encode_partitions_list(partitions: list[tuple[str, int]]) -> bytes:
    return _json({"version": 1, "partitions": [{"topic": t, "partition": p} for t, p in partitions]})


def decode_partitions_list(path: str, data: bytes | None) -> list[tuple[str, int]]:
    obj = _load_object(path, data)
    items = obj.get("partitions")
    if not isinstance(items, list):
        raise ZNodeDecodeError(f"{path}: 'partitions' is not a list")
    result = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("topic"), str):
            raise ZNodeDecodeError(f"{path}: malformed entry {item!r}")
        result.append((item["topic"], _int_field(path, item, "partition")))
    return result


# /latest_producer_id_block -------------------------------------------------------------------

PRODUCER_ID_BLOCK_PATH = "/latest_producer_id_block"
PRODUCER_ID_BLOCK_SIZE = 1000


@dataclass(frozen=True)
class ProducerIdBlock:
    broker_id: int
    first: int
    last: int


def encode_producer_id_block(block: ProducerIdBlock) -> bytes:
    # Kafka's ProducerIdBlockZNode writes the bounds as strings.
    return _json(
        {"version": 1, "broker": block.broker_id, "block_start": str(block.first), "block_end": str(block.last)}
    )


def decode_producer_id_block(data: bytes | None) -> ProducerIdBlock:
    obj = _load_object(PRODUCER_ID_BLOCK_PATH, data)
    try:
        return ProducerIdBlock(
            _int_field(PRODUCER_ID_BLOCK_PATH, obj, "broker"), int(obj["block_start"]), int(obj["block_end"])
        )
    except (KeyError, TypeError, ValueError):
        raise ZNodeDecodeError(f"{PRODUCER_ID_BLOCK_PATH}: no block_start and block_end in {data!r}") from None
