"""The purgatory every parked fetch and acks=all write waits in."""

from __future__ import annotations

import time

import pytest

from broker.data_changes import DataChanges
from broker.delayed_operation import DelayedOperation, DelayedOperationPurgatory


class WaitFor(DelayedOperation[str]):
    """Answers "ready" once `ready` holds, else "expired" at its deadline."""

    def __init__(self, ready: list[bool], timeout_ms: int) -> None:
        super().__init__(timeout_ms)
        self.ready = ready
        self.tries = 0

    def try_complete(self, expired: bool) -> bool:
        self.tries += 1
        if self.ready:
            self.future.set_result("ready")
        elif expired:
            self.future.set_result("expired")
        else:
            return False
        return True


class Broken(DelayedOperation[str]):
    def try_complete(self, expired: bool) -> bool:
        raise ValueError("cannot read")


def test_an_operation_that_can_complete_is_answered_by_its_caller() -> None:
    purgatory = DelayedOperationPurgatory("test", DataChanges())
    operation = WaitFor([True], 10000)
    assert purgatory.try_complete_else_watch(operation).result(0) == "ready"
    assert purgatory.pending_count() == 0 and operation.tries == 1


def test_a_parked_operation_completes_on_the_change_it_waits_for() -> None:
    changes = DataChanges()
    purgatory = DelayedOperationPurgatory("test", changes)
    ready: list[bool] = []
    parked = purgatory.try_complete_else_watch(WaitFor(ready, 10000))
    assert not parked.done() and purgatory.pending_count() == 1
    ready.append(True)
    changes.notify()
    assert parked.result(5) == "ready"
    changes.stop()


def test_a_parked_operation_expires_at_its_deadline_and_at_stop() -> None:
    changes = DataChanges()
    purgatory = DelayedOperationPurgatory("test", changes)
    started = time.monotonic()
    assert purgatory.try_complete_else_watch(WaitFor([], 50)).result(5) == "expired"
    assert time.monotonic() - started >= 0.05
    waiting = purgatory.try_complete_else_watch(WaitFor([], 60000))
    changes.stop()
    assert waiting.result(5) == "expired"
    # After the stop nobody would complete it: it is answered at once, expired.
    assert purgatory.try_complete_else_watch(WaitFor([], 60000)).result(0) == "expired"


def test_a_zero_timeout_is_answered_at_once() -> None:
    purgatory = DelayedOperationPurgatory("test", DataChanges())
    assert purgatory.try_complete_else_watch(WaitFor([], 0)).result(0) == "expired"


def test_a_failing_operation_fails_its_own_future_only() -> None:
    purgatory = DelayedOperationPurgatory("test", DataChanges())
    with pytest.raises(ValueError, match="cannot read"):
        purgatory.try_complete_else_watch(Broken(1000)).result(0)
