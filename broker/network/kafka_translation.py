"""Each Kafka API between kio's entities and the request layer's messages: the request's values
into the layer's request, the layer's answer into the values of Kafka's response (built for the
version asked with kafka_codec.build). No behaviour lives here: what to answer is the layer's."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from broker.api import messages as m
from broker.fetch_session import FINAL_EPOCH, INVALID_SESSION_ID, PartitionData
from broker.network.kafka_codec import api_version_ranges
from minikafka_protocol.common import TopicPartition

T = TypeVar("T")

ZERO_UUID = uuid.UUID(int=0)


@dataclass(frozen=True)
class Translation:
    request: Callable[[Any, int], object]  # kio's request and its version -> the layer's request
    response: Callable[[Any, int], dict[str, Any]]  # the layer's answer and the version -> the values


def _metadata_request(request: Any, version: int) -> m.MetadataRequest:
    if request.topics is None or (version == 0 and not request.topics):  # v0: an empty list is every topic
        return m.MetadataRequest(None)
    return m.MetadataRequest(tuple(t.name for t in request.topics if t.name is not None))


def _metadata_response(answer: m.MetadataResponse, version: int) -> dict[str, Any]:
    return {
        "throttle_time": 0, "cluster_id": answer.cluster_id, "controller_id": answer.controller_id,
        "brokers": [{"node_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack}
                    for b in answer.brokers],
        "topics": [{
            "error_code": t.error.code, "name": t.name, "topic_id": ZERO_UUID, "is_internal": t.is_internal,
            "partitions": [{
                "error_code": p.error.code, "partition_index": p.state.partition, "leader_id": p.state.leader,
                "leader_epoch": p.state.leader_epoch, "replica_nodes": list(p.state.replicas),
                "isr_nodes": list(p.state.isr), "offline_replicas": list(p.state.offline_replicas),
            } for p in t.partitions],
        } for t in answer.topics],
    }


def _ms(value: datetime.timedelta | int) -> int:
    return int(value.total_seconds() * 1000) if isinstance(value, datetime.timedelta) else int(value)


def _by_topic(results: dict[TopicPartition, T], partitions_key: str,
              partition: Callable[[int, T], dict[str, Any]], topic_key: str = "name") -> list[dict[str, Any]]:
    """Kafka's answers nest partitions under their topics; the request layer keys them by TopicPartition."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), result in results.items():
        topics.setdefault(topic, []).append(partition(index, result))
    return [{topic_key: topic, partitions_key: entries} for topic, entries in topics.items()]


def _partitions(topics: Iterable[Any], partitions: str, topic_key: str = "name") -> Iterable[tuple[str, Any]]:
    for topic in topics:
        for entry in getattr(topic, partitions):
            yield getattr(topic, topic_key), entry


def _produce_request(request: Any, version: int) -> m.ProduceRequest:
    return m.ProduceRequest(request.acks, _ms(request.timeout), {
        TopicPartition(topic, data.index): bytes(data.records or b"")
        for topic, data in _partitions(request.topic_data, "partition_data")})


def _produce_response(answer: m.ProduceResponse, version: int) -> dict[str, Any]:
    return {"throttle_time": 0, "responses": _by_topic(answer.partitions, "partition_responses", lambda index, r: {
        "index": index, "error_code": r.error.code, "base_offset": r.base_offset, "log_append_time": -1,
        "log_start_offset": r.log_start_offset, "record_errors": [], "error_message": r.message or None})}


def _fetch_request(request: Any, version: int) -> m.FetchRequest:
    return m.FetchRequest(
        replica_id=request.replica_id, max_wait_ms=_ms(request.max_wait), min_bytes=request.min_bytes,
        max_bytes=request.max_bytes,
        # Before v7 there are no sessions: every fetch is a full one.
        session_id=getattr(request, "session_id", INVALID_SESSION_ID),
        session_epoch=getattr(request, "session_epoch", FINAL_EPOCH),
        partitions={TopicPartition(topic, p.partition): PartitionData(p.fetch_offset, p.current_leader_epoch,
                                                                      p.partition_max_bytes)
                    for topic, p in _partitions(request.topics, "partitions", "topic")},
        forgotten=tuple(TopicPartition(topic, p)
                        for topic, p in _partitions(getattr(request, "forgotten_topics_data", ()), "partitions",
                                                    "topic")),
    )


def _fetch_response(answer: m.FetchResponse, version: int) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": answer.error.code, "session_id": answer.session_id,
            "responses": _by_topic(answer.partitions, "partitions", lambda index, r: {
                # No transactions: the last stable offset is the high watermark.
                "partition_index": index, "error_code": r.error.code, "high_watermark": r.high_watermark,
                "last_stable_offset": r.high_watermark, "log_start_offset": r.log_start_offset,
                "current_leader": {"leader_id": r.leader_id, "leader_epoch": r.leader_epoch},
                "aborted_transactions": [], "records": r.records}, topic_key="topic")}


def _list_offsets_request(request: Any, version: int) -> m.ListOffsetsRequest:
    return m.ListOffsetsRequest({
        TopicPartition(topic, p.partition_index): m.ListOffsetsPartition(getattr(p, "current_leader_epoch", -1),
                                                                         p.timestamp)
        for topic, p in _partitions(request.topics, "partitions")}, request.replica_id)


def _list_offsets_response(answer: m.ListOffsetsResponse, version: int) -> dict[str, Any]:
    return {"throttle_time": 0, "topics": _by_topic(answer.partitions, "partitions", lambda index, r: {
        "partition_index": index, "error_code": r.error.code, "timestamp": r.timestamp, "offset": r.offset,
        "leader_epoch": r.leader_epoch})}


def _init_producer_id_response(answer: m.InitProducerIdResponse, version: int) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": answer.error.code, "producer_id": answer.producer_id,
            "producer_epoch": answer.producer_epoch}


TRANSLATIONS: dict[int, Translation] = {
    0: Translation(_produce_request, _produce_response),
    1: Translation(_fetch_request, _fetch_response),
    2: Translation(_list_offsets_request, _list_offsets_response),
    3: Translation(_metadata_request, _metadata_response),
    22: Translation(lambda request, version: m.InitProducerIdRequest(request.transactional_id),
                    _init_producer_id_response),
}


def api_versions_response(version: int) -> dict[str, Any]:
    """ApiVersions is the listener's own: the versions this codec and translation really serve."""
    return {"error_code": 0, "api_keys": api_version_ranges(), "throttle_time": 0}

