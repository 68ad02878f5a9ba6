"""ControllerChannelManager: one request queue and sender thread per live broker.

The controller's requests to a broker leave in the order they were queued; a broker that does
not answer is retried until it answers or leaves the cluster (Kafka's RequestSendThread)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from broker.grpc_security import InterBrokerChannels
from broker.zk.zk_data import BrokerInfo
from minikafka_rpc import kafka_pb2_grpc

log = logging.getLogger(__name__)

# controller.socket.timeout.ms
REQUEST_TIMEOUT_S = 30.0
RETRY_BACKOFF_S = 0.1


@dataclass
class QueuedRequest:
    method: str  # a BrokerControl method: LeaderAndIsr, UpdateMetadata, StopReplica
    request: Any
    callback: Callable[[Any], None] | None = None


class RequestSendThread:
    def __init__(self, controller_id: int, broker: BrokerInfo, channels: InterBrokerChannels) -> None:
        self.broker = broker
        self.queue: queue.Queue[QueuedRequest | None] = queue.Queue()
        self._stopped = threading.Event()
        self._channel = channels.channel(channels.address(broker.endpoints, *broker.endpoint()))
        self._stub = kafka_pb2_grpc.BrokerControlStub(self._channel)
        self._prefix = f"[RequestSendThread controllerId={controller_id}]"
        self._thread = threading.Thread(
            target=self._run, name=f"controller-{controller_id}-to-broker-{broker.broker_id}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            item = self.queue.get()
            if item is None:
                return
            while not self._stopped.is_set():
                try:
                    response = getattr(self._stub, item.method)(item.request, timeout=REQUEST_TIMEOUT_S)
                except grpc.RpcError as e:
                    log.debug("%s %s to broker %d failed: %s; retrying", self._prefix, item.method,
                              self.broker.broker_id, e.code())
                    self._stopped.wait(RETRY_BACKOFF_S)
                    continue
                if item.callback is not None:
                    item.callback(response)
                break

    def stop(self) -> None:
        self._stopped.set()
        self.queue.put(None)
        self._channel.close()


class ChannelManager(Protocol):
    """What the controller needs of its channels to the brokers: ControllerChannelManager, or a
    stand-in that records the requests (the controller's unit tests)."""

    def add_broker(self, broker: BrokerInfo) -> None: ...

    def remove_broker(self, broker_id: int) -> None: ...

    def send(
        self, broker_id: int, method: str, request: Any, callback: Callable[[Any], None] | None = None
    ) -> None: ...

    def shutdown(self) -> None: ...


class ControllerChannelManager:
    def __init__(self, controller_id: int, channels: InterBrokerChannels | None = None) -> None:
        self._controller_id = controller_id
        self._channels = channels or InterBrokerChannels()
        self._threads: dict[int, RequestSendThread] = {}

    def add_broker(self, broker: BrokerInfo) -> None:
        if broker.broker_id in self._threads:
            if self._threads[broker.broker_id].broker == broker:
                return
            self.remove_broker(broker.broker_id)
        self._threads[broker.broker_id] = RequestSendThread(self._controller_id, broker, self._channels)

    def remove_broker(self, broker_id: int) -> None:
        thread = self._threads.pop(broker_id, None)
        if thread is not None:
            thread.stop()

    def send(self, broker_id: int, method: str, request: Any, callback: Callable[[Any], None] | None = None) -> None:
        thread = self._threads.get(broker_id)
        if thread is not None:
            thread.queue.put(QueuedRequest(method, request, callback))

    def shutdown(self) -> None:
        for broker_id in list(self._threads):
            self.remove_broker(broker_id)
