"""The data APIs: produce, fetch and offsets, over the replica manager (Kafka's handleProduceRequest,
handleFetchRequest, handleListOffsetRequest, handleOffsetForLeaderEpochRequest, ...)."""

from __future__ import annotations

import logging
from concurrent.futures import Future

from broker.api import messages as m
from broker.api.authorization import ALLOW_EVERYTHING, Authorizer, allowed, cluster_allowed
from broker.api.context import RequestContext
from broker.api.futures import done, then
from broker.api.kafka_apis import Handler
from broker.authorizer.acl import CLUSTER_NAME, Operation, ResourceType
from broker.fetch_session import FINAL_EPOCH, INVALID_SESSION_ID, FetchKind
from broker.metadata_cache import MetadataCache
from broker.partition import caught_up_ms
from broker.producer_id_manager import ProducerIdManager
from broker.replica_manager import ReplicaManager
from broker.replica_results import FetchRequestPartition, FetchResult, ProduceResult
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)

VALID_ACKS = (0, 1, -1)
# Kafka's fetch.max.wait.ms ceiling is the request timeout; a broker must not park a fetch forever.
MAX_WAIT_CAP_MS = 30000
DEFAULT_PRODUCE_TIMEOUT_MS = 30000
MAX_PRODUCE_TIMEOUT_MS = 300000
DEFAULT_FETCH_MAX_BYTES = 52428800  # fetch.max.bytes
DEFAULT_PARTITION_MAX_BYTES = 1048576  # max.partition.fetch.bytes


