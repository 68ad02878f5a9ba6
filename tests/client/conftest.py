"""The client tests' fixtures: a fake cluster (in-process gRPC brokers, tests/client/fake_cluster.py)
and factories of consumers and producers against it, each closed at the test's end. A module
shapes the cluster by overriding `broker_ids` or `topics`, and its clients by overriding
`consumer_config` or `producer_config`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from fake_cluster import FakeCluster

from client.consumer import KafkaConsumer
from client.producer import KafkaProducer

C = TypeVar("C")


@pytest.fixture
def broker_ids() -> tuple[int, ...]:
    return (1, 2, 3)


@pytest.fixture
def topics() -> dict[str, list[int]]:
    """Each topic with the leaders of its partitions, in partition order."""
    return {"t": [1, 2, 1]}


@pytest.fixture
def cluster(broker_ids: tuple[int, ...], topics: dict[str, list[int]]) -> Iterator[FakeCluster]:
    fake = FakeCluster(broker_ids)
    for topic, leaders in topics.items():
        fake.create_topic(topic, leaders)
    yield fake
    fake.close()


@pytest.fixture
def consumer_config() -> Callable[[int], dict[str, object]]:
    """The configs of the n-th consumer a test makes (from 0), before the test's own."""
    return lambda made_before: {}


@pytest.fixture
def producer_config() -> dict[str, object]:
    return {}


def _made(make_client: Callable[..., C], close: Callable[[C], object]) -> Iterator[Callable[..., C]]:
    clients: list[C] = []

    def make(**config: object) -> C:
        client = make_client(len(clients), **config)
        clients.append(client)
        return client

    yield make
    for client in clients:
        close(client)


@pytest.fixture
def make_consumer(
    cluster: FakeCluster, consumer_config: Callable[[int], dict[str, object]]
) -> Iterator[Callable[..., KafkaConsumer]]:
    """Consumers that poll briskly, with short timeouts."""

    def make(made_before: int, **config: object) -> KafkaConsumer:
        config = {"fetch_max_wait_ms": 50, "retry_backoff_ms": 10, "request_timeout_ms": 5000,
                  "default_api_timeout_ms": 5000, **consumer_config(made_before), **config}
        return KafkaConsumer(cluster.bootstrap, **config)  # type: ignore[arg-type]

    yield from _made(make, lambda consumer: consumer.close(timeout_ms=1000))


@pytest.fixture
def make_producer(
    cluster: FakeCluster, producer_config: dict[str, object]
) -> Iterator[Callable[..., KafkaProducer]]:
    def make(_made_before: int, **config: object) -> KafkaProducer:
        config = {"linger_ms": 1, "retry_backoff_ms": 10, "request_timeout_ms": 5000, **producer_config, **config}
        return KafkaProducer(cluster.bootstrap, **config)  # type: ignore[arg-type]

    yield from _made(make, lambda producer: producer.close(timeout=5))
