"""AdminClient: Kafka's admin calls over gRPC, tried against each bootstrap server in turn."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from broker.authorizer import acl
from broker.grpc_options import OPTIONS, target
from client.security import PLAINTEXT, ClientSecurity
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

T = TypeVar("T")
_E = TypeVar("_E")

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

    # -- ACLs: any broker answers ------------------------------------------------------------

    def describe_acls(self, wanted: acl.AclBindingFilter) -> dict[acl.ResourcePattern, frozenset[acl.AclEntry]]:
        response = self._call_any(
            lambda stub, timeout: stub.DescribeAcls(kafka_pb2.DescribeAclsRequest(filter=_filter_binding(wanted)),
                                                    timeout=timeout),
            lambda r: True,
        )
        _raise_for(response.error_code, response.error_message)
        return _grouped(response.acls)

    def create_acls(self, pattern: acl.ResourcePattern, entries: frozenset[acl.AclEntry]) -> None:
        ordered = sorted(entries, key=str)
        response = self._call_any(
            lambda stub, timeout: stub.CreateAcls(kafka_pb2.CreateAclsRequest(
                creations=[_binding(pattern, e) for e in ordered]), timeout=timeout),
            lambda r: True,
        )
        for result in response.results:
            _raise_for(result.error_code, result.error_message)

    def delete_acls(self, wanted: list[acl.AclBindingFilter]) -> dict[acl.ResourcePattern, frozenset[acl.AclEntry]]:
        """The ACLs deleted, of every filter together."""
        response = self._call_any(
            lambda stub, timeout: stub.DeleteAcls(kafka_pb2.DeleteAclsRequest(
                filters=[_filter_binding(f) for f in wanted]), timeout=timeout),
            lambda r: True,
        )
        deleted: list[kafka_pb2.AclBinding] = []
        for result in response.results:
            _raise_for(result.error_code, result.error_message)
            deleted.extend(result.deleted)
        return _grouped(deleted)


def _raise_for(error_code: int, message: str) -> None:
    if error_code != Errors.NONE.code:
        error = Errors.for_code(error_code)
        raise AdminError(f"{error.name}: {message or error.message}")


def _binding(pattern: acl.ResourcePattern, entry: acl.AclEntry) -> kafka_pb2.AclBinding:
    return kafka_pb2.AclBinding(
        resource_type=acl.RESOURCE_TYPE_CODES[pattern.resource_type], resource_name=pattern.name,
        pattern_type=acl.PATTERN_TYPE_CODES[pattern.pattern_type], principal=entry.principal, host=entry.host,
        operation=acl.OPERATION_CODES[entry.operation], permission_type=acl.PERMISSION_CODES[entry.permission],
    )


def _filter_binding(wanted: acl.AclBindingFilter) -> kafka_pb2.AclBinding:
    def code(codes: dict[_E, int], member: _E | None) -> int:
        return acl.ANY_CODE if member is None else codes[member]

    pattern_type = acl.MATCH_CODE if wanted.match else code(acl.PATTERN_TYPE_CODES, wanted.pattern_type)
    return kafka_pb2.AclBinding(
        resource_type=code(acl.RESOURCE_TYPE_CODES, wanted.resource_type), resource_name=wanted.name,
        pattern_type=pattern_type, principal=wanted.principal, host=wanted.host,
        operation=code(acl.OPERATION_CODES, wanted.operation), permission_type=code(acl.PERMISSION_CODES,
                                                                                    wanted.permission),
    )


def _grouped(bindings: Iterable[kafka_pb2.AclBinding]) -> dict[acl.ResourcePattern, frozenset[acl.AclEntry]]:
    found: dict[acl.ResourcePattern, set[acl.AclEntry]] = {}
    for b in bindings:
        pattern = acl.ResourcePattern(
            acl.member_of(acl.RESOURCE_TYPE_CODES, b.resource_type, "resource type"),
            b.resource_name,
            acl.member_of(acl.PATTERN_TYPE_CODES, b.pattern_type, "pattern type"),
        )
        entry = acl.AclEntry(
            b.principal,
            acl.member_of(acl.PERMISSION_CODES, b.permission_type, "permission type"),
            acl.member_of(acl.OPERATION_CODES, b.operation, "operation"),
            b.host,
        )
        found.setdefault(pattern, set()).add(entry)
    return {p: frozenset(e) for p, e in found.items()}
