"""A follower's fetcher against a scripted leader (an in-process Data service): the fetch session it
keeps when a request fails or the leader refuses the session."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.metadata_cache import BrokerEndpoint, PartitionInfo
from broker.replica_manager import ReplicaManager
from client.tooling.processes import wait_until
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

SESSION_ID = 7
UNAVAILABLE = "unavailable"


class ScriptedLeader(kafka_pb2_grpc.DataServicer):
    """Answers each Fetch with the next scripted outcome (a session error, or UNAVAILABLE), then with
    session SESSION_ID and no partitions; records every request."""

    def __init__(self, script: list[Errors | str]) -> None:
        self.script = script
        self.requests: list[kafka_pb2.FetchRequest] = []
        self._lock = threading.Lock()

    def Fetch(self, request: kafka_pb2.FetchRequest, context: grpc.ServicerContext) -> kafka_pb2.FetchResponse:
        with self._lock:
            seen = kafka_pb2.FetchRequest()
            seen.CopyFrom(request)
            self.requests.append(seen)
            outcome = self.script.pop(0) if self.script else Errors.NONE
        if outcome == UNAVAILABLE:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the leader is down")
        if isinstance(outcome, Errors) and outcome is not Errors.NONE:
            return kafka_pb2.FetchResponse(error_code=outcome.code)
        time.sleep(min(request.max_wait_ms, 50) / 1000)  # a short long poll
        return kafka_pb2.FetchResponse(session_id=SESSION_ID)


@pytest.fixture
def leader() -> Iterator[tuple[ScriptedLeader, grpc.Server, int]]:
    servicer = ScriptedLeader([])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    kafka_pb2_grpc.add_DataServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, server, port
    server.stop(0).wait()


def follow(tmp_path: Path, port: int) -> ReplicaManager:
    """Broker 1 following two partitions of broker 2, the scripted leader."""
    manager = ReplicaManager(1, lambda: 100, LogManager([str(tmp_path)], LogConfig()),
                             fetcher_config={"backoff_ms": 20, "max_wait_ms": 50})
    manager.metadata_cache.update(9, 1, [BrokerEndpoint(2, "127.0.0.1", port)], [], [])
    states = [PartitionInfo("t", p, 2, 0, isr=(1, 2), replicas=(1, 2), zk_version=0, controller_epoch=1)
              for p in (0, 1)]
    manager.become_leader_or_follower(9, 1, -1, states)
    return manager


def named(request: kafka_pb2.FetchRequest) -> list[tuple[str, int]]:
    return sorted((t.topic, p.partition) for t in request.topics for p in t.partitions)


def test_a_leader_that_did_not_answer_is_asked_for_an_empty_session_before_every_partition(
    tmp_path: Path, leader: tuple[ScriptedLeader, grpc.Server, int]
) -> None:
    servicer, _, port = leader
    servicer.script = [UNAVAILABLE, UNAVAILABLE]
    manager = follow(tmp_path, port)
    wait_until(lambda: len(servicer.requests) >= 5, 10, "five fetches")
    manager.stop()
    full, probe, second_probe, incremental, idle = servicer.requests[:5]
    assert (full.session_id, full.session_epoch, named(full)) == (0, 0, [("t", 0), ("t", 1)])
    for empty in (probe, second_probe):  # down still: nothing more than an empty request
        assert empty.HasField("session_epoch") and empty.session_epoch == 0
        assert not empty.topics and empty.max_wait_ms == 0
    assert (incremental.session_id, incremental.session_epoch, named(incremental)) == (SESSION_ID, 1, named(full))
    assert (idle.session_id, idle.session_epoch, named(idle)) == (SESSION_ID, 2, [])


def test_a_refused_session_makes_the_next_fetch_a_full_one(
    tmp_path: Path, leader: tuple[ScriptedLeader, grpc.Server, int]
) -> None:
    servicer, _, port = leader
    servicer.script = [Errors.NONE, Errors.INVALID_FETCH_SESSION_EPOCH, Errors.NONE, Errors.FETCH_SESSION_ID_NOT_FOUND]
    manager = follow(tmp_path, port)
    wait_until(lambda: len(servicer.requests) >= 6, 10, "six fetches")
    manager.stop()
    epochs = [(r.session_id, r.session_epoch, len(named(r))) for r in servicer.requests[:6]]
    assert epochs == [
        (0, 0, 2),  # opens the session
        (SESSION_ID, 1, 0),  # refused: wrong epoch
        (SESSION_ID, 0, 2),  # closes it and opens a new one, naming every partition again
        (SESSION_ID, 1, 0),  # refused: the session is gone
        (0, 0, 2),  # opens a new one
        (SESSION_ID, 1, 0),
    ]
