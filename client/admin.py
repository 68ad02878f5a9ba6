"""AdminClient: Kafka's admin calls over gRPC, tried against each bootstrap server in turn."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from broker.grpc_options import OPTIONS, target
from client.security import PLAINTEXT, ClientSecurity
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

T = TypeVar("T")

# A bootstrap server that does not answer within this is skipped for the next one.
PER_SERVER_TIMEOUT_S = 3.0


class AdminError(Exception):
    """A request that failed; the message is one line for the command line."""


def parse_bootstrap_servers(value: str) -> list[str]:
    servers = [s.strip() for s in value.split(",") if s.strip()]
    if not servers:
        raise AdminError("--bootstrap-server is empty: give HOST:PORT[,HOST:PORT]")
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise AdminError(f"bootstrap server '{server}' is not HOST:PORT")
    return servers


@dataclass(frozen=True)
class BrokerDescription:
    id: int
    host: str
    port: int
    rack: str | None
    broker_epoch: int
    endpoints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ClusterDescription:
    cluster_id: str
    controller_id: int
    controller_epoch: int
    brokers: list[BrokerDescription]
    responding_broker_id: int

    def to_json(self) -> dict[str, object]:
        return {
            "cluster_id": self.cluster_id,
            "controller": {"id": self.controller_id, "epoch": self.controller_epoch},
            "brokers": [
                {
                    "id": b.id,
                    "host": b.host,
                    "port": b.port,
                    "rack": b.rack,
                    "broker_epoch": b.broker_epoch,
                    "endpoints": b.endpoints,
                }
                for b in self.brokers
            ],
            "responding_broker_id": self.responding_broker_id,
        }


class AdminClient:
    def __init__(self, bootstrap_servers: str, timeout_s: float = 10.0, security: ClientSecurity = PLAINTEXT) -> None:
        self.servers = parse_bootstrap_servers(bootstrap_servers)
        self.timeout_s = timeout_s
        self.security = security

    def _call_any(self, call: Callable[[kafka_pb2_grpc.AdminStub, float], T], accept: Callable[[T], bool]) -> T:
        """Try each bootstrap server until one gives an acceptable answer, within timeout_s."""
        deadline = time.monotonic() + self.timeout_s
        failures = []
        for server in self.servers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            per_server = min(remaining, PER_SERVER_TIMEOUT_S)
            with self.security.channel(server, OPTIONS) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=per_server)
                    response = call(kafka_pb2_grpc.AdminStub(channel), max(0.1, deadline - time.monotonic()))
                except grpc.FutureTimeoutError:
                    failures.append(f"{server}: no answer within {per_server:.1f} s")
                    continue
                except grpc.RpcError as e:
                    failures.append(f"{server}: {e.code().name.lower()} ({e.details()})")
                    continue
            if accept(response):
                return response
            code = getattr(response, "error_code", 0)
            failures.append(f"{server}: {Errors.for_code(code).name} {getattr(response, 'error_message', '')}".strip())
        raise AdminError(
            f"no bootstrap server answered within {self.timeout_s:.1f} s: " + "; ".join(failures or ["timed out"])
        )

    def metadata(self, topics: list[str] | None = None) -> kafka_pb2.MetadataResponse:
        return self._call_any(
            lambda stub, timeout: stub.Metadata(kafka_pb2.MetadataRequest(topics=topics or []), timeout=timeout),
            lambda r: True,
        )

    def replica_states(
        self, metadata: kafka_pb2.MetadataResponse
    ) -> dict[tuple[str, int], kafka_pb2.PartitionReplicas]:
        """Each partition's high watermark and replicas' log end offsets, asked of its leader
        (one DescribeReplicas per leader). A leader that does not answer leaves its partitions out."""
        addresses = {b.broker_id: target(b.host, b.port) for b in metadata.brokers}
        by_leader: dict[int, list[kafka_pb2.TopicPartition]] = {}
        for topic in metadata.topics:
            for p in topic.partitions:
                if p.leader in addresses:
                    by_leader.setdefault(p.leader, []).append(kafka_pb2.TopicPartition(topic=topic.name,
                                                                                      partition=p.partition))
        states: dict[tuple[str, int], kafka_pb2.PartitionReplicas] = {}
        for leader, partitions in by_leader.items():
            with self.security.channel(addresses[leader], OPTIONS) as channel:
                try:
                    response = kafka_pb2_grpc.DataStub(channel).DescribeReplicas(
                        kafka_pb2.DescribeReplicasRequest(partitions=partitions), timeout=self.timeout_s
                    )
                except grpc.RpcError:
                    continue
            for state in response.partitions:
                if state.error_code == Errors.NONE.code:
                    states[(state.topic, state.partition)] = state
        return states

    def _call_controller(
        self, call: Callable[[kafka_pb2_grpc.AdminStub, float], T], not_controller: Callable[[T], bool]
    ) -> T:
        """Send to the controller, found through Metadata; again if it moved meanwhile."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            metadata = self.metadata()
            controller = next((b for b in metadata.brokers if b.broker_id == metadata.controller_id), None)
            if controller is not None:
                with self.security.channel(target(controller.host, controller.port), OPTIONS) as channel:
                    try:
                        response = call(kafka_pb2_grpc.AdminStub(channel), max(1.0, deadline - time.monotonic()))
                    except grpc.RpcError as e:
                        response = None
                        failure = f"controller {controller.broker_id}: {e.code().name.lower()}"
                if response is not None:
                    if not not_controller(response):
                        return response
                    failure = f"broker {controller.broker_id} is no longer the controller"
            else:
                failure = "no controller is elected"
            if time.monotonic() >= deadline:
                raise AdminError(f"{failure} (gave up after {self.timeout_s:.1f} s)")
            time.sleep(0.2)

    def create_topic(self, name: str, partitions: int, replication_factor: int, configs: dict[str, str],
                     timeout_ms: int = 30000) -> kafka_pb2.CreatableTopicResult:
        request = kafka_pb2.CreateTopicsRequest(
            topics=[kafka_pb2.CreatableTopic(name=name, num_partitions=partitions,
                                             replication_factor=replication_factor, configs=configs)],
            timeout_ms=timeout_ms,
        )
        response = self._call_controller(
            lambda stub, timeout: stub.CreateTopics(request, timeout=timeout),
            lambda r: r.topics[0].error_code == Errors.NOT_CONTROLLER.code,
        )
        return response.topics[0]

    def delete_topic(self, name: str, timeout_ms: int = 30000) -> kafka_pb2.DeletableTopicResult:
        request = kafka_pb2.DeleteTopicsRequest(topic_names=[name], timeout_ms=timeout_ms)
        response = self._call_controller(
            lambda stub, timeout: stub.DeleteTopics(request, timeout=timeout),
            lambda r: r.responses[0].error_code == Errors.NOT_CONTROLLER.code,
        )
        return response.responses[0]

    def elect_preferred_leaders(self, partitions: list[tuple[str, int]] | None,
                                timeout_ms: int = 30000) -> kafka_pb2.ElectLeadersResponse:
        request = kafka_pb2.ElectLeadersRequest(
            election_type=kafka_pb2.PREFERRED,
            partitions=[kafka_pb2.TopicPartition(topic=t, partition=p) for t, p in partitions or []],
            timeout_ms=timeout_ms,
        )
        return self._call_controller(
            lambda stub, timeout: stub.ElectLeaders(request, timeout=timeout),
            lambda r: r.error_code == Errors.NOT_CONTROLLER.code,
        )

    def describe_cluster(self) -> ClusterDescription:
        response = self._call_any(
            lambda stub, timeout: stub.DescribeCluster(kafka_pb2.DescribeClusterRequest(), timeout=timeout),
            lambda r: r.error_code == Errors.NONE.code,
        )
        return ClusterDescription(
            cluster_id=response.cluster_id,
            controller_id=response.controller_id,
            controller_epoch=response.controller_epoch,
            brokers=[
                BrokerDescription(
                    id=b.broker_id,
                    host=b.host,
                    port=b.port,
                    rack=b.rack if b.HasField("rack") else None,
                    broker_epoch=b.broker_epoch,
                    endpoints=list(b.endpoints),
                )
                for b in response.brokers
            ],
            responding_broker_id=response.responding_broker_id,
        )
