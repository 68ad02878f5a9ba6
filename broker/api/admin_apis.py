"""The admin APIs: Metadata from any broker's cache, the cluster as ZooKeeper has it, topic
creation and deletion and leader elections by the controller, and the broker's metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

from kazoo.exceptions import NodeExistsError

from broker.api import messages as m
from broker.api.authorization import ALLOW_EVERYTHING, Authorizer, allowed, cluster_allowed
from broker.api.context import RequestContext
from broker.api.futures import then
from broker.api.kafka_apis import Handler
from broker.api.timer import RequestTimer
from broker.authorizer.acl import Operation, ResourceType
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

log = logging.getLogger(__name__)

# How long a request may wait for ZooKeeper before it is answered with an error.
ZK_READ_DEADLINE_S = 3.0
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC})
DEFAULT_TIMEOUT_MS = 30000


class AdminApis:
    def __init__(
        self, config: KafkaConfig, zk: KafkaZkClient, cluster_id: str, metadata: MetadataCache,
        controller: KafkaController, replica_manager: ReplicaManager,
        timer: RequestTimer, group_metrics: Callable[[], dict[str, int]] = dict,
        authorizer: Authorizer = ALLOW_EVERYTHING,
    ) -> None:
        self._authorizer = authorizer
        self._timer = timer
        self._replicas = replica_manager
        self._group_metrics = group_metrics
        self._config = config
        self._broker_id = config.broker_id
        self._zk = zk
        self._cluster_id = cluster_id
        self._metadata = metadata
        self._controller = controller

    def handlers(self) -> dict[type, Handler]:
        return {
            m.MetadataRequest: self.handle_metadata,
            m.CreateTopicsRequest: self.handle_create_topics,
            m.DeleteTopicsRequest: self.handle_delete_topics,
            m.ElectLeadersRequest: self.handle_elect_leaders,
            m.DescribeClusterRequest: self.handle_describe_cluster,
            m.BrokerMetricsRequest: self.handle_broker_metrics,
        }

    def handle_broker_metrics(
        self, context: RequestContext, request: m.BrokerMetricsRequest
    ) -> m.BrokerMetricsResponse:
        active = self._controller.is_active
        snapshot = self._metadata.snapshot()
        counters = self._replicas.counters
        sessions, cached, evictions, incremental = self._replicas.fetch_path.fetch_session_metrics()
        return m.BrokerMetricsResponse({
            "broker_id": self._broker_id,
            "active_controller_count": int(active),
            # As Kafka: only the controller reports offline partitions.
            "offline_partitions_count": sum(1 for p in snapshot.partitions.values() if p.leader < 0) if active else 0,
            "unclean_leader_elections": self._controller.unclean_elections,
            "under_replicated_partitions": len(self._replicas.under_replicated_partitions()),
            "leader_count": len(self._replicas.leader_partitions()),
            "partition_count": len(self._replicas.partitions()),
            "isr_shrinks": counters.isr_shrinks,
            "isr_expands": counters.isr_expands,
            "failed_isr_updates": counters.failed_isr_updates,
            "records_truncated": counters.records_truncated,
            "acknowledged_records_truncated": counters.acknowledged_records_truncated,
            **self._group_metrics(),
            "incremental_fetch_sessions": sessions,
            "incremental_fetch_partitions_cached": cached,
            "incremental_fetch_session_evictions": evictions,
            "incremental_fetches": incremental,
        }, tuple(counters.truncations))

    def handle_describe_cluster(
        self, context: RequestContext, request: m.DescribeClusterRequest
    ) -> m.DescribeClusterResponse:
        # Read from ZooKeeper at request time: every broker sees the same truth. The metadata
        # cache that Kafka answers from arrives with UpdateMetadata.
        try:
            snapshot = self._zk.describe_cluster(self._cluster_id, deadline_s=ZK_READ_DEADLINE_S)
        except Exception as e:
            log.warning("DescribeCluster failed: %s", e or type(e).__name__)
            return m.DescribeClusterResponse(Errors.REQUEST_TIMED_OUT, self._broker_id,
                                             f"broker {self._broker_id} cannot reach ZooKeeper")
        return m.DescribeClusterResponse(
            Errors.NONE, self._broker_id, cluster_id=snapshot.cluster_id or "", controller_id=snapshot.controller_id,
            controller_epoch=snapshot.controller_epoch, brokers=tuple(snapshot.brokers),
            listener_name=context.listener_name,
        )

    # -- Metadata: any broker, from its cache --------------------------------------------------

    def handle_metadata(self, context: RequestContext, request: m.MetadataRequest) -> m.MetadataResponse:
        snapshot = self._metadata.snapshot()
        by_topic = snapshot.by_topic
        names = list(request.topics) if request.topics else sorted(by_topic)
        # As Kafka: a topic asked for by name and not describable is TOPIC_AUTHORIZATION_FAILED
        # (checked before existence); from "every topic" it is silently left out.
        described = {n for n in names if allowed(self._authorizer, context, Operation.DESCRIBE, ResourceType.TOPIC,
                                                 n, "METADATA", log_if_denied=bool(request.topics))}
        if not request.topics:
            names = [n for n in names if n in described]
        configs = self._topic_configs([n for n in names if n in described]) if request.topics else {}
        topics = []
        for name in names:
            if name not in described:
                topics.append(m.TopicMetadata(name, Errors.TOPIC_AUTHORIZATION_FAILED, name in INTERNAL_TOPICS))
                continue
            partitions = by_topic.get(name)
            if partitions is None:
                topics.append(m.TopicMetadata(name, Errors.UNKNOWN_TOPIC_OR_PARTITION, name in INTERNAL_TOPICS))
                continue
            topics.append(m.TopicMetadata(name, Errors.NONE, name in INTERNAL_TOPICS, configs.get(name, {}), tuple(
                m.PartitionMetadata(Errors.LEADER_NOT_AVAILABLE if p.leader < 0 else Errors.NONE, p) for p in partitions
            )))
        brokers = (b.on_listener(context.listener_name) for b in sorted(snapshot.brokers.values(),
                                                                         key=lambda b: b.broker_id))
        return m.MetadataResponse(self._cluster_id, snapshot.controller_id, self._broker_id,
                                  tuple(b for b in brokers if b is not None), tuple(topics))

    def _topic_configs(self, topics: list[str]) -> dict[str, dict[str, str]]:
        try:
            return self._zk.retry(lambda: self._zk.get_topic_configs(topics), deadline_s=ZK_READ_DEADLINE_S)
        except Exception:
            return {}

    # -- controller-only requests --------------------------------------------------------------

    def handle_create_topics(
        self, context: RequestContext, request: m.CreateTopicsRequest
    ) -> m.CreateTopicsResponse | Future[m.CreateTopicsResponse]:
        """Kafka's ZooKeeper-mode AdminManager: validate, write the assignment, and wait until
        the controller has elected every partition's leader (or the request times out)."""
        live = sorted(self._metadata.snapshot().brokers)
        seen: set[str] = set()
        results: list[m.CreatableTopicResult] = []
        # Create on the cluster allows every topic; else each needs Create of its own.
        anywhere = cluster_allowed(self._authorizer, context, Operation.CREATE, "CREATE_TOPICS", log_if_denied=False)
        for topic in request.topics:
            if not anywhere and not allowed(self._authorizer, context, Operation.CREATE, ResourceType.TOPIC,
                                            topic.name, "CREATE_TOPICS"):
                results.append(m.CreatableTopicResult(topic.name, Errors.TOPIC_AUTHORIZATION_FAILED,
                                                      "Authorization failed."))
                seen.add(topic.name)
                continue
            error, message = self._create_topic(topic, live, request.validate_only, duplicate=topic.name in seen)
            seen.add(topic.name)
            if error is not Errors.NONE:
                results.append(m.CreatableTopicResult(topic.name, error, message))
                continue
            results.append(m.CreatableTopicResult(
                topic.name, error, message,
                topic.num_partitions if topic.num_partitions > 0 else self._config.num_partitions,
                topic.replication_factor if topic.replication_factor > 0 else self._config.default_replication_factor,
            ))
        created = {r.name for r in results if r.error is Errors.NONE} if not request.validate_only else set()
        if not created:
            return m.CreateTopicsResponse(tuple(results))

        def answer(in_time: bool) -> m.CreateTopicsResponse:
            if in_time:
                return m.CreateTopicsResponse(tuple(results))
            snapshot = self._metadata.snapshot()
            return m.CreateTopicsResponse(tuple(
                m.CreatableTopicResult(r.name, Errors.REQUEST_TIMED_OUT,
                                       "Topic created, but not every partition had a leader within the timeout",
                                       r.num_partitions, r.replication_factor)
                if r.name in created and r.error is Errors.NONE and not _has_leaders(snapshot, r.name) else r
                for r in results
            ))

        # Parked until the controller's UpdateMetadata shows every new partition's leader.
        elected = self._metadata.when(lambda s: all(_has_leaders(s, n) for n in created))
        return then(self._timer.expire(elected, _timeout_s(request.timeout_ms), False), answer)

    def _create_topic(
        self, topic: m.CreatableTopic, live: list[int], validate_only: bool, duplicate: bool
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
                zk_data.TopicAssignment(topic.name, {p: tuple(r) for p, r in assignment.items()}, zk_data.new_uuid()),
                dict(topic.configs),
            )
        except NodeExistsError:
            return Errors.TOPIC_ALREADY_EXISTS, f"Topic '{topic.name}' already exists."
        log.info("[Admin id=%d] Created topic %s with assignment %s", self._broker_id, topic.name, assignment)
        return Errors.NONE, ""

    def handle_delete_topics(
        self, context: RequestContext, request: m.DeleteTopicsRequest
    ) -> m.DeleteTopicsResponse | Future[m.DeleteTopicsResponse]:
        snapshot = self._metadata.snapshot()
        results: list[m.DeletableTopicResult] = []
        for name in request.topic_names:
            if not allowed(self._authorizer, context, Operation.DELETE, ResourceType.TOPIC, name, "DELETE_TOPICS"):
                results.append(m.DeletableTopicResult(name, Errors.TOPIC_AUTHORIZATION_FAILED))
            elif not self._controller.is_active:
                results.append(m.DeletableTopicResult(name, Errors.NOT_CONTROLLER))
            elif not snapshot.partitions_of(name):
                results.append(m.DeletableTopicResult(name, Errors.UNKNOWN_TOPIC_OR_PARTITION,
                                                      f"Topic '{name}' does not exist."))
            else:
                self._zk.mark_topic_for_deletion(name)
                results.append(m.DeletableTopicResult(name, Errors.NONE))
        marked = {r.name for r in results if r.error is Errors.NONE}
        if not marked:
            return m.DeleteTopicsResponse(tuple(results))

        def answer(in_time: bool) -> m.DeleteTopicsResponse:
            if in_time:
                return m.DeleteTopicsResponse(tuple(results))
            snapshot = self._metadata.snapshot()
            return m.DeleteTopicsResponse(tuple(
                m.DeletableTopicResult(r.name, Errors.REQUEST_TIMED_OUT)
                if r.name in marked and r.error is Errors.NONE and snapshot.partitions_of(r.name) else r
                for r in results
            ))

        # Parked until the controller's UpdateMetadata no longer lists any of their partitions.
        deleted = self._metadata.when(lambda s: not any(s.partitions_of(n) for n in marked))
        return then(self._timer.expire(deleted, _timeout_s(request.timeout_ms), False), answer)

    def handle_elect_leaders(
        self, context: RequestContext, request: m.ElectLeadersRequest
    ) -> m.ElectLeadersResponse | Future[m.ElectLeadersResponse]:
        if not cluster_allowed(self._authorizer, context, Operation.ALTER, "ELECT_LEADERS"):
            return m.ElectLeadersResponse(Errors.CLUSTER_AUTHORIZATION_FAILED, dict.fromkeys(
                sorted(request.partitions or ()), Errors.CLUSTER_AUTHORIZATION_FAILED))
        if not self._controller.is_active:
            return m.ElectLeadersResponse(Errors.NOT_CONTROLLER)
        if request.election_type != "PREFERRED":
            return m.ElectLeadersResponse(Errors.INVALID_REQUEST)
        partitions = list(request.partitions) if request.partitions else None
        elected = self._timer.expire(self._controller.ask_preferred_leader_election(partitions),
                                     _timeout_s(request.timeout_ms), (Errors.REQUEST_TIMED_OUT, {}))
        return then(elected, lambda answer: m.ElectLeadersResponse(answer[0], dict(sorted(answer[1].items()))))


def _timeout_s(timeout_ms: int) -> float:
    return (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000


def _has_leaders(snapshot: MetadataSnapshot, topic: str) -> bool:
    partitions = snapshot.partitions_of(topic)
    return bool(partitions) and all(p.leader >= 0 for p in partitions)
