"""The broker's metadata cache: UpdateMetadata applied, and requests parked until it shows what they wait for."""

from __future__ import annotations

from broker.api.timer import RequestTimer
from broker.metadata_cache import BrokerEndpoint, MetadataCache, MetadataSnapshot, PartitionInfo

BROKERS = [BrokerEndpoint(1, "127.0.0.1", 9092)]


def led(snapshot: MetadataSnapshot) -> bool:
    partitions = snapshot.partitions_of("t")
    return bool(partitions) and all(p.leader >= 0 for p in partitions)


def state(leader: int) -> PartitionInfo:
    return PartitionInfo("t", 0, leader, 0, isr=(1,), replicas=(1,), zk_version=0, controller_epoch=1)


def test_a_request_waits_for_the_update_that_meets_its_condition() -> None:
    cache = MetadataCache()
    waiting = cache.when(led)
    cache.update(1, 1, BROKERS, [state(-1)], [])
    assert not waiting.done()  # no leader yet
    cache.update(1, 1, BROKERS, [state(1)], [])
    assert waiting.result(timeout=0) is True
    assert cache.when(led).result(timeout=0) is True  # met already: answered at once


def test_a_request_whose_time_ran_out_is_answered_false_and_forgotten() -> None:
    cache = MetadataCache()
    waiting = RequestTimer().expire(cache.when(led), 0.05, False)
    assert waiting.result(timeout=5) is False
    cache.update(1, 1, BROKERS, [state(1)], [])
    assert waiting.result() is False and cache._waiters == []
