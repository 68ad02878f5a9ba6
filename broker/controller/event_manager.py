"""The controller's single event thread (Kafka's ControllerEventManager).

Everything that touches controller state runs here, one event at a time. ZooKeeper watches,
session changes and requests only put events on the queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class ControllerEvent:
    """Base of every event; `name` is what the logs call it."""

    enqueued_at: float = field(default_factory=time.monotonic, compare=False, repr=False)

    @property
    def name(self) -> str:
        return type(self).__name__

    def preempt(self) -> None:
        """Kafka's ControllerEvent.preempt: the event is dropped unprocessed (the controller's
        session is gone); one whose caller waits answers it here."""


@dataclass
class Startup(ControllerEvent):
    pass


@dataclass
class Reelect(ControllerEvent):
    """/controller was deleted."""


@dataclass
class ControllerChange(ControllerEvent):
    """/controller was created or changed."""


@dataclass
class BrokerChange(ControllerEvent):
    """The children of /brokers/ids changed."""


@dataclass
class IsrChangeNotification(ControllerEvent):
    """A partition leader announced an ISR change under /isr_change_notification."""


@dataclass
class Expire(ControllerEvent):
    """The ZooKeeper session is gone."""


@dataclass
class RegisterBrokerAndReelect(ControllerEvent):
    """A new ZooKeeper session replaced the expired one."""


@dataclass
class ZkReconnected(ControllerEvent):
    """The connection came back on the same session; kazoo dropped every watch meanwhile."""


@dataclass
class ShutdownEventThread(ControllerEvent):
    done: threading.Event = field(default_factory=threading.Event, compare=False)


class ControllerEventManager:
    def __init__(self, broker_id: int, process: Callable[[ControllerEvent], None]) -> None:
        self._process = process
        self._queue: queue.Queue[ControllerEvent] = queue.Queue()
        self._thread = threading.Thread(
            target=self._run, name=f"controller-event-thread-{broker_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def put(self, event: ControllerEvent) -> None:
        self._queue.put(event)

    def clear_and_put(self, event: ControllerEvent) -> None:
        """Kafka's clearAndPut: the queued events were meant for a session or a role that is
        gone, so each is preempted (a waiting caller is answered at once) and dropped, and
        `event` comes next. A queued shutdown is kept, after `event`: its caller waits for the
        thread to stop."""
        shutdowns: list[ControllerEvent] = []
        while True:
            try:
                dropped = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(dropped, ShutdownEventThread):
                shutdowns.append(dropped)
                continue
            try:
                dropped.preempt()
            except Exception:
                log.exception("Uncaught error preempting event %s", dropped.name)
        self._queue.put(event)
        for shutdown in shutdowns:
            self._queue.put(shutdown)

    def close(self, timeout: float) -> bool:
        """Ask the thread to stop after the events before this call; True if it did."""
        event = ShutdownEventThread()
        self._queue.put(event)
        return event.done.wait(timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if isinstance(event, ShutdownEventThread):
                event.done.set()
                return
            try:
                self._process(event)
            except Exception:
                log.exception("Uncaught error processing event %s", event.name)

    @property
    def queue_size(self) -> int:
        return self._queue.qsize()
