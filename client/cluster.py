"""What the producer and the consumer share: Kafka's errors as exceptions, and ClusterMetadata
(brokers, partition leaders, one gRPC channel per broker, metadata refreshes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from typing import NamedTuple, TypeVar

import grpc

from broker.grpc_options import OPTIONS, target
from client.admin import AdminError, parse_bootstrap_servers
from client.security import PLAINTEXT, ClientSecurity
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors after which the partition's leader may be elsewhere: the metadata is refreshed.
INVALID_METADATA_ERRORS = frozenset({
    Errors.NOT_LEADER_OR_FOLLOWER, Errors.LEADER_NOT_AVAILABLE, Errors.UNKNOWN_TOPIC_OR_PARTITION,
    Errors.FENCED_LEADER_EPOCH, Errors.UNKNOWN_LEADER_EPOCH, Errors.BROKER_NOT_AVAILABLE,
})
# Kafka's RetriableException subclasses among our codes.
RETRIABLE_ERRORS = INVALID_METADATA_ERRORS | {
    Errors.NOT_ENOUGH_REPLICAS, Errors.NOT_ENOUGH_REPLICAS_AFTER_APPEND, Errors.REQUEST_TIMED_OUT,
    Errors.COORDINATOR_NOT_AVAILABLE, Errors.COORDINATOR_LOAD_IN_PROGRESS, Errors.NOT_COORDINATOR,
}
# A Metadata or InitProducerId request to one broker that does not answer within this moves on
# to the next (as the admin client does).
PER_BROKER_TIMEOUT_S = 3.0
# gRPC waits up to 2 minutes before it tries a broker that failed again; Kafka's clients retry a
# connection after reconnect.backoff.ms (50) growing to reconnect.backoff.max.ms (1000).
CHANNEL_OPTIONS = [
    *OPTIONS,
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class KafkaError(Exception):
    """A Kafka error code as an exception (Kafka's ApiException): `error` is the Errors member."""

    def __init__(self, error: Errors, message: str = "") -> None:
        self.error = error
        self.message = message or error.message
        super().__init__(f"{error.name}: {self.message}")

    @property
    def retriable(self) -> bool:
        return self.error in RETRIABLE_ERRORS


def error_from_rpc(e: grpc.RpcError | grpc.FutureCancelledError, who: str) -> KafkaError:
    """A transport failure as the Kafka error a client acts on: a broker that is down or does not
    answer in time is retriable (Kafka's NetworkException, TimeoutException); any other gRPC
    status (say UNIMPLEMENTED) is not."""
    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else str(e)
    name = code.name.lower() if code is not None else "error"
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return KafkaError(Errors.REQUEST_TIMED_OUT, f"{who}: no answer in time ({details})")
    if code is grpc.StatusCode.UNAVAILABLE:
        return KafkaError(Errors.BROKER_NOT_AVAILABLE, f"{who}: {name} ({details})")
    return KafkaError(Errors.UNKNOWN_SERVER_ERROR, f"{who}: {name} ({details})")


class PartitionInfo(NamedTuple):
    partition: int
    leader: int  # -1: none
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class ClusterMetadata:
    """Brokers and each topic's partitions, leaders and leader epochs, from Admin.Metadata (Kafka's
    Metadata); one gRPC channel per broker address, shared by every request to it.

    Thread-safe: refreshes are serialised, and readers get whole dicts that a refresh replaces
    rather than changes.
    """

    def __init__(self, bootstrap_servers: str, request_timeout_ms: int, security: ClientSecurity = PLAINTEXT) -> None:
        try:
            self.bootstrap_servers = parse_bootstrap_servers(bootstrap_servers)
        except AdminError as e:
            raise ValueError(str(e)) from None
        self.request_timeout_s = request_timeout_ms / 1000
        self.security = security
        self.brokers: dict[int, str] = {}
        self.topics: dict[str, dict[int, PartitionInfo]] = {}
        self.unknown_topics: frozenset[str] = frozenset()
        self.updates = 0  # counts refreshes and leader hints, so that users can tell what changed
        self._refresh_lock = threading.Lock()
        self._channels_lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._data_stubs: dict[str, kafka_pb2_grpc.DataStub] = {}
        self._next_server = 0
        self._closed = False

    def channel(self, address: str) -> grpc.Channel:
        channel = self._channels.get(address)
        if channel is None:
            with self._channels_lock:
                if self._closed:
                    raise KafkaError(Errors.BROKER_NOT_AVAILABLE, "the client is closed")
                channel = self._channels.get(address)
                if channel is None:
                    channel = self._channels[address] = self.security.channel(address, CHANNEL_OPTIONS)
        return channel

    def data_stub(self, broker_id: int) -> kafka_pb2_grpc.DataStub | None:
        address = self.brokers.get(broker_id)
        if address is None:
            return None
        stub = self._data_stubs.get(address)
        if stub is None:
            stub = self._data_stubs[address] = kafka_pb2_grpc.DataStub(self.channel(address))
        return stub

    def partitions(self, topic: str) -> dict[int, PartitionInfo] | None:
        return self.topics.get(topic)

    def leader(self, tp: tuple[str, int]) -> PartitionInfo | None:
        partitions = self.topics.get(tp[0])
        return None if partitions is None else partitions.get(tp[1])

    def _addresses(self) -> list[str]:
        """Known brokers first, starting at a different one each time, then the bootstrap servers."""
        known = list(dict.fromkeys(self.brokers.values()))
        if known:
            self._next_server = (self._next_server + 1) % len(known)
            known = known[self._next_server:] + known[:self._next_server]
        return list(dict.fromkeys(known + self.bootstrap_servers))

    def call_any(self, what: str, call: Callable[[grpc.Channel, float], T]) -> T:
        """`call` against one broker after another until one answers; KafkaError if none does."""
        failures = []
        for address in self._addresses():
            try:
                return call(self.channel(address), min(self.request_timeout_s, PER_BROKER_TIMEOUT_S))
            except grpc.RpcError as e:
                failures.append(str(error_from_rpc(e, address)))
        raise KafkaError(Errors.BROKER_NOT_AVAILABLE, f"no broker answered {what}: " + "; ".join(failures))

    def refresh(self, topics: Collection[str]) -> None:
        """Fetch the metadata of `topics` (every topic if empty) and keep what is newer: a partition
        whose leader epoch went back (an answer from a broker that lags) keeps the newer state."""
        request = kafka_pb2.MetadataRequest(topics=sorted(topics))
        with self._refresh_lock:
            response = self.call_any(
                "Metadata",
                lambda channel, timeout: kafka_pb2_grpc.AdminStub(channel).Metadata(request, timeout=timeout),
            )
            self.brokers = {b.broker_id: target(b.host, b.port) for b in response.brokers}
            known = dict(self.topics)
            unknown = set(self.unknown_topics)
            for topic in response.topics:
                if topic.error_code != Errors.NONE.code:
                    if topic.error_code == Errors.UNKNOWN_TOPIC_OR_PARTITION.code:
                        known.pop(topic.name, None)
                        unknown.add(topic.name)
                    continue
                old = known.get(topic.name, {})
                partitions = {}
                for p in topic.partitions:
                    info = PartitionInfo(p.partition, p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr))
                    previous = old.get(p.partition)
                    partitions[p.partition] = info if previous is None or info.leader_epoch >= previous.leader_epoch \
                        else previous
                known[topic.name] = partitions
                unknown.discard(topic.name)
            self.topics = known
            self.unknown_topics = frozenset(unknown)
            self.updates += 1

    def update_leader(self, tp: tuple[str, int], leader: int, leader_epoch: int) -> bool:
        """KIP-951: a broker's hint of the new leader, kept if it is newer than what we know and the
        broker is one we can reach."""
        with self._refresh_lock:
            partitions = self.topics.get(tp[0])
            current = None if partitions is None else partitions.get(tp[1])
            if current is None or leader < 0 or leader not in self.brokers or leader_epoch <= current.leader_epoch:
                return False
            partitions = dict(partitions)
            partitions[tp[1]] = current._replace(leader=leader, leader_epoch=leader_epoch)
            self.topics = {**self.topics, tp[0]: partitions}
            self.updates += 1
            return True

    def close(self) -> None:
        with self._channels_lock:
            self._closed = True
            channels, self._channels = self._channels, {}
            self._data_stubs = {}
        for channel in channels.values():
            channel.close()


# -- futures ---------------------------------------------------------------------------------
