"""The creation of ``__consumer_offsets`` on the first FindCoordinator."""

from __future__ import annotations

import logging
import threading

from kazoo.exceptions import NodeExistsError

from broker.replica_assignment import assign_replicas_to_brokers
from broker.zk import zk_data
from broker.zk.kafka_zk_client import KafkaZkClient
from minikafka_protocol.group import OFFSETS_TOPIC

log = logging.getLogger(__name__)


class OffsetsTopicCreator:
    """Creates ``__consumer_offsets`` once, as Kafka's broker does on the first FindCoordinator.

    Kafka's topic configs for it: compaction, offsets.topic.segment.bytes and the producer's
    compression. minikafka does not compact logs, so it also keeps them forever (retention.ms -1):
    time-based deletion would drop the committed offsets that compaction keeps."""

    def __init__(self, zk: KafkaZkClient, num_partitions: int, replication_factor: int, segment_bytes: int) -> None:
        self._zk = zk
        self._num_partitions = num_partitions
        self._replication_factor = replication_factor
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._created = False

    def ensure(self, live_brokers: list[int]) -> None:
        with self._lock:
            if self._created or not live_brokers:
                return
            replication = self._replication_factor
            if len(live_brokers) < replication:
                log.warning(
                    "Creating %s with replication factor %d: only %d brokers are alive, fewer than "
                    "offsets.topic.replication.factor=%d", OFFSETS_TOPIC, len(live_brokers), len(live_brokers),
                    replication,
                )
                replication = len(live_brokers)
            assignment = assign_replicas_to_brokers(sorted(live_brokers), self._num_partitions, replication)
            configs = {"cleanup.policy": "compact", "compression.type": "producer",
                       "segment.bytes": str(self._segment_bytes), "retention.ms": "-1"}
            try:
                self._zk.create_topic(
                    zk_data.TopicAssignment(OFFSETS_TOPIC, {p: tuple(r) for p, r in assignment.items()},
                                            zk_data.new_uuid()),
                    configs,
                )
                log.info("Created topic %s with %d partitions and replication factor %d", OFFSETS_TOPIC,
                         self._num_partitions, replication)
            except NodeExistsError:
                pass  # another broker was first
            self._created = True
