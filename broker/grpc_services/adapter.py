"""What the gRPC services share as adapters over the request layer (broker/api): the caller's
RequestContext from gRPC's peer and TLS session, answering through the layer, and waiting for a
parked answer."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TypeVar

import grpc

from broker.api.context import RequestContext
from broker.api.kafka_apis import KafkaApis
from minikafka_protocol.security import ANONYMOUS, SecurityProtocol, principal_from_subject

R = TypeVar("R")
T = TypeVar("T")


def client_host(context: grpc.ServicerContext) -> str:
    """Kafka's clientHost ("/127.0.0.1") from gRPC's peer ("ipv4:127.0.0.1:52144")."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return "/" + rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return "/" + rest.rsplit(":", 1)[0].strip("[]").replace("%5B", "").replace("%5D", "")
    return "/" + rest if rest else ""


@dataclass(frozen=True)
class Listener:
    """The listener a service answers on: its name and security protocol."""

    name: str = "PLAINTEXT"
    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT


def principal(context: grpc.ServicerContext) -> str:
    """Kafka's default principal: `User:` and the subject of the client's verified certificate
    (gRPC gives it in RFC 2253 form), or User:ANONYMOUS without one."""
    subject = context.auth_context().get("x509_subject")
    return principal_from_subject(subject[0].decode()) if subject else ANONYMOUS


def request_context(context: grpc.ServicerContext, listener: Listener) -> RequestContext:
    return RequestContext(client_host=client_host(context), principal=principal(context),
                          listener_name=listener.name, security_protocol=listener.protocol)


class Answering:
    """The part every service shares: the request layer it calls and the listener it is bound to."""

    def __init__(self, apis: KafkaApis, listener: Listener = Listener()) -> None:
        self._apis = apis
        self._listener = listener

    def _handle(self, request: object, context: grpc.ServicerContext) -> Future[object]:
        return self._apis.handle(request_context(context, self._listener), request)

    def _answer(self, request: object, context: grpc.ServicerContext) -> object:
        return self._handle(request, context).result()


def wait(future: Future[R], context: grpc.ServicerContext, gone: R) -> R:
    """A parked request's answer; the worker thread is freed, with `gone`, if the client goes away first."""
    while True:
        try:
            return future.result(timeout=1.0)
        except FutureTimeout:
            if not context.is_active():
                return gone


def topic_entries(add: Callable[[str], T]) -> Callable[[str], T]:
    """Each topic's entry of a response, added at the topic's first partition: Kafka's answers nest
    partitions under their topics, where the request layer keys them by TopicPartition."""
    entries: dict[str, T] = {}

    def entry(topic: str) -> T:
        found = entries.get(topic)
        if found is None:
            found = entries[topic] = add(topic)
        return found

    return entry
