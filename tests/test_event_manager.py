"""The controller's event queue (Kafka's ControllerEventManager): one event at a time, and the
events a lost session preempts are answered, never silently dropped."""

from __future__ import annotations

import threading

from broker.controller.controller import ControlledShutdown, ReplicaLeaderElection
from broker.controller.event_manager import BrokerChange, ControllerEvent, ControllerEventManager, Expire
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors


def blocked_manager() -> tuple[ControllerEventManager, list[str], threading.Event]:
    """A manager whose thread is busy with a first event until the returned event is set."""
    processed: list[str] = []
    busy, release = threading.Event(), threading.Event()

    def process(event: ControllerEvent) -> None:
        processed.append(event.name)
        if len(processed) == 1:
            busy.set()
            release.wait(10)

    manager = ControllerEventManager(1, process)
    manager.start()
    manager.put(BrokerChange())
    assert busy.wait(10)
    return manager, processed, release


def test_events_preempted_by_a_lost_session_answer_their_callers_at_once() -> None:
    manager, processed, release = blocked_manager()
    answers: list[tuple[str, Errors]] = []
    manager.put(ControlledShutdown(broker_id=2, broker_epoch=7, callback=lambda e, _r: answers.append(("cs", e))))
    manager.put(ReplicaLeaderElection(callback=lambda e, _r: answers.append(("elect", e))))
    manager.put(BrokerChange())
    manager.clear_and_put(Expire())
    # Answered while the thread is still busy: the callers do not wait out their timeouts.
    assert answers == [("cs", Errors.NOT_CONTROLLER), ("elect", Errors.NOT_CONTROLLER)]
    release.set()
    assert manager.close(10)
    assert processed == ["BrokerChange", "Expire"]


def test_a_queued_shutdown_survives_clear_and_put() -> None:
    manager, processed, release = blocked_manager()
    closed: list[bool] = []
    closer = threading.Thread(target=lambda: closed.append(manager.close(10)))
    closer.start()
    wait_until(lambda: manager.queue_size == 1, 10, "the shutdown to be queued")
    manager.clear_and_put(Expire())
    release.set()
    closer.join(15)
    assert closed == [True]
    assert processed == ["BrokerChange", "Expire"]
