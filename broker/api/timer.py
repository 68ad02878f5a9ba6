"""The request timer (Kafka's SystemTimer, the purgatories' expiration reaper): one thread that
answers parked requests whose time ran out, so that no request holds a thread to time itself."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from broker.api.futures import answer_once

T = TypeVar("T")


class RequestTimer:
    def __init__(self, name: str = "request-timer") -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._started = False
        self._name = name

    def after(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run `action` on the timer's thread once `delay_s` has passed."""
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay_s, next(self._order), action))
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name=self._name, daemon=True).start()
            self._wake.notify()

    def expire(self, future: Future[T], timeout_s: float, expired: T) -> Future[T]:
        """`future`, answered `expired` unless it has its answer within `timeout_s`."""
        self.after(timeout_s, lambda: answer_once(future, expired))
        return future

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, _, action = heapq.heappop(self._due)
            action()
