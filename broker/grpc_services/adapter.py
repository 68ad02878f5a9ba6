"""What the gRPC services share as adapters over the request layer (broker/api): the caller's
RequestContext from gRPC's peer, and waiting for a parked answer."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

import grpc

from broker.api.context import RequestContext

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


def request_context(context: grpc.ServicerContext) -> RequestContext:
    return RequestContext(client_host=client_host(context))


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
