"""Each Kafka API between kio's entities and the request layer's messages: the request's values
into the layer's request, the layer's answer into the values of Kafka's response (built for the
version asked with kafka_codec.build). No behaviour lives here: what to answer is the layer's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from broker.api import messages as m
from broker.network.kafka_codec import api_version_ranges

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


TRANSLATIONS: dict[int, Translation] = {
    3: Translation(_metadata_request, _metadata_response),
}


def api_versions_response(version: int) -> dict[str, Any]:
    """ApiVersions is the listener's own: the versions this codec and translation really serve."""
    return {"error_code": 0, "api_keys": api_version_ranges(), "throttle_time": 0}

