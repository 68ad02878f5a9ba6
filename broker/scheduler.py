"""KafkaScheduler: the broker's periodic tasks (high watermark checkpoints, log retention,
recovery point checkpoints) on one background thread."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class KafkaScheduler:
    def __init__(self, name: str = "kafka-scheduler") -> None:
        self._tasks: list[tuple[float, int, str, Callable[[], None], float]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def schedule(self, name: str, task: Callable[[], None], period_s: float, delay_s: float | None = None) -> None:
        with self._wake:
            first = time.monotonic() + (period_s if delay_s is None else delay_s)
            heapq.heappush(self._tasks, (first, next(self._order), name, task, period_s))
            self._wake.notify()

    def shutdown(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._tasks or self._tasks[0][0] > time.monotonic()):
                    self._wake.wait(self._tasks[0][0] - time.monotonic() if self._tasks else None)
                if self._stopped:
                    return
                _, _, name, task, period = heapq.heappop(self._tasks)
                heapq.heappush(self._tasks, (time.monotonic() + period, next(self._order), name, task, period))
            try:
                task()
            except Exception:
                log.exception("Uncaught error in scheduled task '%s'", name)
