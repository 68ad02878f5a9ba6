"""Kafka's HeartbeatThread: the consumer group member's only helper thread. It sends a Heartbeat
every heartbeat.interval.ms to the coordinator of the current generation and *reports* what it
learnt (`HeartbeatFailed`, `PollTimeout`) through a callback that queues it for the consumer's
next poll(): the consumer's thread stays the one owner of the group state.

Unlike Kafka's, it does not look for a new coordinator itself: it stops and the next poll() does,
so a consumer that is not polled is dropped after `session.timeout.ms`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from client.cluster import KafkaError
from client.group.member import Generation
from client.group.wire import Coordinator, GroupClient, heartbeat_request
from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeartbeatTarget:
    """Whom to heartbeat with which generation; a new object restarts the schedule."""

    coordinator: Coordinator
    generation: Generation


@dataclass(frozen=True)
class HeartbeatFailed:
    target: HeartbeatTarget
    error: KafkaError


@dataclass(frozen=True)
class PollTimeout:
    """poll() was not called for max.poll.interval.ms: the member left (a dynamic one) or is leaving."""

    target: HeartbeatTarget


class HeartbeatThread:
    """Kafka's HeartbeatThread: a Heartbeat every heartbeat.interval.ms while a generation is
    current. It changes no group state: what it learns goes to `report`, for the next poll().

    REBALANCE_IN_PROGRESS is reported once and heartbeats go on (they keep the session alive until
    the rejoin); any other error, a lost connection included, stops them until the consumer's
    thread sets a new target. When poll() has not been called for max.poll.interval.ms, a dynamic
    member leaves the group from here (as Kafka's does), since nobody else will."""

    def __init__(self, client: GroupClient, group_id: str, group_instance_id: str | None, interval_s: float,
                 session_timeout_s: float, max_poll_interval_s: float, request_timeout_s: float,
                 report: Callable[[object], None]) -> None:
        self._client = client
        self._group_id = group_id
        self._group_instance_id = group_instance_id
        self._interval_s = interval_s
        self._session_timeout_s = session_timeout_s
        self._max_poll_interval_s = max_poll_interval_s
        self._request_timeout_s = request_timeout_s
        self._report = report
        self._cond = threading.Condition()
        self._target: HeartbeatTarget | None = None
        self._closed = False
        self._last_poll = time.monotonic()
        self._thread: threading.Thread | None = None

    def start(self, target: HeartbeatTarget) -> None:
        """Heartbeat for `target` from now on (a new object restarts the schedule)."""
        with self._cond:
            if self._target is target:
                return
            self._target = target
            self._cond.notify_all()
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self._group_id}", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._target = None
            self._cond.notify_all()

    def record_poll(self) -> None:
        self._last_poll = time.monotonic()

    @property
    def last_poll(self) -> float:
        return self._last_poll

    def close(self) -> None:
        # Not joined: a heartbeat in flight ends when the consumer closes its channels.
        with self._cond:
            self._closed, self._target = True, None
            self._cond.notify_all()

    def _run(self) -> None:
        target: HeartbeatTarget | None = None
        next_at = 0.0
        told_rebalancing = False
        while True:
            poll_timed_out = False
            with self._cond:
                while True:
                    if self._closed:
                        return
                    if self._target is not target:  # a new generation or coordinator: start afresh
                        target, told_rebalancing = self._target, False
                        next_at = time.monotonic() + self._interval_s
                    if target is None:
                        self._cond.wait()
                        continue
                    now = time.monotonic()
                    if now - self._last_poll > self._max_poll_interval_s:
                        self._target, poll_timed_out = None, True
                        break
                    if now >= next_at:
                        break
                    self._cond.wait(next_at - now)
            if poll_timed_out:
                self._leave_on_poll_timeout(target)
                continue
            sent_at = time.monotonic()
            error = self._heartbeat(target)
            next_at = sent_at + self._interval_s
            if error.error is Errors.NONE or (error.error is Errors.REBALANCE_IN_PROGRESS and told_rebalancing):
                continue
            with self._cond:
                if self._target is not target:
                    continue  # answered for a generation the consumer has left meanwhile
                if error.error is Errors.REBALANCE_IN_PROGRESS:
                    told_rebalancing = True
                else:
                    self._target = None
            self._report(HeartbeatFailed(target, error))

    def _heartbeat(self, target: HeartbeatTarget) -> KafkaError:
        request = heartbeat_request(group_id=self._group_id, generation_id=target.generation.generation_id,
                                    member_id=target.generation.member_id, group_instance_id=self._group_instance_id)
        try:
            response = self._client.call(target.coordinator, "Heartbeat", request,
                                         min(self._request_timeout_s, self._session_timeout_s))
        except KafkaError as e:
            return e
        error = Errors.for_code(response.error_code)
        return KafkaError(error, f"Heartbeat of generation {target.generation.generation_id}")

    def _leave_on_poll_timeout(self, target: HeartbeatTarget) -> None:
        log.warning("consumer poll timeout has expired: poll() was not called within max.poll.interval.ms "
                    "(%.0f ms), so member %s leaves group %s", self._max_poll_interval_s * 1000,
                    target.generation.member_id, self._group_id)
        if self._group_instance_id is None:
            self._client.leave_group(target.coordinator, self._group_id, target.generation.member_id,
                                     self._request_timeout_s)
        self._report(PollTimeout(target))

