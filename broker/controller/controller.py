"""KafkaController: controller election, failover, resignation and broker changes.

Runs every event on one thread (ControllerEventManager). Each broker has one; at most one is
active, the one whose id /controller holds. Every ZooKeeper write it makes as controller is
fenced by the zk version of /controller_epoch it set when it won.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from kazoo.protocol.states import EventType, WatchedEvent

from broker import heap
from broker.controller import controller_election
from broker.controller.channel_manager import ChannelManager, ControllerChannelManager
from broker.controller.controller_context import ControllerContext, TopicPartition
from broker.controller.controller_election import ElectionStep
from broker.controller.event_manager import (
    BrokerChange,
    ControllerChange,
    ControllerEvent,
    ControllerEventManager,
    Expire,
    IsrChangeNotification,
    Reelect,
    RegisterBrokerAndReelect,
    Startup,
    ZkReconnected,
)
from broker.controller.partition_leader_election import LeaderAndIsr
from broker.controller.partition_state_machine import Election, PartitionStateMachine, ReplicaStateMachine
from broker.controller.request_batch import ControllerBrokerRequestBatch
from broker.controller.state_machines import PartitionState
from broker.zk import zk_data
from broker.zk.kafka_zk_client import (
    BrokerIdInUseError,
    ControllerMovedError,
    KafkaZkClient,
    SessionEvent,
)
from broker.zk.zk_data import BrokerInfo
from minikafka_protocol.errors import Errors


class PrefixLogger(logging.LoggerAdapter):
    """Kafka's logIdent: `[Controller id=1] ...`."""

    def process(self, msg, kwargs):  # type: ignore[no-untyped-def]
        return f"{self.extra['prefix']} {msg}", kwargs


@dataclass
class Resign(ControllerEvent):
    """The broker is shutting down: stop being controller and free /controller at once."""


@dataclass
class TopicChange(ControllerEvent):
    """The children of /brokers/topics changed."""


@dataclass
class TopicDeletion(ControllerEvent):
    """The children of /admin/delete_topics changed."""


@dataclass
class PreferredReplicaElectionZNode(ControllerEvent):
    """/admin/preferred_replica_election was created."""


@dataclass
class ReplicaLeaderElection(ControllerEvent):
    """A preferred leader election asked for by an admin request; None: every partition."""

    partitions: list[TopicPartition] | None = None
    callback: Callable[[Errors, dict[TopicPartition, Errors]], None] = field(default=lambda _e, _r: None, repr=False)

    def preempt(self) -> None:
        self.callback(Errors.NOT_CONTROLLER, {})


@dataclass
class AutoPreferredReplicaLeaderElection(ControllerEvent):
    """The periodic leader imbalance check (auto.leader.rebalance.enable)."""


@dataclass
class ControlledShutdown(ControllerEvent):
    broker_id: int = -1
    broker_epoch: int = -1
    callback: Callable[[Errors, list[TopicPartition]], None] = field(default=lambda _e, _r: None, repr=False)

    def preempt(self) -> None:
        # Kafka answers ControllerMovedException, which is NOT_CONTROLLER on the wire.
        self.callback(Errors.NOT_CONTROLLER, [])


