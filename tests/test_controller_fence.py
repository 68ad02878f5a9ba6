"""A broker believes a controller only once ZooKeeper confirms it."""

from __future__ import annotations

import pytest

from broker.controller_fence import ControllerFence, ControllerIdentity, Verdict, check, confirms
from minikafka_protocol.errors import Errors

NONE_YET = ControllerIdentity(None, None)


@pytest.mark.parametrize(("confirmed", "sender", "epoch", "verdict"), [
    (NONE_YET, 1, 0, Verdict.CONFIRM),  # even epoch 0 at a fresh broker
    (ControllerIdentity(3, 1), 1, 3, Verdict.ACCEPT),
    (ControllerIdentity(3, 1), 1, 2, Verdict.STALE),
    (ControllerIdentity(3, 1), 2, 3, Verdict.CONFIRM),  # the right epoch from another broker
    (ControllerIdentity(3, 1), 2, 4, Verdict.CONFIRM),
    (ControllerIdentity(3, 1), 1, 999, Verdict.CONFIRM),
])
def test_only_the_confirmed_controller_skips_zookeeper(
    confirmed: ControllerIdentity, sender: int, epoch: int, verdict: Verdict
) -> None:
    assert check(confirmed, sender, epoch) is verdict


def test_zookeeper_must_hold_both_the_epoch_and_the_sender() -> None:
    assert confirms(ControllerIdentity(4, 2), 2, 4)
    assert not confirms(ControllerIdentity(4, 2), 2, 999)
    assert not confirms(ControllerIdentity(4, 2), 1, 4)
    assert not confirms(ControllerIdentity(4, None), 2, 4)  # its /controller is gone with its session


def test_the_fence_reads_zookeeper_once_per_new_controller() -> None:
    reads: list[ControllerIdentity] = []
    zookeeper = [ControllerIdentity(1, 2)]

    def read() -> ControllerIdentity:
        reads.append(zookeeper[0])
        return zookeeper[0]

    fence = ControllerFence("[Broker id=1]", read)
    assert fence.verify("LeaderAndIsr", 2, 1, "/10.0.0.2") is Errors.NONE
    assert fence.verify("UpdateMetadata", 2, 1, "/10.0.0.2") is Errors.NONE
    assert fence.verify("StopReplica", 2, 999, "/10.0.0.66") is Errors.STALE_CONTROLLER_EPOCH
    assert fence.verify("StopReplica", 2, 0, "/10.0.0.66") is Errors.STALE_CONTROLLER_EPOCH  # no read
    zookeeper[0] = ControllerIdentity(2, 3)
    assert fence.verify("LeaderAndIsr", 3, 2, "/10.0.0.3") is Errors.NONE
    assert fence.verify("LeaderAndIsr", 2, 1, "/10.0.0.2") is Errors.STALE_CONTROLLER_EPOCH  # the zombie
    assert len(reads) == 3 and fence.confirmed == ControllerIdentity(2, 3)


def test_a_zookeeper_out_of_reach_refuses_the_request_and_confirms_nothing(caplog: pytest.LogCaptureFixture) -> None:
    def read() -> ControllerIdentity:
        raise ConnectionError("connection loss")

    fence = ControllerFence("[Broker id=1]", read)
    assert fence.verify("LeaderAndIsr", 2, 1, "/10.0.0.2") is Errors.STALE_CONTROLLER_EPOCH
    assert fence.confirmed == NONE_YET
    assert "Refusing LeaderAndIsr request from /10.0.0.2 claiming controller 2 epoch 1" in caplog.text
