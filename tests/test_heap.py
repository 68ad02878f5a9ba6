"""The broker's collector policy: settle freezes what survives, reclaim thaws and frees cycles."""

from __future__ import annotations

import gc
import weakref

from broker import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_settle_collects_garbage_cycles_before_freezing_the_survivors() -> None:
    kept, dropped = Node(), Node()
    dropped_ref = weakref.ref(dropped)
    del dropped
    try:
        heap.settle()
        assert dropped_ref() is None
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(kept)
    finally:
        gc.unfreeze()


def test_a_frozen_cycle_that_becomes_garbage_is_freed_by_a_reclaiming_settle() -> None:
    node = Node()
    ref = weakref.ref(node)
    try:
        heap.settle()
        del node
        gc.collect()
        assert ref() is not None  # frozen: ordinary collections skip it
        heap.settle(reclaim=True)
        assert ref() is None
    finally:
        gc.unfreeze()


def test_configure_raises_only_the_young_generation_threshold() -> None:
    before = gc.get_threshold()
    try:
        heap.configure()
        assert gc.get_threshold() == (heap.GEN0_THRESHOLD, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_no_collection_while_paused_and_a_settle_after() -> None:
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with heap.collection_paused():
            for _ in range(3 * heap.GEN0_THRESHOLD):
                Node()  # each a cycle, enough to set off young collections
            assert collections == []
            assert not gc.isenabled()
        assert gc.isenabled()
        assert collections[-1] == 2  # the settle's full collection
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
