"""Fixtures: a real ZooKeeper server, a chroot and a cluster harness per test, logs on failure."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import OFFSETS_PARTITIONS, ClusterHarness

from client.tooling.zookeeper import ZooKeeperServer


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """One ZooKeeper server for the whole run; tests keep apart by chroot."""
    server = ZooKeeperServer(tmp_path_factory.mktemp("zookeeper"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_zookeeper(tmp_path: Path) -> Iterator[ZooKeeperServer]:
    """A ZooKeeper server of the test's own, for tests that stop or restart it."""
    server = ZooKeeperServer(tmp_path / "zookeeper")
    server.start()
    yield server
    server.stop()


def _harness(request: pytest.FixtureRequest, server: ZooKeeperServer, tmp_path: Path) -> Iterator[ClusterHarness]:
    chroot = f"/test-{request.node.name[:60].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
    harness = ClusterHarness(server, chroot, tmp_path)
    request.node.minikafka_harness = harness
    yield harness
    harness.close()


@pytest.fixture
def cluster(request: pytest.FixtureRequest, zookeeper: ZooKeeperServer, tmp_path: Path) -> Iterator[ClusterHarness]:
    yield from _harness(request, zookeeper, tmp_path)


@pytest.fixture
def private_cluster(
    request: pytest.FixtureRequest, private_zookeeper: ZooKeeperServer, tmp_path: Path
) -> Iterator[ClusterHarness]:
    yield from _harness(request, private_zookeeper, tmp_path)


@pytest.fixture
def group_brokers(cluster: ClusterHarness) -> Iterator[ClusterHarness]:
    """Three brokers for the group tests: no initial rebalance delay, no automatic preferred elections."""
    cluster.start_brokers(1, 2, 3, **{
        "group.initial.rebalance.delay.ms": "0", "auto.leader.rebalance.enable": "false",
        "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
    })
    cluster.wait_for_controller()
    yield cluster


@pytest.fixture
def consumers() -> Iterator[list[Any]]:
    """Group consumer processes a test starts; stopped at its end."""
    started: list[Any] = []
    yield started
    for consumer in started:
        with contextlib.suppress(Exception):
            consumer.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that gets a real ZooKeeper server, through any fixture, carries the `live`
    marker, so `-m "not live"` runs the unit tests alone; modules that start servers themselves
    are marked in their pytestmark."""
    for item in items:
        if {"zookeeper", "private_zookeeper"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach every broker's log (process or container) to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    harness: ClusterHarness | None = getattr(item, "minikafka_harness", None)
    if report.failed and harness is not None and call.when in ("call", "setup"):
        for broker_id, broker in sorted(harness.brokers.items()):
            lines = broker.log_text().splitlines()
            report.sections.append((f"broker {broker_id} log (last 200 lines)", "\n".join(lines[-200:])))
    compose = getattr(item, "funcargs", {}).get("compose")  # the docker tests' cluster
    if report.failed and compose is not None and call.when == "call":
        for service, text in compose.log_tails():
            report.sections.append((f"{service} log (last lines)", text))
