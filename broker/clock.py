"""The wall clock in milliseconds, as Kafka's Time.milliseconds: what ISR lag and fetch sessions count in."""

from __future__ import annotations

import time


def now_ms() -> int:
    return int(time.time() * 1000)
