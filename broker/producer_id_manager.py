"""Producer ids for idempotent producers, from blocks reserved in ZooKeeper."""

from __future__ import annotations

import logging
import threading

from broker.zk.kafka_zk_client import KafkaZkClient

log = logging.getLogger(__name__)


class ProducerIdManager:
    """Hands out producer ids from blocks reserved in ZooKeeper (Kafka's ZkProducerIdManager)."""

    def __init__(self, broker_id: int, zk: KafkaZkClient) -> None:
        self._broker_id = broker_id
        self._zk = zk
        self._lock = threading.Lock()
        self._next = 0
        self._last = -1

    def generate(self) -> int:
        with self._lock:
            if self._next > self._last:
                block = self._zk.allocate_producer_id_block(self._broker_id)
                log.info("Acquired new producerId block %d-%d by writing to Zk", block.first, block.last)
                self._next, self._last = block.first, block.last
            self._next += 1
            return self._next - 1
