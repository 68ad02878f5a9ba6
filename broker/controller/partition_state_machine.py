"""The controller's partition and replica state machines at work (Kafka's ZkPartitionStateMachine
and ZkReplicaStateMachine): each state change is checked against the tables in state_machines,
decided by the pure rules in partition_leader_election, written to ZooKeeper with fenced,
conditional, pipelined updates, and announced to the brokers through one request batch.

They run on the controller's event thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from typing import Protocol, TypeVar

from kazoo.exceptions import BadVersionError, NodeExistsError

from broker.controller import partition_leader_election as elections
from broker.controller.controller_context import ControllerContext, TopicPartition
from broker.controller.partition_leader_election import ElectionResult, LeaderAndIsr
from broker.controller.request_batch import ControllerBrokerRequestBatch
from broker.controller.state_machines import IllegalStateChange, PartitionState, check_partition_transition
from broker.zk import zk_data
from broker.zk.kafka_zk_client import KafkaZkClient
from minikafka_protocol.errors import Errors

log = logging.getLogger("broker.state.change")


class Election(Enum):
    OFFLINE = "offline"
    PREFERRED = "preferred"
    CONTROLLED_SHUTDOWN = "controlled shutdown"


class ControllerView(Protocol):
    broker_id: int
    context: ControllerContext
    unclean_leader_election_default: bool
    unclean_elections: int


def tp_name(tp: TopicPartition) -> str:
    return f"{tp[0]}-{tp[1]}"


def describe(state: LeaderAndIsr) -> str:
    return (
        f"LeaderAndIsr(leader={state.leader}, leaderEpoch={state.leader_epoch}, "
        f"isr={','.join(map(str, state.isr))}, zkVersion={state.zk_version})"
    )


class _ZkStateMachine:
    """What both state machines share: the controller's context, and the fenced, conditional
    writes of partition states whose zk version may move under them."""

    def __init__(self, controller: ControllerView, zk: KafkaZkClient, batch: ControllerBrokerRequestBatch) -> None:
        self._controller = controller
        self._zk = zk
        self._batch = batch

    @property
    def _context(self) -> ControllerContext:
        return self._controller.context

    def _prefix(self) -> str:
        return f"[Controller id={self._controller.broker_id} epoch={self._context.epoch}]"

    def _current(
        self, partitions: list[TopicPartition], stale: set[TopicPartition]
    ) -> dict[TopicPartition, tuple[LeaderAndIsr, int]]:
        """Each partition's state to decide from, and the controller epoch that wrote it: the
        controller's own copy, or ZooKeeper's for partitions it has none of or whose conditional
        write just failed. Kafka reads every partition from ZooKeeper before each election; the
        conditional write makes the copy safe to start from, and halves the round trips of a
        mass election."""
        current = {
            tp: (state, self._context.epoch)
            for tp in partitions
            if tp not in stale and (state := self._context.leadership.get(tp)) is not None
        }
        missing = [tp for tp in partitions if tp not in current]
        for tp, found in (self._zk.get_partition_states(missing) if missing else {}).items():
            state = LeaderAndIsr(found.leader, found.leader_epoch, found.isr, found.zk_version)
            self._context.leadership[tp] = state
            current[tp] = (state, found.controller_epoch)
        return current

    def _write(
        self, updates: dict[TopicPartition, LeaderAndIsr], what: str
    ) -> Callable[[], tuple[dict[TopicPartition, LeaderAndIsr], list[TopicPartition]]]:
        """Send `updates`, fenced and conditional on each zk version; calling the function
        returned waits for the answers and gives the states written (with their new zk versions,
        also kept in the context) and the partitions whose version moved meanwhile (to read and
        decide again). Any other failure is logged and dropped.

        A mass change decides and sends its partitions a slice at a time, so ZooKeeper writes
        one slice while the controller decides the next."""
        if not updates:
            return lambda: ({}, [])
        epoch = self._context.epoch
        answered = self._zk.update_partition_states_async(
            self._context.epoch_zk_version,
            {tp: (zk_data.encode_partition_state(s.leader, s.leader_epoch, s.isr, epoch), s.zk_version)
             for tp, s in updates.items()},
        )

        def gather() -> tuple[dict[TopicPartition, LeaderAndIsr], list[TopicPartition]]:
            written, moved = {}, []
            for tp, answer in answered().items():
                if isinstance(answer, BadVersionError):
                    moved.append(tp)
                elif isinstance(answer, Exception):
                    log.error("%s Failed to write %s of %s: %r", self._prefix(), what, tp_name(tp), answer)
                else:
                    state = updates[tp]
                    written[tp] = LeaderAndIsr(state.leader, state.leader_epoch, state.isr, answer)
                    self._context.leadership[tp] = written[tp]
            return written, moved

        return gather


T = TypeVar("T")

# Partitions decided and sent to ZooKeeper at a time in a mass change: small enough that
# ZooKeeper starts writing early, large enough to be few multis (kafka_zk_client.MULTI_OPS).
WRITE_SLICE = 1000


def _slices(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), WRITE_SLICE):
        yield items[start:start + WRITE_SLICE]


class PartitionStateMachine(_ZkStateMachine):
    def __init__(self, controller: ControllerView, zk: KafkaZkClient, batch: ControllerBrokerRequestBatch) -> None:
        super().__init__(controller, zk, batch)
        self.states: dict[TopicPartition, PartitionState] = {}

    def reset(self) -> None:
        self.states.clear()

    def initialize(self) -> None:
        """At failover: Online if the leader is alive, Offline if it is not, New if never elected."""
        live = self._context.live_or_shutting_down_broker_ids()
        for tp in self._context.assignments:
            leadership = self._context.leadership.get(tp)
            if leadership is None:
                self.states[tp] = PartitionState.NEW_PARTITION
            elif leadership.leader in live:
                self.states[tp] = PartitionState.ONLINE_PARTITION
            else:
                self.states[tp] = PartitionState.OFFLINE_PARTITION

    def _transition(self, tp: TopicPartition, target: PartitionState) -> bool:
        current = self.states.get(tp, PartitionState.NON_EXISTENT_PARTITION)
        try:
            check_partition_transition(current, target, tp_name(tp))
        except IllegalStateChange as e:
            log.error("%s %s", self._prefix(), e)
            return False
        return True

    def _set(self, tp: TopicPartition, target: PartitionState, detail: str = "") -> None:
        current = self.states.get(tp, PartitionState.NON_EXISTENT_PARTITION)
        if target is PartitionState.NON_EXISTENT_PARTITION:
            self.states.pop(tp, None)
        else:
            self.states[tp] = target
        if current is target and not detail:
            return
        # Kafka logs moves to Offline and NonExistent at TRACE, and those with a new state at INFO.
        level = logging.DEBUG if target in (PartitionState.OFFLINE_PARTITION, PartitionState.NON_EXISTENT_PARTITION) \
            else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "%s Changed partition %s from %s to %s%s", self._prefix(), tp_name(tp), current, target,
                    detail)

    def handle_state_changes(
        self, partitions: Iterable[TopicPartition], target: PartitionState, election: Election = Election.OFFLINE
    ) -> dict[TopicPartition, Errors]:
        partitions = [tp for tp in partitions if self._transition(tp, target)]
        if target is PartitionState.ONLINE_PARTITION:
            new = [tp for tp in partitions if self.states.get(tp) is PartitionState.NEW_PARTITION]
            results = self._initialize_leader_and_isr(new)
            results.update(self.elect_leaders([tp for tp in partitions if tp not in new], election))
            return results
        for tp in partitions:
            self._set(tp, target)
        return dict.fromkeys(partitions, Errors.NONE)

    def trigger_online_partition_state_change(self) -> dict[TopicPartition, Errors]:
        """Elect leaders for every New or Offline partition whose topic is not being deleted."""
        partitions = [
            tp for tp, state in sorted(self.states.items())
            if state in (PartitionState.NEW_PARTITION, PartitionState.OFFLINE_PARTITION)
            and tp[0] not in self._context.topics_being_deleted
        ]
        return self.handle_state_changes(partitions, PartitionState.ONLINE_PARTITION, Election.OFFLINE)

    def _initialize_leader_and_isr(self, partitions: list[TopicPartition]) -> dict[TopicPartition, Errors]:
        live = self._context.live_broker_ids()
        results: dict[TopicPartition, Errors] = {}
        initial: dict[TopicPartition, LeaderAndIsr] = {}
        for tp in partitions:
            state = elections.initial_leader_and_isr(self._context.assignments[tp], live)
            if state is None:
                log.error(
                    "%s Controller failed to elect leader for partition %s: none of its replicas %s is alive",
                    self._prefix(), tp_name(tp), list(self._context.assignments[tp]),
                )
                results[tp] = Errors.LEADER_NOT_AVAILABLE
            else:
                initial[tp] = state
        if not initial:
            return results
        epoch = self._context.epoch
        answers = self._zk.create_partition_states(
            self._context.epoch_zk_version,
            {tp: zk_data.encode_partition_state(s.leader, s.leader_epoch, s.isr, epoch) for tp, s in initial.items()},
        )
        for tp, answer in answers.items():
            if isinstance(answer, Exception):
                reason = "it was created before" if isinstance(answer, NodeExistsError) else repr(answer)
                log.error("%s Failed to initialize partition %s: %s", self._prefix(), tp_name(tp), reason)
                results[tp] = Errors.UNKNOWN_SERVER_ERROR
                continue
            self._context.leadership[tp] = initial[tp]
            self._set(tp, PartitionState.ONLINE_PARTITION, f" with state {describe(initial[tp])}")
            self._batch.add_leader_and_isr(self._context.assignments[tp], tp, is_new=True)
            results[tp] = Errors.NONE
        return results

    def _elect(self, tp: TopicPartition, current: LeaderAndIsr, election: Election) -> ElectionResult:
        assignment = self._context.assignments[tp]
        if election is Election.PREFERRED:
            return elections.leader_for_preferred(assignment, current, self._context.live_broker_ids())
        if election is Election.CONTROLLED_SHUTDOWN:
            return elections.leader_for_controlled_shutdown(
                assignment, current, self._context.live_or_shutting_down_broker_ids(),
                self._context.shutting_down_broker_ids,
            )
        unclean = self._context.unclean_election_enabled(tp[0], self._controller.unclean_leader_election_default)
        return elections.leader_for_offline(assignment, current, self._context.live_broker_ids(), unclean)

    def elect_leaders(self, partitions: list[TopicPartition], election: Election) -> dict[TopicPartition, Errors]:
        """Kafka's electLeaderForPartitions: read each state from ZooKeeper, elect, write it back
        conditionally on its zk version; a partition whose version moved meanwhile goes round again."""
        results: dict[TopicPartition, Errors] = {}
        remaining = list(partitions)
        stale: set[TopicPartition] = set()
        while remaining:
            current_states = self._current(remaining, stale)
            sent = []
            for part in _slices(remaining):
                decided: dict[TopicPartition, ElectionResult] = {}
                for tp in part:
                    if tp not in current_states:
                        log.error("%s No partition state for %s in ZooKeeper", self._prefix(), tp_name(tp))
                        results[tp] = Errors.UNKNOWN_TOPIC_OR_PARTITION
                        continue
                    current, written_by = current_states[tp]
                    if written_by > self._context.epoch:
                        log.warning(
                            "%s Aborted leader election for partition %s since its state was written by "
                            "controller epoch %d, newer than %d",
                            self._prefix(), tp_name(tp), written_by, self._context.epoch,
                        )
                        results[tp] = Errors.NOT_CONTROLLER
                        continue
                    result = self._elect(tp, current, election)
                    if result.leader_and_isr is None:
                        results[tp] = self._no_leader(tp, current, election)
                        if election is Election.OFFLINE:
                            self._set(tp, PartitionState.OFFLINE_PARTITION)
                        continue
                    decided[tp] = result
                sent.append((decided, self._write(
                    {tp: r.leader_and_isr for tp, r in decided.items() if r.leader_and_isr is not None}, "the state"
                )))
            remaining = []
            for decided, answered in sent:
                written, moved = answered()
                remaining.extend(moved)
                stale.update(moved)
                for tp in decided.keys() - written.keys() - set(moved):
                    results[tp] = Errors.UNKNOWN_SERVER_ERROR
                for tp, new_state in written.items():
                    result = decided[tp]
                    if result.unclean:
                        self._controller.unclean_elections += 1
                        log.warning(
                            "%s Unclean leader election for partition %s: broker %d was not in the ISR %s; "
                            "records acknowledged by the old ISR may be lost",
                            self._prefix(), tp_name(tp), new_state.leader, list(current_states[tp][0].isr),
                        )
                    self._set(tp, PartitionState.ONLINE_PARTITION,
                              f" with state {describe(new_state)} ({election.value} election"
                              f"{', unclean' if result.unclean else ''})")
                    self._batch.add_leader_and_isr(result.live_replicas, tp)
                    results[tp] = Errors.NONE
        return results

    def _no_leader(self, tp: TopicPartition, current: LeaderAndIsr, election: Election) -> Errors:
        if election is Election.PREFERRED:
            preferred = self._context.assignments[tp][0]
            log.info(
                "%s Preferred replica %d for partition %s is not alive or not in the ISR %s",
                self._prefix(), preferred, tp_name(tp), list(current.isr),
            )
            return Errors.PREFERRED_LEADER_NOT_AVAILABLE
        unclean = self._context.unclean_election_enabled(tp[0], self._controller.unclean_leader_election_default)
        log.error(
            "%s No replica of partition %s can lead: ISR %s, replicas %s, live brokers %s "
            "(unclean.leader.election.enable=%s)",
            self._prefix(), tp_name(tp), list(current.isr), list(self._context.assignments[tp]),
            sorted(self._context.live_broker_ids()), str(unclean).lower(),
        )
        return Errors.LEADER_NOT_AVAILABLE


class ReplicaStateMachine(_ZkStateMachine):
    """What happens to the replicas on brokers that come and go."""

    def online(self, broker_ids: Iterable[int], with_metadata: bool = True) -> None:
        """OnlineReplica: tell each broker the state of every partition it holds a replica of."""
        leadership = self._context.leadership
        for broker_id in broker_ids:
            self._batch.add_leader_and_isr_to_broker(
                broker_id, [tp for tp in self._context.partitions_on_broker(broker_id) if tp in leadership],
                with_metadata=with_metadata,
            )

    def offline(
        self, broker_ids: Iterable[int], stop_replicas: bool = False, partitions: Iterable[TopicPartition] | None = None
    ) -> None:
        """OfflineReplica: take the brokers' replicas out of every ISR (never the last member),
        fenced and conditional on each partition's zk version. `partitions`: only these of the
        brokers' partitions (a controlled shutdown's, those the broker follows)."""
        only = None if partitions is None else set(partitions)
        for broker_id in sorted(broker_ids):
            on_broker = [
                tp for tp in self._context.partitions_on_broker(broker_id)
                if tp[0] not in self._context.topics_being_deleted and (only is None or tp in only)
            ]
            if stop_replicas:
                for tp in on_broker:
                    self._batch.add_stop_replica([broker_id], tp, delete=False)
            remaining = on_broker
            stale: set[TopicPartition] = set()
            removed = 0
            while remaining:
                sent = []
                for part in _slices(list(self._current(remaining, stale).items())):
                    updates = {}
                    for tp, (current, _) in part:
                        new_state = elections.remove_replica_from_isr(current, broker_id)
                        if new_state != current:
                            updates[tp] = new_state
                    sent.append(self._write(updates, f"the ISR without replica {broker_id}"))
                remaining = []
                # Kafka logs replica state changes at TRACE; the line is built only when it is shown.
                traced = log.isEnabledFor(logging.DEBUG)
                for answered in sent:
                    written, moved = answered()
                    remaining.extend(moved)
                    stale.update(moved)
                    for tp, new_state in written.items():
                        if traced:
                            log.debug("%s Removed replica %d from the ISR of partition %s: %s",
                                      self._prefix(), broker_id, tp_name(tp), describe(new_state))
                        self._batch.add_leader_and_isr([r for r in self._context.assignments[tp] if r != broker_id],
                                                       tp)
                    removed += len(written)
            if removed:
                log.info("%s Removed replica %d from the ISR of %d partitions", self._prefix(), broker_id, removed)