class DataApis:
    def __init__(self, broker_id: int, replica_manager: ReplicaManager, metadata_cache: MetadataCache,
                 producer_ids: ProducerIdManager, authorizer: Authorizer = ALLOW_EVERYTHING) -> None:
        self.broker_id = broker_id
        self._authorizer = authorizer
        self._replicas = replica_manager
        self._metadata = metadata_cache
        self._producer_ids = producer_ids

    def handlers(self) -> dict[type, Handler]:
        return {
            m.ProduceRequest: self.handle_produce,
            m.FetchRequest: self.handle_fetch,
            m.ListOffsetsRequest: self.handle_list_offsets,
            m.OffsetForLeaderEpochRequest: self.handle_offset_for_leader_epoch,
            m.InitProducerIdRequest: self.handle_init_producer_id,
            m.DescribeReplicasRequest: self.handle_describe_replicas,
        }

    def _may(self, context: RequestContext, operation: Operation, topic: str, request: str) -> bool:
        return allowed(self._authorizer, context, operation, ResourceType.TOPIC, topic, request)

    def _known(self, tp: TopicPartition) -> bool:
        return tp in self._metadata.snapshot().partitions or self._replicas.partition(tp) is not None

    # -- data --------------------------------------------------------------------------------------

    def handle_produce(self, context: RequestContext, request: m.ProduceRequest) -> Future[m.ProduceResponse]:
        """Kafka's handleProduceRequest: acks must be 0, 1 or -1 and each partition known before
        the replica manager appends; acks=all answers once the ISR has the records."""
        refused: dict[TopicPartition, ProduceResult] = {}
        entries: dict[TopicPartition, bytes] = {}
        for tp, records in request.partitions.items():
            # As Kafka: authorization comes before existence, so a refused caller learns nothing.
            if not self._may(context, Operation.WRITE, tp[0], "PRODUCE"):
                refused[tp] = ProduceResult(Errors.TOPIC_AUTHORIZATION_FAILED)
            elif request.acks not in VALID_ACKS:
                refused[tp] = ProduceResult(Errors.INVALID_REQUIRED_ACKS,
                                            f"acks must be 0, 1 or -1, not {request.acks}")
            elif not self._known(tp):
                refused[tp] = ProduceResult(Errors.UNKNOWN_TOPIC_OR_PARTITION,
                                            f"This server does not host {tp[0]}-{tp[1]}")
            else:
                entries[tp] = records
        timeout_ms = max(0, min(request.timeout_ms or DEFAULT_PRODUCE_TIMEOUT_MS, MAX_PRODUCE_TIMEOUT_MS))
        answer: Future[m.ProduceResponse] = Future()

        def appended(results: Future[dict[TopicPartition, ProduceResult]]) -> None:
            answer.set_result(m.ProduceResponse({**refused, **results.result()}))

        self._replicas.append_records(request.acks, timeout_ms, entries).add_done_callback(appended)
        return answer

    def handle_fetch(self, context: RequestContext, request: m.FetchRequest) -> Future[m.FetchResponse]:
        """Kafka's handleFetchRequest: without a session, opening one, or from one (KIP-227).
        A fetch with too little to answer parks for up to max_wait_ms."""
        if request.replica_id >= 0 and not cluster_allowed(self._authorizer, context, Operation.CLUSTER_ACTION,
                                                           "FETCH"):
            # A follower's fetch needs ClusterAction; Kafka answers every partition 29.
            return done(m.FetchResponse(Errors.NONE, INVALID_SESSION_ID, dict.fromkeys(
                request.partitions, FetchResult(Errors.TOPIC_AUTHORIZATION_FAILED))))
        max_wait_ms = min(max(request.max_wait_ms, 0), MAX_WAIT_CAP_MS)
        min_bytes, max_bytes = max(request.min_bytes, 0), request.max_bytes or DEFAULT_FETCH_MAX_BYTES
        if request.session_epoch == FINAL_EPOCH and request.session_id == INVALID_SESSION_ID:
            return self._fetch_without_session(context, request, max_wait_ms, min_bytes, max_bytes)
        fetch_path = self._replicas.fetch_path
        fetch = fetch_path.new_fetch_context(request.replica_id, request.session_id, request.session_epoch,
                                             request.partitions, list(request.forgotten))
        if fetch.kind is FetchKind.ERROR:
            log.info("Fetch session %d of replica %d refused at epoch %d: %s", request.session_id,
                     request.replica_id, request.session_epoch, fetch.error.name)
            return done(m.FetchResponse(fetch.error, INVALID_SESSION_ID))
        if fetch.kind is FetchKind.SESSIONLESS:
            return self._fetch_without_session(context, request, max_wait_ms, min_bytes, max_bytes)
        return then(fetch_path.fetch_session_messages(fetch, max_wait_ms, min_bytes, max_bytes),
                    lambda answer: m.FetchResponse(Errors.NONE, *answer))

    def _fetch_without_session(
        self, context: RequestContext, request: m.FetchRequest, max_wait_ms: int, min_bytes: int, max_bytes: int
    ) -> Future[m.FetchResponse]:
        wanted: list[FetchRequestPartition] = []
        answers: dict[TopicPartition, FetchResult] = {}
        for tp, p in request.partitions.items():
            if request.replica_id < 0 and not self._may(context, Operation.READ, tp[0], "FETCH"):
                answers[tp] = FetchResult(Errors.TOPIC_AUTHORIZATION_FAILED)
            elif not self._known(tp):
                answers[tp] = FetchResult(Errors.UNKNOWN_TOPIC_OR_PARTITION)
                continue
            wanted.append(FetchRequestPartition(tp, p.fetch_offset, p.current_leader_epoch, p.max_bytes))
        if not wanted:
            return done(m.FetchResponse(Errors.NONE, INVALID_SESSION_ID, answers))
        return then(self._replicas.fetch_path.fetch_messages(request.replica_id, max_wait_ms, min_bytes,
                                                             max_bytes, wanted),
                    lambda read: m.FetchResponse(Errors.NONE, INVALID_SESSION_ID, {**answers, **read}))

    def handle_list_offsets(self, context: RequestContext, request: m.ListOffsetsRequest) -> m.ListOffsetsResponse:
        answers: dict[TopicPartition, m.ListedOffset] = {}
        for tp, p in request.partitions.items():
            if not self._may(context, Operation.DESCRIBE, tp[0], "LIST_OFFSETS"):
                answers[tp] = m.ListedOffset(Errors.TOPIC_AUTHORIZATION_FAILED)
                continue
            if not self._known(tp):
                answers[tp] = m.ListedOffset(Errors.UNKNOWN_TOPIC_OR_PARTITION)
                continue
            error, offset, epoch = self._replicas.list_offset(tp, p.current_leader_epoch, p.timestamp)
            message = "only -1 (latest) and -2 (earliest) are supported as timestamps" \
                if error is Errors.INVALID_REQUEST else ""
            answers[tp] = m.ListedOffset(error, offset, epoch, message=message)
        return m.ListOffsetsResponse(answers)

    def handle_offset_for_leader_epoch(
        self, context: RequestContext, request: m.OffsetForLeaderEpochRequest
    ) -> m.OffsetForLeaderEpochResponse:
        # Followers hold ClusterAction; anyone else needs Describe on each topic.
        replica = allowed(self._authorizer, context, Operation.CLUSTER_ACTION, ResourceType.CLUSTER,
                          CLUSTER_NAME, "OFFSET_FOR_LEADER_EPOCH", log_if_denied=False)
        return m.OffsetForLeaderEpochResponse({
            tp: m.EpochEndOffset(*self._replicas.last_offset_for_leader_epoch(tp, p.current_leader_epoch,
                                                                               p.leader_epoch))
            if replica or self._may(context, Operation.DESCRIBE, tp[0], "OFFSET_FOR_LEADER_EPOCH")
            else m.EpochEndOffset(Errors.TOPIC_AUTHORIZATION_FAILED, -1, -1)
            for tp, p in request.partitions.items()
        })

    def handle_init_producer_id(
        self, context: RequestContext, request: m.InitProducerIdRequest
    ) -> m.InitProducerIdResponse:
        if request.transactional_id is not None:
            # We differ from Kafka: there is no transaction coordinator, only idempotent producers.
            return m.InitProducerIdResponse(Errors.INVALID_REQUEST, message="transactions are not supported")
        if not (allowed(self._authorizer, context, Operation.IDEMPOTENT_WRITE, ResourceType.CLUSTER, CLUSTER_NAME,
                        "INIT_PRODUCER_ID", log_if_denied=False)
                or self._authorizer.authorize_by_resource_type(context.principal, context.client_host.lstrip("/"),
                                                               Operation.WRITE, ResourceType.TOPIC)):
            # Kafka's rule for an idempotent producer: IdempotentWrite on the cluster, or Write on
            # some topic (any the ACLs allow, whether it exists yet or not).
            return m.InitProducerIdResponse(Errors.CLUSTER_AUTHORIZATION_FAILED)
        try:
            producer_id = self._producer_ids.generate()
        except Exception as e:  # ZooKeeper away: the producer retries
            log.warning("Cannot allocate a producer id: %s", e)
            return m.InitProducerIdResponse(Errors.COORDINATOR_NOT_AVAILABLE, message=str(e))
        return m.InitProducerIdResponse(Errors.NONE, producer_id, 0)

    def handle_describe_replicas(
        self, context: RequestContext, request: m.DescribeReplicasRequest
    ) -> m.DescribeReplicasResponse:
        """Each led partition's high watermark and every replica's log end offset, as the leader sees
        them; minikafka's own API, allowed with Describe on the cluster."""
        if not cluster_allowed(self._authorizer, context, Operation.DESCRIBE, "DESCRIBE_REPLICAS"):
            tps = list(request.partitions or ())
            return m.DescribeReplicasResponse(self.broker_id, tuple(
                m.PartitionReplicas(tp, Errors.CLUSTER_AUTHORIZATION_FAILED) for tp in tps))
        described = []
        tps = list(request.partitions) if request.partitions else None
        for tp, partition in self._replicas.replica_states(tps):
            with partition.lock:
                if not partition.is_leader:
                    described.append(m.PartitionReplicas(tp, Errors.NOT_LEADER_OR_FOLLOWER))
                    continue
                replicas = [m.ReplicaState(self.broker_id, partition.log.log_end_offset)]
                replicas += [m.ReplicaState(broker_id, state.log_end_offset, caught_up_ms(state))
                             for broker_id, state in sorted(partition.followers.items())]
                described.append(m.PartitionReplicas(
                    tp, Errors.NONE, partition.leader_epoch, partition.high_watermark,
                    partition.log.log_start_offset, tuple(replicas),
                ))
        return m.DescribeReplicasResponse(self.broker_id, tuple(described))

