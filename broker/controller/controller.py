"""KafkaController: controller election, failover, resignation and broker changes.

Runs every event on one thread (ControllerEventManager). Each broker has one; at most one is
active, the one whose id /controller holds. Every ZooKeeper write it makes as controller is
fenced by the zk version of /controller_epoch it set when it won.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kazoo.protocol.states import EventType, WatchedEvent

from broker.controller import controller_election
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
from broker.zk import zk_data
from broker.zk.kafka_zk_client import (
    BrokerIdInUseError,
    ControllerMovedError,
    KafkaZkClient,
    SessionEvent,
)
from broker.zk.zk_data import BrokerInfo


class PrefixLogger(logging.LoggerAdapter):
    """Kafka's logIdent: `[Controller id=1] ...`."""

    def process(self, msg, kwargs):  # type: ignore[no-untyped-def]
        return f"{self.extra['prefix']} {msg}", kwargs


@dataclass
class ControllerContext:
    """What the active controller knows; reset when it resigns."""

    epoch: int = 0
    epoch_zk_version: int = -1
    live_brokers: dict[int, BrokerInfo] = field(default_factory=dict)

    def live_broker_epochs(self) -> dict[int, int]:
        return {b: info.broker_epoch for b, info in self.live_brokers.items()}


@dataclass
class Resign(ControllerEvent):
    """The broker is shutting down: stop being controller and free /controller at once."""


class KafkaController:
    def __init__(
        self,
        broker_info: BrokerInfo,
        zk: KafkaZkClient,
        on_fatal: Callable[[str], None],
    ) -> None:
        self.broker_id = broker_info.broker_id
        self._broker_info = broker_info
        self._zk = zk
        self._on_fatal = on_fatal
        self.log = PrefixLogger(logging.getLogger(__name__), {"prefix": f"[Controller id={self.broker_id}]"})
        self.event_manager = ControllerEventManager(self.broker_id, self.process)
        self.context = ControllerContext()
        # Only the event thread writes these; other threads may read them.
        self.active_controller_id = -1
        self.broker_epoch = -1
        self._stopped = False
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

    def shutdown(self, timeout: float) -> None:
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
        }[type(event)]
        try:
            handler()
        except ControllerMovedError as e:
            # A fenced write was refused: another broker is controller. Resign at once.
            self.log.warning(
                "Controller moved to another broker when processing %s: fenced write refused, %s. "
                "Resigning.",
                event.name, e,
            )
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
        """Read the cluster back from ZooKeeper and take charge (onControllerFailover)."""
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
        self.log.info("Deleting isr change notifications")
        self._process_isr_change_notification()
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
        """Same session, watches lost: set them again and catch up on what was missed."""
        self.log.info("Reconnected to ZooKeeper with the same session; registering watches again")
        self._process_reelect()
        if self.is_active:
            self._process_broker_change()
            self._process_isr_change_notification()

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
        self._log_broker_changes(self.context.live_brokers, brokers)
        self.context.live_brokers = brokers
        self._remember_brokers(brokers.values())

    def _log_broker_changes(self, known: dict[int, BrokerInfo], current: dict[int, BrokerInfo]) -> None:
        changes = controller_election.broker_changes(
            {b: info.broker_epoch for b, info in known.items()},
            {b: info.broker_epoch for b, info in current.items()},
        )
        if not changes.any:
            return
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

    def _process_isr_change_notification(self) -> None:
        """Delete processed ISR change notifications (fenced). Partition state arrives with
        topics; until then there is nothing to update before deleting."""
        if not self.is_active:
            return
        children = self._zk.get_children(zk_data.ISR_CHANGE_NOTIFICATION_PATH, watch=self._on_isr_change_watch)
        if children:
            self._zk.delete_isr_change_notifications(self.context.epoch_zk_version, children)
            self.log.info("Processed %d isr change notifications", len(children))


def _join(ids: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in ids)


def _ids(brokers: dict[int, BrokerInfo]) -> str:
    return ",".join(str(b) for b in sorted(brokers))


def _format_epochs(epochs: dict[int, int]) -> str:
    return ", ".join(f"{b} -> {e}" for b, e in sorted(epochs.items()))
