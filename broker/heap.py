"""The broker's long-lived objects and Python's cyclic garbage collector.

A broker keeps some tens of objects per partition for as long as it hosts the partition: at
50,000 partitions the collector tracks nearly two million. A full collection visits every one,
holding the GIL for half a second or more, and a burst of allocations (a controller failover, a
LeaderAndIsr or UpdateMetadata for thousands of partitions) sets off several in a row, just when
a failover must be quick: measured at 50,000 partitions, 3.2 s of a new controller's 10 s went to
the collector. A JVM's concurrent collectors spare a Kafka broker this.

So once a burst of long-lived state is in place, the broker collects once and moves whatever
survives into the collector's permanent generation (`gc.freeze`), which later collections skip.
Collecting first leaves no garbage cycle to be frozen. A cycle among frozen objects that becomes
garbage later (a deleted partition's, say) is reclaimed by the next `settle(reclaim=True)`, which
thaws everything and pays one full collection: topic deletion does that.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

_lock = threading.Lock()

# Allocations between young collections; CPython's default is 700. With the long-lived state
# frozen, the collector's rule for full collections (a quarter more objects than the last full
# one left) is met almost every time, and a failover allocating millions of short-lived objects
# then paid for twenty full collections of its own new state. Ten thousand makes them rare.
GEN0_THRESHOLD = 10_000


def configure() -> None:
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])


def settle(reclaim: bool = False) -> None:
    """Collect, then freeze what is left. Cheap when little was allocated since the last call:
    only objects not yet frozen are visited, unless `reclaim`."""
    with _lock:
        start = time.perf_counter()
        if reclaim:
            gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        log.debug(
            "Collected %d objects and froze %d in %.1f ms%s", collected, gc.get_freeze_count(),
            (time.perf_counter() - start) * 1000, " (everything thawed first)" if reclaim else "",
        )


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No automatic collection during a burst that builds long-lived state (a new controller
    loading and electing 50,000 partitions allocates millions of objects: its young collections
    took half a second of the failover, visiting objects about to be frozen anyway); the burst
    ends with a `settle`. A few seconds of cycles left uncollected cost a little memory."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        settle()
