"""The Admin gRPC service: requests in, Kafka error codes out."""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from kazoo.exceptions import NodeExistsError

from broker.config import KafkaConfig
from broker.controller.controller import KafkaController
from broker.log import log_config
from broker.metadata_cache import MetadataCache, MetadataSnapshot
from broker.replica_assignment import InvalidPartitions, InvalidReplicationFactor, assign_replicas_to_brokers
from broker.replica_manager import ReplicaManager
from broker.topic_name import InvalidTopicName, validate_topic_name
from broker.zk import zk_data
from broker.zk.kafka_zk_client import KafkaZkClient
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)

# How long a request may wait for ZooKeeper before it is answered with an error.
ZK_READ_DEADLINE_S = 3.0


INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC})
DEFAULT_TIMEOUT_MS = 30000


class AdminService(kafka_pb2_grpc.AdminServicer):
    def __init__(
        self, config: KafkaConfig, zk: KafkaZkClient, cluster_id: str, metadata: MetadataCache,
        controller: KafkaController, replica_manager: ReplicaManager,
        group_metrics: Callable[[], dict[str, int]] = dict,
    ) -> None:
        self._replicas = replica_manager
        self._group_metrics = group_metrics
        self._config = config
        self._broker_id = config.broker_id
        self._zk = zk
        self._cluster_id = cluster_id
        self._metadata = metadata
        self._controller = controller

    def BrokerMetrics(
        self, request: kafka_pb2.BrokerMetricsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.BrokerMetricsResponse:
        active = self._controller.is_active
        snapshot = self._metadata.snapshot()
        counters = self._replicas.counters
        hosted = self._replicas.partitions()
        sessions, cached, evictions, incremental = self._replicas.fetch_session_metrics()
        return kafka_pb2.BrokerMetricsResponse(
            broker_id=self._broker_id,
            active_controller_count=int(active),
            # As Kafka: only the controller reports offline partitions.
            offline_partitions_count=sum(1 for p in snapshot.partitions.values() if p.leader < 0) if active else 0,
            unclean_leader_elections=self._controller.unclean_elections,
            under_replicated_partitions=len(self._replicas.under_replicated_partitions()),
            leader_count=len(self._replicas.leader_partitions()),
            partition_count=len(hosted),
            isr_shrinks=counters.isr_shrinks,
            isr_expands=counters.isr_expands,
            failed_isr_updates=counters.failed_isr_updates,
            records_truncated=counters.records_truncated,
            acknowledged_records_truncated=counters.acknowledged_records_truncated,
            truncations=list(counters.truncations),
            **self._group_metrics(),
            incremental_fetch_sessions=sessions,
            incremental_fetch_partitions_cached=cached,
            incremental_fetch_session_evictions=evictions,
            incremental_fetches=incremental,
        )

    def DescribeCluster(
        self, request: kafka_pb2.DescribeClusterRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DescribeClusterResponse:
        # Read from ZooKeeper at request time: every broker sees the same truth. The metadata
        # cache that Kafka answers from arrives with UpdateMetadata.
        try:
            snapshot = self._zk.describe_cluster(self._cluster_id, deadline_s=ZK_READ_DEADLINE_S)
        except Exception as e:
            log.warning("DescribeCluster failed: %s", e or type(e).__name__)
            return kafka_pb2.DescribeClusterResponse(
                error_code=Errors.REQUEST_TIMED_OUT.code,
                error_message=f"broker {self._broker_id} cannot reach ZooKeeper",
                responding_broker_id=self._broker_id,
            )
        response = kafka_pb2.DescribeClusterResponse(
            error_code=Errors.NONE.code,
            cluster_id=snapshot.cluster_id or "",
            controller_id=snapshot.controller_id,
            controller_epoch=snapshot.controller_epoch,
            responding_broker_id=self._broker_id,
        )
        for broker in snapshot.brokers:
            host, port = broker.endpoint()
            node = response.brokers.add(
                broker_id=broker.broker_id,
                host=host,
                port=port,
                broker_epoch=broker.broker_epoch,
                endpoints=list(broker.endpoints),
            )
            if broker.rack is not None:
                node.rack = broker.rack
        return response

    # -- Metadata: any broker, from its cache --------------------------------------------------

    def Metadata(self, request: kafka_pb2.MetadataRequest, context: grpc.ServicerContext) -> kafka_pb2.MetadataResponse:
        snapshot = self._metadata.snapshot()
        by_topic = snapshot.by_topic
        names = list(request.topics) or sorted(by_topic)
        response = kafka_pb2.MetadataResponse(
            cluster_id=self._cluster_id, controller_id=snapshot.controller_id, responding_broker_id=self._broker_id
        )
        for broker in sorted(snapshot.brokers.values(), key=lambda b: b.broker_id):
            node = response.brokers.add(
                broker_id=broker.broker_id, host=broker.host, port=broker.port, broker_epoch=broker.broker_epoch,
                endpoints=list(broker.endpoints),
            )
            if broker.rack is not None:
                node.rack = broker.rack
        configs = self._topic_configs(names) if request.topics else {}
        for name in names:
            partitions = by_topic.get(name)
            topic = response.topics.add(name=name, is_internal=name in INTERNAL_TOPICS)
            if partitions is None:
                topic.error_code = Errors.UNKNOWN_TOPIC_OR_PARTITION.code
                continue
            topic.configs.update(configs.get(name, {}))
            for p in partitions:
                topic.partitions.add(
                    error_code=(Errors.LEADER_NOT_AVAILABLE if p.leader < 0 else Errors.NONE).code,
                    partition=p.partition, leader=p.leader, leader_epoch=p.leader_epoch, replicas=list(p.replicas),
                    isr=list(p.isr), offline_replicas=list(p.offline_replicas),
                )
        return response

    def _topic_configs(self, topics: list[str]) -> dict[str, dict[str, str]]:
        try:
            return self._zk.retry(lambda: self._zk.get_topic_configs(topics), deadline_s=ZK_READ_DEADLINE_S)
        except Exception:
            return {}

    # -- controller-only requests --------------------------------------------------------------

    def CreateTopics(
        self, request: kafka_pb2.CreateTopicsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.CreateTopicsResponse:
        """Kafka's ZooKeeper-mode AdminManager: validate, write the assignment, and wait until
        the controller has elected every partition's leader (or the request times out)."""
        response = kafka_pb2.CreateTopicsResponse()
        created: list[kafka_pb2.CreatableTopicResult] = []
        live = sorted(self._metadata.snapshot().brokers)
        seen: set[str] = set()
        for topic in request.topics:
            result = response.topics.add(name=topic.name)
            error, message = self._create_topic(topic, live, request.validate_only, duplicate=topic.name in seen)
            seen.add(topic.name)
            result.error_code, result.error_message = error.code, message
            if error is Errors.NONE:
                result.num_partitions = (
                    topic.num_partitions if topic.num_partitions > 0 else self._config.num_partitions
                )
                result.replication_factor = (
                    topic.replication_factor if topic.replication_factor > 0
                    else self._config.default_replication_factor
                )
                if not request.validate_only:
                    created.append(result)
        if created:
            names = {r.name for r in created}
            timeout = (request.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
            if not self._metadata.wait_for(lambda s: all(_has_leaders(s, n) for n in names), timeout):
                for result in created:
                    if not _has_leaders(self._metadata.snapshot(), result.name):
                        result.error_code = Errors.REQUEST_TIMED_OUT.code
                        result.error_message = "Topic created, but not every partition had a leader within the timeout"
        return response

    def _create_topic(
        self, topic: kafka_pb2.CreatableTopic, live: list[int], validate_only: bool, duplicate: bool
    ) -> tuple[Errors, str]:
        if not self._controller.is_active:
            return Errors.NOT_CONTROLLER, f"Broker {self._broker_id} is not the controller"
        if duplicate:
            return Errors.INVALID_REQUEST, f"Topic '{topic.name}' appears twice in the request"
        try:
            validate_topic_name(topic.name)
        except InvalidTopicName as e:
            return Errors.INVALID_TOPIC_EXCEPTION, str(e)
        partitions = topic.num_partitions if topic.num_partitions != -1 else self._config.num_partitions
        replication = topic.replication_factor if topic.replication_factor != -1 else (
            self._config.default_replication_factor
        )
        try:
            log_config.validate(topic.configs)
        except ValueError as e:
            return Errors.INVALID_CONFIG, str(e)
        try:
            assignment = assign_replicas_to_brokers(live, partitions, replication)
        except InvalidPartitions as e:
            return Errors.INVALID_PARTITIONS, str(e)
        except InvalidReplicationFactor as e:
            return Errors.INVALID_REPLICATION_FACTOR, str(e)
        if self._zk.exists(zk_data.topic_path(topic.name)) is not None:
            return Errors.TOPIC_ALREADY_EXISTS, f"Topic '{topic.name}' already exists."
        if validate_only:
            return Errors.NONE, ""
        try:
            self._zk.create_topic(
                zk_data.TopicAssignment(
                    topic.name, {p: tuple(r) for p, r in assignment.items()}, zk_data.new_uuid()
                ),
                dict(topic.configs),
            )
        except NodeExistsError:
            return Errors.TOPIC_ALREADY_EXISTS, f"Topic '{topic.name}' already exists."
        log.info("[Admin id=%d] Created topic %s with assignment %s", self._broker_id, topic.name, assignment)
        return Errors.NONE, ""

    def DeleteTopics(
        self, request: kafka_pb2.DeleteTopicsRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.DeleteTopicsResponse:
        response = kafka_pb2.DeleteTopicsResponse()
        snapshot = self._metadata.snapshot()
        marked = []
        for name in request.topic_names:
            result = response.responses.add(name=name)
            if not self._controller.is_active:
                result.error_code = Errors.NOT_CONTROLLER.code
            elif not snapshot.partitions_of(name):
                result.error_code = Errors.UNKNOWN_TOPIC_OR_PARTITION.code
                result.error_message = f"Topic '{name}' does not exist."
            else:
                self._zk.mark_topic_for_deletion(name)
                marked.append(result)
        if marked:
            timeout = (request.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
            names = {r.name for r in marked}
            if not self._metadata.wait_for(lambda s: not any(s.partitions_of(n) for n in names), timeout):
                for result in marked:
                    if self._metadata.snapshot().partitions_of(result.name):
                        result.error_code = Errors.REQUEST_TIMED_OUT.code
        return response

    def ElectLeaders(
        self, request: kafka_pb2.ElectLeadersRequest, context: grpc.ServicerContext
    ) -> kafka_pb2.ElectLeadersResponse:
        if not self._controller.is_active:
            return kafka_pb2.ElectLeadersResponse(error_code=Errors.NOT_CONTROLLER.code)
        if request.election_type != kafka_pb2.PREFERRED:
            return kafka_pb2.ElectLeadersResponse(error_code=Errors.INVALID_REQUEST.code)
        partitions = [(tp.topic, tp.partition) for tp in request.partitions] or None
        timeout = (request.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
        error, results = self._controller.elect_preferred_leaders(partitions, timeout)
        response = kafka_pb2.ElectLeadersResponse(error_code=error.code)
        for (topic, partition), error in sorted(results.items()):
            response.results.add(topic=topic, partition=partition, error_code=error.code, error_message=error.message)
        return response


def _has_leaders(snapshot: MetadataSnapshot, topic: str) -> bool:
    partitions = snapshot.partitions_of(topic)
    return bool(partitions) and all(p.leader >= 0 for p in partitions)
