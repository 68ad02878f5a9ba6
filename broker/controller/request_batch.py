"""ControllerBrokerRequestBatch: the requests one controller decision sends, grouped per broker."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from broker.controller.channel_manager import ChannelManager
from broker.controller.controller_context import ControllerContext, TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2

log = logging.getLogger(__name__)


def broker_node(info: Any) -> kafka_pb2.BrokerNode:
    host, port = info.endpoint()
    node = kafka_pb2.BrokerNode(
        broker_id=info.broker_id, host=host, port=port, broker_epoch=info.broker_epoch, endpoints=list(info.endpoints)
    )
    if info.rack is not None:
        node.rack = info.rack
    return node


class ControllerBrokerRequestBatch:
    def __init__(self, controller_id: int, context_of: Any, channels: ChannelManager, log_: Any) -> None:
        self._controller_id = controller_id
        self._context_of = context_of  # the controller's current context, read at send time
        self._channels = channels
        self._log = log_
        self._leader_and_isr: dict[int, dict[TopicPartition, bool]] = defaultdict(dict)
        self._stop_replica: dict[int, dict[TopicPartition, bool]] = defaultdict(dict)
        self._update_metadata_brokers: set[int] = set()
        self._update_metadata_to_all_live = False
        self._update_metadata_partitions: set[TopicPartition] = set()
        self._deleted_partitions: set[TopicPartition] = set()

    def add_leader_and_isr(
        self, broker_ids: Iterable[int], tp: TopicPartition, is_new: bool = False, with_metadata: bool = True
    ) -> None:
        """`with_metadata`: every broker also gets the partition's state in UpdateMetadata, as in
        Kafka; not needed when the state did not change and every broker already has it.
        Brokers that are not alive when the batch is sent are left out then: a mass election
        adds tens of thousands of partitions, and this is called once for each."""
        requests = self._leader_and_isr
        for broker_id in broker_ids:
            partitions = requests[broker_id]
            partitions[tp] = is_new or partitions.get(tp, False)
        if with_metadata:
            self._update_metadata_to_all_live = True
            self._update_metadata_partitions.add(tp)

    def add_leader_and_isr_to_broker(
        self, broker_id: int, partitions: list[TopicPartition], with_metadata: bool = True
    ) -> None:
        """`add_leader_and_isr` of many partitions to one broker, none of them new, in a few dict
        operations: a controller failover queues every partition of the cluster."""
        queued = self._leader_and_isr[broker_id]
        merged = dict.fromkeys(partitions, False)
        merged.update(queued)  # a partition already queued as new stays new
        self._leader_and_isr[broker_id] = merged
        if with_metadata:
            self._update_metadata_to_all_live = True
            self._update_metadata_partitions.update(partitions)

    def add_stop_replica(self, broker_ids: Iterable[int], tp: TopicPartition, delete: bool) -> None:
        for broker_id in broker_ids:
            self._stop_replica[broker_id][tp] = delete or self._stop_replica[broker_id].get(tp, False)

    def add_update_metadata(self, broker_ids: Iterable[int], partitions: Iterable[TopicPartition] = ()) -> None:
        self._update_metadata_brokers.update(broker_ids)
        self._update_metadata_partitions.update(partitions)

    def add_deleted_partitions(self, partitions: Iterable[TopicPartition]) -> None:
        self._deleted_partitions.update(partitions)
        self._update_metadata_brokers.update(self._context().live_or_shutting_down_broker_ids())

    def _context(self) -> ControllerContext:
        return self._context_of()

    def send(self) -> None:
        context = self._context()
        live = context.live_or_shutting_down_broker_ids()
        live_nodes = [broker_node(info) for _, info in sorted(context.live_brokers.items())]
        # UpdateMetadata goes first (Kafka sends it after LeaderAndIsr): a new leader then knows
        # which brokers are alive before it looks at its followers.
        # Each partition's state is built once and shared by every request that carries it:
        # building protobuf messages is what a mass change costs most here.
        built: dict[tuple[TopicPartition, bool], kafka_pb2.PartitionState | None] = {}
        # A cluster has few distinct replica lists (six for three replicas on three brokers).
        offline: dict[tuple[int, ...], list[int]] = {}
        leadership, assignments, epoch = context.leadership, context.assignments, context.epoch

        def state_of(tp: TopicPartition, is_new: bool = False) -> kafka_pb2.PartitionState | None:
            key = (tp, is_new)
            if key in built:
                return built[key]
            current, replicas = leadership.get(tp), assignments.get(tp)
            state = None
            if current is not None and replicas is not None:
                if replicas not in offline:
                    offline[replicas] = [r for r in replicas if r not in live]
                state = kafka_pb2.PartitionState(
                    topic=tp[0], partition=tp[1], controller_epoch=epoch, leader=current.leader,
                    leader_epoch=current.leader_epoch, isr=current.isr, zk_version=current.zk_version,
                    replicas=replicas, offline_replicas=offline[replicas], is_new=is_new,
                )
            built[key] = state
            return state

        if self._update_metadata_to_all_live:
            self._update_metadata_brokers.update(live)
        if self._update_metadata_brokers:
            template = kafka_pb2.UpdateMetadataRequest(
                controller_id=self._controller_id, controller_epoch=context.epoch,
                partition_states=[s for tp in sorted(self._update_metadata_partitions) if (s := state_of(tp))],
                live_brokers=live_nodes,
                deleted_partitions=[
                    kafka_pb2.TopicPartition(topic=t, partition=p) for t, p in sorted(self._deleted_partitions)
                ],
            )
            for broker_id in sorted(self._update_metadata_brokers & live):
                request = kafka_pb2.UpdateMetadataRequest()
                request.CopyFrom(template)  # one copy in C, not one Python call per partition
                request.broker_epoch = context.live_brokers[broker_id].broker_epoch
                self._channels.send(broker_id, "UpdateMetadata", request,
                                    self._on_response(broker_id, "UpdateMetadata"))
        for broker_id, partitions in sorted(self._leader_and_isr.items()):
            if broker_id not in live:
                continue
            states = [s for tp, new in sorted(partitions.items()) if (s := state_of(tp, new))]
            leaders = {s.leader for s in states}
            request = kafka_pb2.LeaderAndIsrRequest(
                controller_id=self._controller_id, controller_epoch=context.epoch,
                broker_epoch=context.live_brokers[broker_id].broker_epoch if broker_id in context.live_brokers else -1,
                partition_states=states, live_leaders=[n for n in live_nodes if n.broker_id in leaders],
            )
            self._log.info(
                "Sending LeaderAndIsr request to broker %d for %d partitions", broker_id, len(states)
            )
            self._channels.send(broker_id, "LeaderAndIsr", request, self._on_response(broker_id, "LeaderAndIsr"))
        for broker_id, partitions in sorted(self._stop_replica.items()):
            if broker_id not in live:
                continue
            request = kafka_pb2.StopReplicaRequest(
                controller_id=self._controller_id, controller_epoch=context.epoch,
                broker_epoch=context.live_brokers[broker_id].broker_epoch if broker_id in context.live_brokers else -1,
                partitions=[
                    kafka_pb2.StopReplicaPartition(
                        topic=t, partition=p, delete_partition=delete,
                        leader_epoch=-2 if delete else context.leadership.get((t, p), _NO_EPOCH).leader_epoch,
                    )
                    for (t, p), delete in sorted(partitions.items())
                ],
            )
            self._log.info("Sending StopReplica request to broker %d for %d partitions", broker_id, len(partitions))
            self._channels.send(broker_id, "StopReplica", request, self._on_response(broker_id, "StopReplica"))
        self.clear()

    def clear(self) -> None:
        """Forget what was added and not sent: a resigning controller sends nothing more."""
        self._leader_and_isr.clear()
        self._stop_replica.clear()
        self._update_metadata_brokers.clear()
        self._update_metadata_to_all_live = False
        self._update_metadata_partitions.clear()
        self._deleted_partitions.clear()

    def _on_response(self, broker_id: int, kind: str) -> Any:
        def callback(response: Any) -> None:
            if response.error_code != Errors.NONE.code:
                self._log.warning(
                    "%s request to broker %d failed: %s", kind, broker_id, Errors.for_code(response.error_code).name
                )

        return callback


class _NoEpoch:
    leader_epoch = -1


_NO_EPOCH = _NoEpoch()
