"""KafkaServer: starts a broker's parts in Kafka's order and stops them in reverse."""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from broker.admin_service import AdminService
from broker.config import EndPoint, KafkaConfig
from broker.controller.controller import KafkaController
from broker.zk.kafka_zk_client import KafkaZkClient
from broker.zk.zk_data import BrokerInfo
from minikafka_rpc import kafka_pb2_grpc

log = logging.getLogger(__name__)


class FatalBrokerError(Exception):
    """The broker cannot run; the message is one line for the operator."""


class KafkaServer:
    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self.broker_id = config.broker_id
        self.cluster_id: str | None = None
        self.zk: KafkaZkClient | None = None
        self.controller: KafkaController | None = None
        self._grpc: grpc.Server | None = None
        self._health = health.HealthServicer()
        self.bound_ports: dict[str, int] = {}
        self.fatal = threading.Event()
        self.fatal_reason = ""

    def startup(self) -> None:
        prefix = f"[KafkaServer id={self.broker_id}]"
        log.info("%s starting", prefix)
        for directory in self.config.log_dirs:
            os.makedirs(directory, exist_ok=True)
        self.zk = KafkaZkClient(
            self.config.zookeeper_connect,
            self.config.zookeeper_session_timeout_ms,
            self.config.zookeeper_connection_timeout_ms,
        )
        log.info("Connecting to zookeeper on %s", self.config.zookeeper_connect)
        self.zk.start()
        self.zk.create_persistent_paths()
        self.cluster_id = self.zk.get_or_create_cluster_id()
        log.info("Cluster ID = %s", self.cluster_id)
        check_meta_properties(self.config.log_dirs, self.broker_id, self.cluster_id)

        self._start_grpc()
        broker_info = BrokerInfo(
            broker_id=self.broker_id,
            endpoints=tuple(e.connection_string for e in self._advertised_endpoints()),
            rack=self.config.rack,
            security_protocol_map={e.listener_name: "PLAINTEXT" for e in self.config.listeners},
        )
        broker_epoch = self.zk.register_broker(broker_info)
        log.info(
            "Registered broker %d at path /brokers/ids/%d with addresses: %s, czxid (broker epoch): %d",
            self.broker_id, self.broker_id, ",".join(broker_info.endpoints), broker_epoch,
        )
        self.controller = KafkaController(broker_info, self.zk, on_fatal=self._on_fatal)
        self.zk.set_session_listener(self.controller.on_session_event)
        self.controller.startup(broker_epoch)
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("%s started", prefix)

    def _start_grpc(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="grpc"))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert self.zk is not None and self.cluster_id is not None
        kafka_pb2_grpc.add_AdminServicer_to_server(AdminService(self.broker_id, self.zk, self.cluster_id), server)
        for endpoint in self.config.listeners:
            host = endpoint.host or "0.0.0.0"
            address = f"[{host}]:{endpoint.port}" if ":" in host else f"{host}:{endpoint.port}"
            try:
                port = server.add_insecure_port(address)
            except RuntimeError:
                port = 0
            if port == 0:
                raise FatalBrokerError(f"Cannot listen on {endpoint.connection_string}: address in use or unavailable")
            self.bound_ports[endpoint.listener_name] = port
            log.info("Awaiting socket connections on %s:%d (%s)", host, port, endpoint.listener_name)
        server.start()
        self._grpc = server

    def _advertised_endpoints(self) -> list[EndPoint]:
        advertised = []
        for endpoint in self.config.advertised_listeners:
            port = endpoint.port or self.bound_ports[endpoint.listener_name]
            host = endpoint.host or socket.getfqdn()
            advertised.append(EndPoint(endpoint.listener_name, host, port))
        return advertised

    def _on_fatal(self, reason: str) -> None:
        self.fatal_reason = reason
        self.fatal.set()

    def shutdown(self) -> None:
        """Kafka's shutdown order: stop serving, resign, deregister, close the session."""
        prefix = f"[KafkaServer id={self.broker_id}]"
        log.info("%s shutting down", prefix)
        self._health.enter_graceful_shutdown()
        if self.controller is not None:
            self.controller.shutdown(timeout=10)
        if self.zk is not None:
            if self.controller is not None:  # registered
                try:
                    self.zk.deregister_broker(self.broker_id)
                except Exception as e:
                    log.warning("Could not delete /brokers/ids/%d: %s", self.broker_id, e or type(e).__name__)
            self.zk.close()
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait(5)
        log.info("%s shut down completed", prefix)


def check_meta_properties(log_dirs: list[str], broker_id: int, cluster_id: str) -> None:
    """meta.properties in each log dir ties the data to one broker and one cluster, as Kafka's."""
    for directory in log_dirs:
        path = os.path.join(directory, "meta.properties")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                props = dict(
                    line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#")
                )
            if props.get("broker.id") not in (None, str(broker_id)):
                raise FatalBrokerError(
                    f"Configured broker.id {broker_id} doesn't match stored broker.id "
                    f"{props['broker.id']} in {path}"
                )
            if props.get("cluster.id") not in (None, cluster_id):
                raise FatalBrokerError(
                    f"The Cluster ID {cluster_id} doesn't match stored clusterId {props['cluster.id']} "
                    f"in {path}. The broker is trying to join the wrong cluster."
                )
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"version=0\nbroker.id={broker_id}\ncluster.id={cluster_id}\n")
