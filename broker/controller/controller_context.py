"""ControllerContext: everything the active controller knows, owned by its event thread."""

from __future__ import annotations

from dataclasses import dataclass, field

from broker.controller.partition_leader_election import LeaderAndIsr
from broker.log import log_config
from broker.zk.zk_data import BrokerInfo
from minikafka_protocol.common import TopicPartition


@dataclass
class ControllerContext:
    epoch: int = 0
    epoch_zk_version: int = -1
    live_brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    shutting_down_broker_ids: set[int] = field(default_factory=set)
    topic_ids: dict[str, str] = field(default_factory=dict)
    topic_configs: dict[str, dict[str, str]] = field(default_factory=dict)
    # Replica assignment; the first replica is the preferred one.
    assignments: dict[TopicPartition, tuple[int, ...]] = field(default_factory=dict)
    # Leader, leader epoch, ISR and partition epoch (zk version), as last written or read.
    leadership: dict[TopicPartition, LeaderAndIsr] = field(default_factory=dict)
    topics_being_deleted: set[str] = field(default_factory=set)

    def live_broker_epochs(self) -> dict[int, int]:
        return {b: info.broker_epoch for b, info in self.live_brokers.items()}

    def live_broker_ids(self) -> set[int]:
        """Live and not shutting down: the brokers that may lead."""
        return set(self.live_brokers) - self.shutting_down_broker_ids

    def live_or_shutting_down_broker_ids(self) -> set[int]:
        return set(self.live_brokers)

    @property
    def topics(self) -> set[str]:
        return {t for t, _ in self.assignments}

    def partitions_of(self, topic: str) -> list[TopicPartition]:
        return sorted(tp for tp in self.assignments if tp[0] == topic)

    def partitions_led_by(self, broker_id: int) -> list[TopicPartition]:
        return sorted(tp for tp, state in self.leadership.items() if state.leader == broker_id)

    def partitions_on_broker(self, broker_id: int) -> list[TopicPartition]:
        return sorted(tp for tp, replicas in self.assignments.items() if broker_id in replicas)

    def unclean_election_enabled(self, topic: str, broker_default: bool) -> bool:
        value = self.topic_configs.get(topic, {}).get(log_config.UNCLEAN_LEADER_ELECTION_ENABLE)
        if value is None:
            return broker_default
        try:
            return bool(log_config.parse(log_config.UNCLEAN_LEADER_ELECTION_ENABLE, value))
        except ValueError:
            return broker_default  # only a foreign write to ZooKeeper gets past CreateTopics' check

    def offline_partitions(self) -> list[TopicPartition]:
        live = self.live_or_shutting_down_broker_ids()
        return sorted(
            tp for tp in self.assignments
            if tp[0] not in self.topics_being_deleted
            and (tp not in self.leadership or self.leadership[tp].leader not in live)
        )