class KafkaController:
    def __init__(
        self,
        broker_info: BrokerInfo,
        zk: KafkaZkClient,
        on_fatal: Callable[[str], None],
        unclean_leader_election_default: bool = False,
        leader_imbalance_per_broker_percentage: int = 10,
        channels: ChannelManager | None = None,
    ) -> None:
        self.broker_id = broker_info.broker_id
        self._broker_info = broker_info
        self._zk = zk
        self._on_fatal = on_fatal
        self.log = PrefixLogger(logging.getLogger(__name__), {"prefix": f"[Controller id={self.broker_id}]"})
        self.event_manager = ControllerEventManager(self.broker_id, self.process)
        self.context = ControllerContext()
        self.unclean_leader_election_default = unclean_leader_election_default
        self.leader_imbalance_per_broker_percentage = leader_imbalance_per_broker_percentage
        self.unclean_elections = 0  # UncleanLeaderElectionsPerSec, as a count
        # `channels`: the brokers' request channels; gRPC ones unless given.
        self.channels: ChannelManager = channels if channels is not None else ControllerChannelManager(self.broker_id)
        self.batch = ControllerBrokerRequestBatch(self.broker_id, lambda: self.context, self.channels, self.log)
        self.partition_state_machine = PartitionStateMachine(self, zk, self.batch)
        self.replica_state_machine = ReplicaStateMachine(self, zk, self.batch)
        # Only the event thread writes these; other threads may read them.
        self.active_controller_id = -1
        self.broker_epoch = -1
        self._stopped = False
        self._timer_stopped = threading.Event()
        # The brokers this broker last saw in ZooKeeper, controller or not.
        self._known_brokers: dict[int, BrokerInfo] = {}

    @property
    def is_active(self) -> bool:
        return controller_election.is_active(self.broker_id, self.active_controller_id)

    # -- the edges: watches and session changes only enqueue ------------------------------

    def startup(self, broker_epoch: int) -> None:
        self.broker_epoch = broker_epoch
        self.event_manager.start()
        self.event_manager.put(Startup())

    def schedule_auto_leader_rebalance(self, interval_s: float) -> None:
        """Kafka schedules the imbalance check while it is controller; the event checks that."""

        def tick() -> None:
            while not self._timer_stopped.wait(interval_s):
                self.event_manager.put(AutoPreferredReplicaLeaderElection())

        threading.Thread(target=tick, name=f"auto-leader-rebalance-{self.broker_id}", daemon=True).start()

    def shutdown(self, timeout: float) -> None:
        self._timer_stopped.set()
        self.event_manager.put(Resign())
        self.event_manager.close(timeout)

    def on_session_event(self, event: SessionEvent) -> None:
        if event is SessionEvent.EXPIRED:
            # Kafka's ZooKeeperClient: clear the queue and put Expire; queued events were
            # meant for the lost session.
            self.event_manager.clear_and_put(Expire())
        elif event is SessionEvent.NEW_SESSION:
            self.event_manager.put(RegisterBrokerAndReelect())
        elif event is SessionEvent.RECONNECTED:
            self.event_manager.put(ZkReconnected())

    def _on_controller_watch(self, event: WatchedEvent) -> None:
        if event.type == EventType.DELETED:
            self.event_manager.put(Reelect())
        elif event.type in (EventType.CREATED, EventType.CHANGED):
            self.event_manager.put(ControllerChange())

    def _on_broker_ids_watch(self, event: WatchedEvent) -> None:
        if event.type == EventType.CHILD:
            self.event_manager.put(BrokerChange())

    def _on_topics_watch(self, event: WatchedEvent) -> None:
        if event.type == EventType.CHILD:
            self.event_manager.put(TopicChange())

    def _on_topic_deletions_watch(self, event: WatchedEvent) -> None:
        if event.type == EventType.CHILD:
            self.event_manager.put(TopicDeletion())

    def _on_preferred_election_watch(self, event: WatchedEvent) -> None:
        if event.type in (EventType.CREATED, EventType.CHANGED):
            self.event_manager.put(PreferredReplicaElectionZNode())

    # -- requests from other threads: enqueue, then wait for the event thread's answer -------

    def _ask(self, make_event: Callable[[Callable[..., None]], ControllerEvent]) -> Future[tuple]:
        """Put an event whose handler answers through a callback; the future of that answer
        (preempted events answer too, so it always comes)."""
        answer: Future[tuple] = Future()

        def callback(*values: object) -> None:
            if not answer.done():
                answer.set_result(values)

        self.event_manager.put(make_event(callback))
        return answer

    def ask_preferred_leader_election(
        self, partitions: list[TopicPartition] | None
    ) -> Future[tuple[Errors, dict[TopicPartition, Errors]]]:
        """The request's error (NOT_CONTROLLER) and each partition's, once the event thread ran it."""
        return self._ask(lambda callback: ReplicaLeaderElection(partitions=partitions, callback=callback))  # type: ignore[return-value]

    def ask_controlled_shutdown(self, broker_id: int, broker_epoch: int) -> Future[tuple[Errors, list[TopicPartition]]]:
        """The answer to a broker's ControlledShutdown: the error and the partitions it still leads."""
        return self._ask(  # type: ignore[return-value]
            lambda callback: ControlledShutdown(broker_id=broker_id, broker_epoch=broker_epoch, callback=callback)
        )

    def elect_preferred_leaders(
        self, partitions: list[TopicPartition] | None, timeout: float
    ) -> tuple[Errors, dict[TopicPartition, Errors]]:
        """ask_preferred_leader_election, waited for; REQUEST_TIMED_OUT after `timeout`."""
        try:
            return self.ask_preferred_leader_election(partitions).result(timeout)
        except FutureTimeout:
            return Errors.REQUEST_TIMED_OUT, {}

    def controlled_shutdown(
        self, broker_id: int, broker_epoch: int, timeout: float
    ) -> tuple[Errors, list[TopicPartition]]:
        """ask_controlled_shutdown, waited for; REQUEST_TIMED_OUT after `timeout`."""
        try:
            return self.ask_controlled_shutdown(broker_id, broker_epoch).result(timeout)
        except FutureTimeout:
            return Errors.REQUEST_TIMED_OUT, []

    def _on_isr_change_watch(self, event: WatchedEvent) -> None:
        if event.type == EventType.CHILD:
            self.event_manager.put(IsrChangeNotification())

    # -- the event thread ------------------------------------------------------------------

    def process(self, event: ControllerEvent) -> None:
        if self._stopped:
            return
        handler = {
            Startup: self._process_startup,
            Reelect: self._process_reelect,
            ControllerChange: self._maybe_resign,
            BrokerChange: self._process_broker_change,
            IsrChangeNotification: self._process_isr_change_notification,
            Expire: self._process_expire,
            RegisterBrokerAndReelect: self._process_register_broker_and_reelect,
            ZkReconnected: self._process_zk_reconnected,
            Resign: self._process_resign,
            TopicChange: self._process_topic_change,
            TopicDeletion: self._process_topic_deletion,
            PreferredReplicaElectionZNode: self._process_preferred_replica_election_znode,
            AutoPreferredReplicaLeaderElection: self._process_auto_preferred_replica_leader_election,
        }.get(type(event))
        try:
            if isinstance(event, ReplicaLeaderElection):
                self._process_replica_leader_election(event)
            elif isinstance(event, ControlledShutdown):
                self._process_controlled_shutdown(event)
            elif handler is not None:
                handler()
        except ControllerMovedError as e:
            # A fenced write was refused: another broker is controller. Resign at once.
            self.log.warning(
                "Controller moved to another broker when processing %s: fenced write refused, %s. "
                "Resigning.",
                event.name, e,
            )
            # A caller waiting on the event (controlled shutdown, leader election) is answered
            # NOT_CONTROLLER now, as Kafka answers it the ControllerMovedException, instead of
            # waiting out its timeout: the handler stopped before it could answer.
            event.preempt()
            self._maybe_resign(force=True)
            self._elect()

    def _process_startup(self) -> None:
        self._remember_brokers(self._read_live_brokers(watch=False))
        self._elect()

    def _process_reelect(self) -> None:
        self._maybe_resign()
        self._elect()

    def _elect(self) -> None:
        """KafkaController.elect: follow the controller /controller names, or race for it."""
        while True:
            current = self._zk.get_controller(watch=self._on_controller_watch)
            step = controller_election.next_election_step(
                current.controller_id if current else None,
                bool(current and current.malformed),
                self.broker_id,
                acting_as_controller=self.is_active and self.context.epoch_zk_version >= 0,
            )
            if step is ElectionStep.FOLLOW:
                assert current is not None and current.controller_id is not None
                self.active_controller_id = current.controller_id
                self._remember_brokers(self._read_live_brokers(watch=False))
                self.log.debug(
                    "Broker %d has been elected as the controller, so stopping the election process.",
                    current.controller_id,
                )
                return
            if step is ElectionStep.CLEAR:
                assert current is not None
                if current.malformed:
                    self.log.error(
                        "Ignoring malformed controller registration (%s); deleting zk version %d of %s",
                        current.malformed, current.zk_version, zk_data.CONTROLLER_PATH,
                    )
                else:
                    self.log.warning(
                        "%s names this broker, which is not acting as controller; deleting zk version %d",
                        zk_data.CONTROLLER_PATH, current.zk_version,
                    )
                self._zk.delete_controller_if_version(current.zk_version)
                continue
            break
        try:
            epoch, epoch_zk_version = self._zk.register_controller_and_increment_epoch(self.broker_id)
        except ControllerMovedError:
            self._maybe_resign()
            if self.active_controller_id != -1:
                self.log.debug(
                    "Broker %d was elected as controller instead of broker %d",
                    self.active_controller_id, self.broker_id,
                )
            else:
                self.log.warning(
                    "A controller has been elected but just resigned, "
                    "this will result in another round of election"
                )
            return
        self.context = ControllerContext(epoch=epoch, epoch_zk_version=epoch_zk_version)
        self.active_controller_id = self.broker_id
        self.log.info(
            "%d successfully elected as the controller. Epoch incremented to %d "
            "and epoch zk version is now %d",
            self.broker_id, epoch, epoch_zk_version,
        )
        self._on_controller_failover()

    def _on_controller_failover(self) -> None:
        """Read the cluster back from ZooKeeper and take charge (onControllerFailover). The whole
        cluster's state is built here and kept until this broker resigns (heap.py)."""
        with heap.collection_paused():
            self._take_charge()

    def _take_charge(self) -> None:
        self.log.info("Registering handlers")
        brokers = {b.broker_id: b for b in self._read_live_brokers()}
        # What changed since this broker last looked: the old controller is often among the
        # dead, its registration gone in the same session expiry that freed /controller.
        self._log_broker_changes(self._known_brokers, brokers)
        self.context.live_brokers = brokers
        self._remember_brokers(brokers.values())
        self.log.info(
            "Initialized broker epochs cache: %s",
            _format_epochs(self.context.live_broker_epochs()),
        )
        self.log.info("Currently active brokers in the cluster: %s", _ids(self.context.live_brokers))
        for info in brokers.values():
            self.channels.add_broker(info)
        live = self.context.live_or_shutting_down_broker_ids()
        # Every broker learns the new controller and the live brokers at once, before the state
        # is read; the whole state follows in the batch that carries the elections' results.
        # Kafka sends the whole state twice, before the elections and (what they changed) after:
        # each copy costs a broker a second of a 50,000-partition failover here, on the machine
        # the controller shares.
        self.batch.add_update_metadata(live)
        self.batch.send()
        self.log.info("Deleting isr change notifications")
        self._process_isr_change_notification()
        self._load_topics(self._zk.get_all_topics(watch=self._on_topics_watch))
        self.partition_state_machine.initialize()
        self.log.info(
            "Initialized %d topics, %d partitions, %d offline",
            len(self.context.topics), len(self.context.assignments), len(self.context.offline_partitions()),
        )
        self.batch.add_update_metadata(live, self.context.assignments)
        self.replica_state_machine.online(live, with_metadata=False)
        self.partition_state_machine.trigger_online_partition_state_change()
        # Replicas on brokers that are gone leave the ISRs (ReplicaStateMachine.startup).
        self.replica_state_machine.offline(
            {r for replicas in self.context.assignments.values() for r in replicas} - live
        )
        self.batch.send()
        self._process_topic_deletion()
        self._process_preferred_replica_election_znode()
        self.log.info("Ready to serve as the new controller with epoch %d", self.context.epoch)

    def _maybe_resign(self, force: bool = False) -> None:
        """KafkaController.maybeResign: re-read /controller; resign if it is no longer us.
        `force`: a fenced write was refused, so this broker's epoch is stale whatever
        /controller says."""
        was = self.active_controller_id
        current = self._zk.get_controller(watch=self._on_controller_watch)
        now = current.controller_id if current and current.controller_id is not None else -1
        if force and now == self.broker_id:
            now = -1
        self.active_controller_id = now
        if controller_election.must_resign(self.broker_id, was, now):
            self._on_controller_resignation(f"/controller now names {now if now != -1 else 'nobody'}")

    def _on_controller_resignation(self, reason: str) -> None:
        """Forget everything the controller knew, then release /controller.

        The release is Kafka's fenced deleteController (as in triggerControllerMove), made on
        every resignation: whether /controller is still ours to delete is decided by
        ZooKeeper's check on /controller_epoch, never by this broker's view, which may be
        stale. A clean resignation frees /controller at once; a zombie's is refused by the
        epoch check and can never remove the new controller's registration. Kafka makes this
        write only in triggerControllerMove; making it on every resignation shows the fence at
        work in every zombie episode."""
        self.log.info("Resigning")
        epoch, expected_zk_version = self.context.epoch, self.context.epoch_zk_version
        self.context = ControllerContext()
        self.batch.clear()
        self.channels.shutdown()
        self.partition_state_machine.reset()
        self.log.info("Broker %d resigned as the controller of epoch %d (%s)", self.broker_id, epoch, reason)
        try:
            if self._zk.delete_controller(expected_zk_version):
                self.log.info("Deleted %s, fenced by epoch zk version %d", zk_data.CONTROLLER_PATH, expected_zk_version)
        except ControllerMovedError as e:
            self.log.warning(
                "Controller has already moved: fenced delete of %s as the controller of epoch %d "
                "refused by the epoch check, %s",
                zk_data.CONTROLLER_PATH, epoch, e,
            )

    def _process_expire(self) -> None:
        """The session is gone: stop acting as controller at once."""
        was_active = self.is_active
        self.active_controller_id = -1
        self.log.warning("ZooKeeper session of broker %d expired", self.broker_id)
        if was_active:
            self._on_controller_resignation("ZooKeeper session expired")

    def _process_register_broker_and_reelect(self) -> None:
        try:
            self.broker_epoch = self._zk.register_broker(self._broker_info)
        except BrokerIdInUseError as e:
            self.log.error("%s", e)
            self._on_fatal(str(e))
            return
        self.log.info(
            "Registered broker %d at path %s with addresses: %s, czxid (broker epoch): %d",
            self.broker_id, zk_data.broker_id_path(self.broker_id),
            ",".join(self._broker_info.endpoints), self.broker_epoch,
        )
        self._process_reelect()

    def _process_zk_reconnected(self) -> None:
        """Same session, watches lost: set every one again and catch up on what was missed.
        (Kafka's ZooKeeper client keeps its watches across a reconnection; kazoo drops them all.)"""
        self.log.info("Reconnected to ZooKeeper with the same session; registering watches again")
        self._process_reelect()
        if self.is_active:
            self._process_broker_change()
            self._process_isr_change_notification()
            self._process_topic_change()
            self._process_topic_deletion()
            self._process_preferred_replica_election_znode()

    def _process_resign(self) -> None:
        if self.is_active:
            self.active_controller_id = -1
            self._on_controller_resignation("broker shutting down")
        self._stopped = True

    # -- broker changes ----------------------------------------------------------------------

    def _read_live_brokers(self, watch: bool = True) -> list[BrokerInfo]:
        brokers, malformed = self._zk.get_brokers(watch=self._on_broker_ids_watch if watch else None)
        for problem in malformed:
            self.log.error("Ignoring malformed broker registration: %s", problem)
        return brokers

    def _remember_brokers(self, brokers: Iterable[BrokerInfo]) -> None:
        self._known_brokers = {b.broker_id: b for b in brokers}

    def _process_broker_change(self) -> None:
        if not self.is_active:
            return
        brokers = {b.broker_id: b for b in self._read_live_brokers()}
        changes = self._log_broker_changes(self.context.live_brokers, brokers)
        self.context.live_brokers = brokers
        self._remember_brokers(brokers.values())
        if changes is None:
            return
        for broker_id in changes.dead:
            self.channels.remove_broker(broker_id)
            self.context.shutting_down_broker_ids.discard(broker_id)
        for broker_id in changes.new + changes.bounced:
            self.channels.add_broker(brokers[broker_id])
        if changes.bounced:
            # A bounced broker lost its replicas' state: treat it as failed, then as new. As in
            # Kafka, it is out of the live brokers while it fails, or its partitions would be
            # re-elected onto it and then lose that leader with its replicas' ISR clean-up.
            self.context.live_brokers = {b: info for b, info in brokers.items() if b not in changes.bounced}
            self._on_broker_failure(list(changes.bounced))
            self.context.live_brokers = brokers
        if changes.dead:
            self._on_broker_failure(list(changes.dead))
        if changes.new or changes.bounced:
            self._on_broker_startup(list(changes.new + changes.bounced))
        self.batch.add_update_metadata(self.context.live_or_shutting_down_broker_ids())
        self.batch.send()

    def _on_broker_startup(self, broker_ids: list[int]) -> None:
        """KafkaController.onBrokerStartup: the new brokers learn everything, their replicas
        come online, and partitions they can lead get a leader."""
        self.batch.add_update_metadata(broker_ids, self.context.assignments)
        self.replica_state_machine.online(broker_ids)
        self.partition_state_machine.trigger_online_partition_state_change()

    def _on_broker_failure(self, broker_ids: list[int]) -> None:
        """KafkaController.onBrokerFailure: partitions they led go offline and are re-elected;
        their replicas leave every ISR."""
        dead = set(broker_ids)
        led = [
            tp for tp, state in sorted(self.context.leadership.items())
            if state.leader in dead and tp[0] not in self.context.topics_being_deleted
        ]
        self.partition_state_machine.handle_state_changes(led, PartitionState.OFFLINE_PARTITION)
        self.partition_state_machine.trigger_online_partition_state_change()
        # New leaders go out before the ISR clean-up, as each of Kafka's state changes sends its batch.
        self.batch.send()
        self.replica_state_machine.offline(dead)

    def _log_broker_changes(
        self, known: dict[int, BrokerInfo], current: dict[int, BrokerInfo]
    ) -> controller_election.BrokerChanges | None:
        changes = controller_election.broker_changes(
            {b: info.broker_epoch for b, info in known.items()},
            {b: info.broker_epoch for b, info in current.items()},
        )
        if not changes.any:
            return None
        self.log.info(
            "Newly added brokers: %s, deleted brokers: %s, bounced brokers: %s, all live brokers: %s",
            _join(changes.new), _join(changes.dead), _join(changes.bounced), _join(changes.live),
        )
        if changes.new:
            self.log.info("New broker startup callback for %s", _join(changes.new))
            for b in changes.new:
                self.log.info(
                    "Broker %d registered with broker epoch %d at %s",
                    b, current[b].broker_epoch, ",".join(current[b].endpoints),
                )
        for b in changes.bounced:
            self.log.info(
                "Broker %d restarted: broker epoch %d -> %d", b, known[b].broker_epoch, current[b].broker_epoch
            )
        if changes.dead:
            self.log.info("Broker failure callback for %s", _join(changes.dead))
            for b in changes.dead:
                self.log.info("Broker %d with broker epoch %d is gone", b, known[b].broker_epoch)
        return changes

    # -- topics ------------------------------------------------------------------------------

    def _load_topics(self, topics: list[str]) -> list[TopicPartition]:
        """Read assignments, configs and partition states of `topics` into the context;
        returns their partitions."""
        assignments, malformed = self._zk.get_topic_assignments(topics)
        for problem in malformed:
            self.log.error("Ignoring malformed topic: %s", problem)
        configs = self._zk.get_topic_configs(list(assignments))
        partitions: list[TopicPartition] = []
        for topic, assignment in assignments.items():
            self.context.topic_ids[topic] = assignment.topic_id
            self.context.topic_configs[topic] = configs.get(topic, {})
            for partition, replicas in assignment.partitions.items():
                self.context.assignments[(topic, partition)] = replicas
                partitions.append((topic, partition))
        for tp, state in self._zk.get_partition_states(partitions).items():
            self.context.leadership[tp] = LeaderAndIsr(state.leader, state.leader_epoch, state.isr, state.zk_version)
        return sorted(partitions)

    def _process_topic_change(self) -> None:
        if not self.is_active:
            return
        topics = set(self._zk.get_all_topics(watch=self._on_topics_watch))
        known = self.context.topics
        for topic in sorted(known - topics):  # deleted behind the controller's back
            self._forget_topic(topic)
        new_topics = sorted(topics - known)
        if not new_topics:
            return
        self.log.info("New topics: [%s]", ",".join(new_topics))
        partitions = self._load_topics(new_topics)
        new_partitions = [tp for tp in partitions if tp not in self.context.leadership]
        self.log.info("New partition creation callback for %s", ",".join(f"{t}-{p}" for t, p in new_partitions))
        self.partition_state_machine.handle_state_changes(new_partitions, PartitionState.NEW_PARTITION)
        self.partition_state_machine.handle_state_changes(new_partitions, PartitionState.ONLINE_PARTITION)
        self.batch.send()

    def _forget_topic(self, topic: str) -> list[TopicPartition]:
        partitions = self.context.partitions_of(topic)
        for tp in partitions:
            self.context.assignments.pop(tp, None)
            self.context.leadership.pop(tp, None)
            self.partition_state_machine.states.pop(tp, None)
        self.context.topic_ids.pop(topic, None)
        self.context.topic_configs.pop(topic, None)
        self.context.topics_being_deleted.discard(topic)
        return partitions

    def _process_topic_deletion(self) -> None:
        """Kafka's TopicDeletionManager, in one step: stop and delete the replicas, remove the
        topic's znodes (fenced), and tell every broker. Kafka waits for every StopReplica answer
        before it removes the znodes; brokers here hold no data yet, so nothing waits."""
        if not self.is_active:
            return
        for topic in self._zk.get_topic_deletions(watch=self._on_topic_deletions_watch):
            if topic not in self.context.topics:
                self.log.info("Ignoring request to delete non-existing topic %s", topic)
                self._zk.delete_topic_znodes(self.context.epoch_zk_version, topic)
                continue
            self.log.info("Starting deletion of topic %s", topic)
            self.context.topics_being_deleted.add(topic)
            partitions = self.context.partitions_of(topic)
            self.partition_state_machine.handle_state_changes(partitions, PartitionState.OFFLINE_PARTITION)
            self.partition_state_machine.handle_state_changes(partitions, PartitionState.NON_EXISTENT_PARTITION)
            for tp in partitions:
                self.batch.add_stop_replica(self.context.assignments[tp], tp, delete=True)
            self._zk.delete_topic_znodes(self.context.epoch_zk_version, topic)
            self._forget_topic(topic)
            self.batch.add_deleted_partitions(partitions)
            self.log.info("Deletion of topic %s successfully completed", topic)
        self.batch.send()

    # -- preferred leader election -------------------------------------------------------------

    def _elect_preferred(self, partitions: list[TopicPartition] | None) -> dict[TopicPartition, Errors]:
        results: dict[TopicPartition, Errors] = {}
        candidates = []
        for tp in sorted(self.context.assignments) if partitions is None else partitions:
            replicas = self.context.assignments.get(tp)
            if replicas is None or tp[0] in self.context.topics_being_deleted:
                results[tp] = Errors.UNKNOWN_TOPIC_OR_PARTITION
            elif self.context.leadership.get(tp) and self.context.leadership[tp].leader == replicas[0]:
                results[tp] = Errors.ELECTION_NOT_NEEDED
            else:
                candidates.append(tp)
        if candidates:
            self.log.info("Starting replica leader election (PREFERRED) for partitions %s",
                          ",".join(f"{t}-{p}" for t, p in candidates))
            results.update(self.partition_state_machine.handle_state_changes(
                candidates, PartitionState.ONLINE_PARTITION, Election.PREFERRED
            ))
            self.batch.send()
        return results

    def _process_replica_leader_election(self, event: ReplicaLeaderElection) -> None:
        if not self.is_active:
            event.callback(Errors.NOT_CONTROLLER, {})
            return
        event.callback(Errors.NONE, self._elect_preferred(event.partitions))

    def _process_preferred_replica_election_znode(self) -> None:
        if not self.is_active:
            return
        partitions = self._zk.get_preferred_replica_election(watch=self._on_preferred_election_watch)
        if partitions is None:
            return
        self._elect_preferred(partitions)
        self._zk.delete_preferred_replica_election(self.context.epoch_zk_version)

    def _process_auto_preferred_replica_leader_election(self) -> None:
        if not self.is_active:
            return
        imbalanced = controller_election.imbalanced_partitions(
            self.context.assignments,
            {tp: state.leader for tp, state in self.context.leadership.items()},
            self.context.live_broker_ids(),
            self.leader_imbalance_per_broker_percentage,
        )
        if imbalanced:
            self.log.info("Starting automatic preferred replica leader election for %d partitions", len(imbalanced))
            self._elect_preferred(imbalanced)

    # -- controlled shutdown -------------------------------------------------------------------

    def _process_controlled_shutdown(self, event: ControlledShutdown) -> None:
        """KafkaController.doControlledShutdown: move leadership off the broker, take its
        follower replicas out of the ISRs, and say which partitions it still leads."""
        if not self.is_active:
            event.callback(Errors.NOT_CONTROLLER, [])
            return
        broker = self.context.live_brokers.get(event.broker_id)
        if broker is None:
            self.log.info("Controlled shutdown of unknown broker %d", event.broker_id)
            event.callback(Errors.BROKER_NOT_AVAILABLE, [])
            return
        if event.broker_epoch not in (-1, broker.broker_epoch):
            event.callback(Errors.STALE_BROKER_EPOCH, [])
            return
        self.log.info("Shutting down broker %d", event.broker_id)
        self.context.shutting_down_broker_ids.add(event.broker_id)
        to_act_on = [
            tp for tp in self.context.partitions_on_broker(event.broker_id)
            if len(self.context.assignments[tp]) > 1 and tp in self.context.leadership
            and tp[0] not in self.context.topics_being_deleted
        ]
        led = [tp for tp in to_act_on if self.context.leadership[tp].leader == event.broker_id]
        # Split before the elections, as Kafka does: only the partitions it followed lose its
        # replica. One whose leadership could not move keeps it (and its ISR) until the broker
        # stops, and is answered as remaining.
        followed = [tp for tp in to_act_on if self.context.leadership[tp].leader != event.broker_id]
        self.partition_state_machine.handle_state_changes(
            led, PartitionState.ONLINE_PARTITION, Election.CONTROLLED_SHUTDOWN
        )
        self.replica_state_machine.offline([event.broker_id], stop_replicas=True, partitions=followed)
        self.batch.send()
        # Kafka's partitionLeadersOnBroker: among the same partitions, as a partition of one
        # replica can never move and is no reason to try again.
        remaining = [tp for tp in to_act_on if self.context.leadership[tp].leader == event.broker_id]
        self.log.info("Broker %d still leads %d partitions: %s", event.broker_id, len(remaining),
                      ",".join(f"{t}-{p}" for t, p in remaining))
        event.callback(Errors.NONE, remaining)

    def _process_isr_change_notification(self) -> None:
        """Delete processed ISR change notifications (fenced). Partition state arrives with
        topics; until then there is nothing to update before deleting."""
        if not self.is_active:
            return
        children = self._zk.get_children(zk_data.ISR_CHANGE_NOTIFICATION_PATH, watch=self._on_isr_change_watch)
        if not children:
            return
        partitions = [tp for tp in self._zk.get_isr_change_notifications(children) if tp in self.context.assignments]
        for tp, state in self._zk.get_partition_states(partitions).items():
            self.context.leadership[tp] = LeaderAndIsr(state.leader, state.leader_epoch, state.isr, state.zk_version)
        if partitions:
            self.batch.add_update_metadata(self.context.live_or_shutting_down_broker_ids(), partitions)
            self.batch.send()
        self._zk.delete_isr_change_notifications(self.context.epoch_zk_version, children)
        self.log.info("Processed %d isr change notifications for partitions %s", len(children),
                      ",".join(f"{t}-{p}" for t, p in partitions))


def _join(ids: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in ids)


def _ids(brokers: dict[int, BrokerInfo]) -> str:
    return ",".join(str(b) for b in sorted(brokers))


def _format_epochs(epochs: dict[int, int]) -> str:
    return ", ".join(f"{b} -> {e}" for b, e in sorted(epochs.items()))
