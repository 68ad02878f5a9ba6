"""The controller's requests to a broker (LeaderAndIsr, UpdateMetadata, StopReplica), each from
a controller ZooKeeper confirms (broker/controller_fence.py), and the controlled shutdown
requests the controller answers."""

from __future__ import annotations

from concurrent.futures import Future

from broker import heap
from broker.api import messages as m
from broker.api.authorization import ALLOW_EVERYTHING, Authorizer, cluster_allowed
from broker.api.context import RequestContext
from broker.api.futures import then
from broker.api.kafka_apis import Handler
from broker.api.timer import RequestTimer
from broker.authorizer.acl import Operation
from broker.controller.controller import KafkaController
from broker.controller_fence import ControllerFence
from broker.metadata_cache import MetadataCache
from broker.replica_manager import ReplicaManager, state_change_log
from minikafka_protocol.errors import Errors

# Kafka's controlled.shutdown request timeout: how long the controller may take to move leaderships.
CONTROLLED_SHUTDOWN_TIMEOUT_S = 30
# Kafka's ApiKeys names, as the authorizer's log says them.
KIND_NAMES = {"LeaderAndIsr": "LEADER_AND_ISR", "UpdateMetadata": "UPDATE_METADATA", "StopReplica": "STOP_REPLICA"}


class ControlApis:
    def __init__(self, broker_id: int, replica_manager: ReplicaManager, metadata_cache: MetadataCache,
                 controller: KafkaController, timer: RequestTimer, fence: ControllerFence,
                 authorizer: Authorizer = ALLOW_EVERYTHING) -> None:
        self._broker_id = broker_id
        self._fence = fence
        self._authorizer = authorizer
        self._replicas = replica_manager
        self._metadata = metadata_cache
        self._controller = controller
        self._timer = timer

    def handlers(self) -> dict[type, Handler]:
        return {
            m.LeaderAndIsrRequest: self.handle_leader_and_isr,
            m.UpdateMetadataRequest: self.handle_update_metadata,
            m.StopReplicaRequest: self.handle_stop_replica,
            m.ControlledShutdownRequest: self.handle_controlled_shutdown,
        }

    def _confirmed(
        self, kind: str, context: RequestContext,
        request: m.LeaderAndIsrRequest | m.UpdateMetadataRequest | m.StopReplicaRequest,
    ) -> Errors:
        """A controller request needs ClusterAction (the brokers' principals are super users),
        then a controller ZooKeeper confirms."""
        if not cluster_allowed(self._authorizer, context, Operation.CLUSTER_ACTION, KIND_NAMES[kind]):
            return Errors.CLUSTER_AUTHORIZATION_FAILED
        return self._fence.verify(kind, request.controller_id, request.controller_epoch, context.client_host)

    def handle_leader_and_isr(
        self, context: RequestContext, request: m.LeaderAndIsrRequest
    ) -> m.ControllerRequestResponse:
        refused = self._confirmed("LeaderAndIsr", context, request)
        if refused is not Errors.NONE:
            return m.ControllerRequestResponse(refused)
        error, results = self._replicas.become_leader_or_follower(
            request.controller_id, request.controller_epoch, request.broker_epoch, request.partition_states
        )
        heap.settle()
        return m.ControllerRequestResponse(error, results)

    def handle_update_metadata(
        self, context: RequestContext, request: m.UpdateMetadataRequest
    ) -> m.ControllerRequestResponse:
        error = self._confirmed("UpdateMetadata", context, request)
        if error is Errors.NONE:
            error = self._replicas.accept_controller_request(
                "UpdateMetadata", request.controller_id, request.controller_epoch, request.broker_epoch
            )
        if error is Errors.NONE:
            self._metadata.update(request.controller_id, request.controller_epoch, request.live_brokers,
                                  request.partition_states, request.deleted_partitions)
            state_change_log.info(
                "%s Add %d partitions and deleted %d partitions from metadata cache in response to "
                "UpdateMetadata request sent by controller %d epoch %d",
                self._replicas.prefix, len(request.partition_states), len(request.deleted_partitions),
                request.controller_id, request.controller_epoch,
            )
            self._replicas.fetchers.retry_pending()
            heap.settle()
        return m.ControllerRequestResponse(error)

    def handle_stop_replica(
        self, context: RequestContext, request: m.StopReplicaRequest
    ) -> m.ControllerRequestResponse:
        refused = self._confirmed("StopReplica", context, request)
        if refused is not Errors.NONE:
            return m.ControllerRequestResponse(refused)
        error, results = self._replicas.stop_replicas(
            request.controller_id, request.controller_epoch, request.broker_epoch,
            [(p.tp[0], p.tp[1], p.leader_epoch, p.delete_partition) for p in request.partitions],
        )
        # A deleted partition's frozen objects may hold cycles only a full collection frees.
        heap.settle(reclaim=any(p.delete_partition for p in request.partitions))
        return m.ControllerRequestResponse(error, results)

    def handle_controlled_shutdown(
        self, context: RequestContext, request: m.ControlledShutdownRequest
    ) -> m.ControlledShutdownResponse | Future[m.ControlledShutdownResponse]:
        """Answered by the controller once it moved the broker's leaderships away (or could not)."""
        if not cluster_allowed(self._authorizer, context, Operation.CLUSTER_ACTION, "CONTROLLED_SHUTDOWN"):
            return m.ControlledShutdownResponse(Errors.CLUSTER_AUTHORIZATION_FAILED)
        if not self._controller.is_active:
            return m.ControlledShutdownResponse(Errors.NOT_CONTROLLER,
                                                f"Broker {self._broker_id} is not the controller")
        moved = self._timer.expire(self._controller.ask_controlled_shutdown(request.broker_id, request.broker_epoch),
                                   CONTROLLED_SHUTDOWN_TIMEOUT_S, (Errors.REQUEST_TIMED_OUT, []))
        return then(moved, lambda answer: m.ControlledShutdownResponse(answer[0], "", tuple(answer[1])))
