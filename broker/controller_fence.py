"""A broker's check of the controller behind each LeaderAndIsr, UpdateMetadata and StopReplica.

Kafka refuses only a request older than the newest controller epoch the broker has seen, so a
forged newer epoch (999, say) is believed, and afterwards every request of the real controller
looks stale. Here, differing from Kafka on purpose, a sender is believed only once ZooKeeper
confirms it: the first request of each (controller epoch, controller id) the broker has not
confirmed yet makes it read `/controller_epoch` and `/controller` (after a sync, so that its
ZooKeeper server is not behind the controller's election) and refuse, with
STALE_CONTROLLER_EPOCH, an epoch or controller id ZooKeeper does not hold. That makes a forged
epoch harmless even on a plaintext cluster; requests of the confirmed controller cost nothing.

A request with the current epoch and controller id needs the sender to know both: keeping such
a caller out is the listeners' and the authorizer's job."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControllerIdentity:
    """A controller as ZooKeeper names it: the epoch in /controller_epoch, the broker in /controller
    (None when either znode is missing)."""

    epoch: int | None
    controller_id: int | None


class Verdict(Enum):
    ACCEPT = "accept"  # the confirmed controller
    STALE = "stale"  # older than the confirmed controller
    CONFIRM = "confirm"  # not confirmed yet: ask ZooKeeper


def check(confirmed: ControllerIdentity, controller_id: int, controller_epoch: int) -> Verdict:
    """What a request from `controller_id` at `controller_epoch` needs, given the last controller
    ZooKeeper confirmed to this broker."""
    if confirmed.epoch is not None and controller_epoch < confirmed.epoch:
        return Verdict.STALE
    if controller_epoch == confirmed.epoch and controller_id == confirmed.controller_id:
        return Verdict.ACCEPT
    return Verdict.CONFIRM


def confirms(zookeeper: ControllerIdentity, controller_id: int, controller_epoch: int) -> bool:
    """Whether ZooKeeper names the sender the controller of its epoch. A controller whose
    /controller is gone has lost its session: its successor resends all it needs."""
    return zookeeper.epoch == controller_epoch and zookeeper.controller_id == controller_id


def log_stale(prefix: str, kind: str, controller_id: int, controller_epoch: int, latest: int) -> None:
    """Kafka's words for a request from an older controller than the latest known one."""
    log.warning("%s Ignoring %s request from controller %d with controller epoch %d since it is older "
                "than the latest known controller epoch %d", prefix, kind, controller_id, controller_epoch, latest)


class ControllerFence:
    """The owner of the controller this broker has confirmed. `read` reads ZooKeeper, retrying
    through connection loss for a session timeout before it raises: a broker out of touch that
    long loses its session and is sent everything again when it registers anew."""

    def __init__(self, prefix: str, read: Callable[[], ControllerIdentity]) -> None:
        self._prefix = prefix
        self._read = read
        self._lock = threading.Lock()  # one confirmation at a time; the controller sends one request at a time
        self.confirmed = ControllerIdentity(None, None)

    def verify(self, kind: str, controller_id: int, controller_epoch: int, sender: str) -> Errors:
        with self._lock:
            verdict = check(self.confirmed, controller_id, controller_epoch)
            if verdict is Verdict.ACCEPT:
                return Errors.NONE
            if verdict is Verdict.STALE:
                assert self.confirmed.epoch is not None
                log_stale(self._prefix, kind, controller_id, controller_epoch, self.confirmed.epoch)
                return Errors.STALE_CONTROLLER_EPOCH
            zookeeper = self._read_zookeeper()
            if zookeeper is not None and confirms(zookeeper, controller_id, controller_epoch):
                log.info("%s Confirmed controller %d epoch %d in ZooKeeper (%s request from %s)",
                         self._prefix, controller_id, controller_epoch, kind, sender)
                self.confirmed = zookeeper
                return Errors.NONE
            found = "could not be read" if zookeeper is None else (
                f"names controller {zookeeper.controller_id} epoch {zookeeper.epoch}")
            log.warning("%s Refusing %s request from %s claiming controller %d epoch %d: ZooKeeper %s",
                        self._prefix, kind, sender, controller_id, controller_epoch, found)
            return Errors.STALE_CONTROLLER_EPOCH

    def _read_zookeeper(self) -> ControllerIdentity | None:
        try:
            return self._read()
        except Exception as e:  # ZooKeeper out of reach: the request is refused
            log.warning("%s Cannot read the controller from ZooKeeper: %s", self._prefix, e)
            return None
