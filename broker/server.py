"""KafkaServer: starts a broker's parts in Kafka's order and stops them in reverse."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from broker import heap
from broker.api.acl_apis import AclApis
from broker.api.admin_apis import AdminApis
from broker.api.authorization import ALLOW_EVERYTHING, Authorizer
from broker.api.control_apis import ControlApis
from broker.api.data_apis import DataApis
from broker.api.group_apis import GroupApis
from broker.api.kafka_apis import KafkaApis
from broker.api.timer import RequestTimer
from broker.authorizer.acl import parse_super_users
from broker.authorizer.acl_authorizer import AclAuthorizer
from broker.config import EndPoint, KafkaConfig
from broker.controller.channel_manager import ControllerChannelManager
from broker.controller.controller import KafkaController
from broker.controller_fence import ControllerFence, ControllerIdentity
from broker.group.group_coordinator import GroupCoordinator
from broker.group.group_coordinator_rules import GroupConfig
from broker.group.offsets_topic import OffsetsTopicCreator
from broker.grpc_options import server_options, target
from broker.grpc_security import InterBrokerChannels, server_credentials
from broker.grpc_services.adapter import Listener
from broker.grpc_services.admin import AdminService
from broker.grpc_services.broker_control import BrokerControlService
from broker.grpc_services.data import DataService
from broker.grpc_services.group import GroupService
from broker.log.log_config import LogConfig
from broker.log.log_manager import LogManager
from broker.metadata_cache import MetadataCache, PartitionInfo, TopicPartition
from broker.network.socket_server import SocketServer
from broker.producer_id_manager import ProducerIdManager
from broker.replica_manager import ReplicaManager
from broker.scheduler import KafkaScheduler
from broker.zk import zk_data
from broker.zk.kafka_zk_client import KafkaZkClient
from broker.zk.zk_data import BrokerInfo
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC
from minikafka_protocol.security import SecurityProtocol
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

log = logging.getLogger(__name__)

# How soon leader epoch changes reach their checkpoint files (LogManager.checkpoint_leader_epochs).
LEADER_EPOCH_CHECKPOINT_INTERVAL_S = 1.0


class FatalBrokerError(Exception):
    """The broker cannot run; the message is one line for the operator."""


class KafkaServer:
    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self.broker_id = config.broker_id
        self.cluster_id: str | None = None
        self.zk: KafkaZkClient | None = None
        self.controller: KafkaController | None = None
        self._grpc: list[grpc.Server] = []
        self._socket_servers: list[SocketServer] = []  # the Kafka-protocol listeners
        self.authorizer: AclAuthorizer | None = None
        self.inter_broker = InterBrokerChannels(config.inter_broker_listener_name, config.inter_broker_protocol,
                                                config.ssl_stores)
        self._health = health.HealthServicer()
        self.bound_ports: dict[str, int] = {}
        self.metadata_cache = MetadataCache()
        self.replica_manager: ReplicaManager | None = None
        self.log_manager: LogManager | None = None
        self.group_coordinator: GroupCoordinator | None = None
        self.scheduler = KafkaScheduler()
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
            security=self.config.zk_security,
        )
        log.info("Connecting to zookeeper on %s", self.config.zookeeper_connect)
        self.zk.start()
        self.zk.create_persistent_paths()
        self.cluster_id = self.zk.get_or_create_cluster_id()
        log.info("Cluster ID = %s", self.cluster_id)
        check_meta_properties(self.config.log_dirs, self.broker_id, self.cluster_id)

        servers = self._bind_grpc()
        broker_info = BrokerInfo(
            broker_id=self.broker_id,
            endpoints=tuple(e.connection_string for e in self._advertised_endpoints()),
            rack=self.config.rack,
            security_protocol_map={name: str(protocol) for name, protocol in self.config.listener_protocols.items()},
        )
        self.controller = KafkaController(
            broker_info, self.zk, on_fatal=self._on_fatal,
            unclean_leader_election_default=self.config.unclean_leader_election_enable,
            leader_imbalance_per_broker_percentage=self.config.leader_imbalance_per_broker_percentage,
            channels=ControllerChannelManager(self.broker_id, self.inter_broker),
        )
        self.log_manager = LogManager(self.config.log_dirs, default_log_config(self.config))
        zk = self.zk
        self.replica_manager = ReplicaManager(
            self.broker_id,
            lambda: self.controller.broker_epoch,
            self.log_manager,
            self.metadata_cache,
            write_isr=lambda changes: write_isrs(zk, changes),
            topic_config=lambda topic: zk.get_topic_configs([topic]).get(topic, {}),
            replica_lag_time_max_ms=self.config.replica_lag_time_max_ms,
            fetcher_config={
                "max_wait_ms": self.config.replica_fetch_wait_max_ms,
                "min_bytes": self.config.replica_fetch_min_bytes,
                "fetch_max_bytes": self.config.replica_fetch_max_bytes,
                "response_max_bytes": self.config.replica_fetch_response_max_bytes,
                "backoff_ms": self.config.replica_fetch_backoff_ms,
                "channels": self.inter_broker,
            },
            fetch_session_cache_slots=self.config.max_incremental_fetch_session_cache_slots,
        )
        metadata = self.metadata_cache
        self.group_coordinator = GroupCoordinator(
            self.broker_id, self.replica_manager,
            lambda: len(metadata.snapshot().partitions_of(OFFSETS_TOPIC)) or None,
            GroupConfig(
                group_min_session_timeout_ms=self.config.group_min_session_timeout_ms,
                group_max_session_timeout_ms=self.config.group_max_session_timeout_ms,
                group_max_size=self.config.group_max_size,
                group_initial_rebalance_delay_ms=self.config.group_initial_rebalance_delay_ms,
            ),
            commit_timeout_ms=self.config.offsets_commit_timeout_ms,
            load_buffer_size=self.config.offsets_load_buffer_size,
            max_metadata_bytes=self.config.offset_metadata_max_bytes,
        )
        # Before the first LeaderAndIsr can arrive: it may make this broker a group coordinator.
        self.group_coordinator.startup()
        self._add_services(servers)
        for server in servers.values():
            server.start()
        self._grpc = list(servers.values())
        broker_epoch = self.zk.register_broker(broker_info)
        log.info(
            "Registered broker %d at path /brokers/ids/%d with addresses: %s, czxid (broker epoch): %d",
            self.broker_id, self.broker_id, ",".join(broker_info.endpoints), broker_epoch,
        )
        self.zk.set_session_listener(self.controller.on_session_event)
        self.controller.startup(broker_epoch)
        self.replica_manager.start()
        self._schedule_log_tasks()
        if self.config.auto_leader_rebalance_enable:
            self.controller.schedule_auto_leader_rebalance(self.config.leader_imbalance_check_interval_seconds)
        heap.settle()  # the logs loaded and everything built at startup
        self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info("%s started", prefix)

    def _schedule_log_tasks(self) -> None:
        replicas, logs = self.replica_manager, self.log_manager
        assert replicas is not None and logs is not None
        self.scheduler.schedule(
            "highwatermark-checkpoint", replicas.checkpoint_high_watermarks,
            self.config.replica_high_watermark_checkpoint_interval_ms / 1000,
        )
        self.scheduler.schedule(
            "kafka-log-retention", replicas.apply_retention,
            self.config.log_retention_check_interval_ms / 1000, delay_s=30,
        )
        self.scheduler.schedule("kafka-recovery-point-checkpoint", logs.checkpoint_recovery_points, 60)
        self.scheduler.schedule("kafka-leader-epoch-checkpoint", logs.checkpoint_leader_epochs,
                                LEADER_EPOCH_CHECKPOINT_INTERVAL_S)
        self.scheduler.start()

    def _bind_grpc(self) -> dict[str, grpc.Server]:
        """One gRPC server per listener (as Kafka gives each listener its own acceptor), so that
        every request knows the listener it came in on and that listener's protocol."""
        servers: dict[str, grpc.Server] = {}
        for endpoint in self.config.listeners:
            if endpoint.listener_name in self.config.kafka_protocol_listeners:
                self._bind_kafka_protocol(endpoint)
                continue
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=self.config.queued_max_requests, thread_name_prefix="grpc"),
                options=server_options(self.config.socket_request_max_bytes),
                maximum_concurrent_rpcs=self.config.queued_max_requests,
            )
            host = endpoint.host or "0.0.0.0"
            address = target(host, endpoint.port)
            protocol = self.config.listener_protocols[endpoint.listener_name]
            try:
                if protocol is SecurityProtocol.SSL:
                    port = server.add_secure_port(address, server_credentials(self.config.ssl_stores,
                                                                              self.config.ssl_client_auth))
                else:
                    port = server.add_insecure_port(address)
            except RuntimeError:
                port = 0
            if port == 0:
                raise FatalBrokerError(f"Cannot listen on {endpoint.connection_string}: address in use or unavailable")
            self.bound_ports[endpoint.listener_name] = port
            servers[endpoint.listener_name] = server
            log.info("Awaiting socket connections on %s:%d (%s, %s)", host, port, endpoint.listener_name, protocol)
        return servers

    def _bind_kafka_protocol(self, endpoint: EndPoint) -> None:
        server = SocketServer(endpoint.listener_name, endpoint.host, endpoint.port,
                              self.config.socket_request_max_bytes,
                              f"[SocketServer listenerName={endpoint.listener_name}]")
        try:
            port = server.bind()
        except OSError as e:
            server.stop()
            raise FatalBrokerError(f"Cannot listen on {endpoint.connection_string}: {e.strerror or e}") from None
        self.bound_ports[endpoint.listener_name] = port
        self._socket_servers.append(server)
        log.info("Awaiting socket connections on %s:%d (%s, %s, Kafka protocol)", endpoint.host or "0.0.0.0", port,
                 endpoint.listener_name, self.config.listener_protocols[endpoint.listener_name])

    def _add_services(self, servers: dict[str, grpc.Server]) -> None:
        assert self.zk is not None and self.cluster_id is not None and self.controller is not None
        assert self.replica_manager is not None
        self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert self.group_coordinator is not None
        timer = RequestTimer(f"request-timer-{self.broker_id}")
        authorizer: Authorizer = ALLOW_EVERYTHING
        if self.config.authorizer_enabled:
            self.authorizer = AclAuthorizer(self.zk, parse_super_users(self.config.super_users),
                                            self.config.allow_everyone_if_no_acl_found, f"[Broker id={self.broker_id}]")
            self.authorizer.start()
            authorizer = self.authorizer
        apis = KafkaApis(
            AdminApis(self.config, self.zk, self.cluster_id, self.metadata_cache, self.controller,
                      self.replica_manager, timer, group_metrics=self._group_metrics, authorizer=authorizer),
            DataApis(self.broker_id, self.replica_manager, self.metadata_cache,
                     ProducerIdManager(self.broker_id, self.zk), authorizer),
            ControlApis(self.broker_id, self.replica_manager, self.metadata_cache, self.controller, timer,
                        self._controller_fence(self.zk), authorizer),
            GroupApis(self.broker_id, self.metadata_cache, self.group_coordinator,
                      OffsetsTopicCreator(self.zk, self.config.offsets_topic_num_partitions,
                                          self.config.offsets_topic_replication_factor,
                                          self.config.offsets_topic_segment_bytes), authorizer),
            AclApis(authorizer, self.authorizer, f"[Broker id={self.broker_id}]"),
        )
        for socket_server in self._socket_servers:
            socket_server.serve(apis)
        for name, server in servers.items():
            listener = Listener(name, self.config.listener_protocols[name])
            health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
            kafka_pb2_grpc.add_AdminServicer_to_server(AdminService(apis, listener), server)
            kafka_pb2_grpc.add_DataServicer_to_server(DataService(apis, listener), server)
            kafka_pb2_grpc.add_GroupServicer_to_server(GroupService(apis, listener), server)
            kafka_pb2_grpc.add_BrokerControlServicer_to_server(BrokerControlService(apis, listener), server)

    def _controller_fence(self, zk: KafkaZkClient) -> ControllerFence:
        session_s = self.config.zookeeper_session_timeout_ms / 1000
        return ControllerFence(f"[Broker id={self.broker_id}]",
                               lambda: ControllerIdentity(*zk.read_controller_identity(session_s)))

    def _group_metrics(self) -> dict[str, int]:
        if self.group_coordinator is None:
            return {}
        try:
            return self.group_coordinator.metrics().result(5)
        except TimeoutError:
            return {}

    def _controlled_shutdown(self) -> None:
        """Ask the controller to move this broker's leaderships away before it stops
        (KafkaServer.controlledShutdown), retrying while partitions remain."""
        assert self.controller is not None
        attempts = self.config.controlled_shutdown_max_retries
        for attempt in range(1, attempts + 1):
            snapshot = self.metadata_cache.snapshot()
            controller_id = snapshot.controller_id
            remaining: list[TopicPartition] = []
            try:
                if controller_id == self.broker_id and self.controller.is_active:
                    error, remaining = self.controller.controlled_shutdown(
                        self.broker_id, self.controller.broker_epoch, timeout=30
                    )
                elif controller_id in snapshot.brokers:
                    controller = snapshot.brokers[controller_id]
                    address = self.inter_broker.address(controller.endpoints, controller.host, controller.port)
                    with self.inter_broker.channel(address) as channel:
                        response = kafka_pb2_grpc.BrokerControlStub(channel).ControlledShutdown(
                            kafka_pb2.ControlledShutdownRequest(
                                broker_id=self.broker_id, broker_epoch=self.controller.broker_epoch
                            ),
                            timeout=30,
                        )
                    error = Errors.for_code(response.error_code)
                    remaining = [(tp.topic, tp.partition) for tp in response.remaining_partitions]
                else:
                    error = Errors.NOT_CONTROLLER if controller_id < 0 else Errors.BROKER_NOT_AVAILABLE
            except grpc.RpcError as e:
                error = Errors.BROKER_NOT_AVAILABLE
                log.warning("Controlled shutdown request to controller %d failed: %s", controller_id, e.code())
            if error is Errors.NONE and not remaining:
                log.info("Controlled shutdown request returned successfully after %d attempts", attempt)
                return
            log.warning(
                "Retrying controlled shutdown (%d/%d): %s; remaining partitions to move: %s",
                attempt, attempts, error.name, ",".join(f"{t}-{p}" for t, p in remaining),
            )
            time.sleep(self.config.controlled_shutdown_retry_backoff_ms / 1000)
        log.warning("Proceeding to do an unclean shutdown as all the controlled shutdown attempts failed")

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
        if self.controller is not None and self.config.controlled_shutdown_enable and self._grpc:
            try:
                self._controlled_shutdown()
            except Exception:
                log.exception("Controlled shutdown failed")
        self._health.enter_graceful_shutdown()
        if self.group_coordinator is not None:
            # Answers the parked JoinGroups and SyncGroups, so no worker thread waits on them.
            self.group_coordinator.shutdown()
        # Kafka's order: stop taking requests, then the replicas and logs, then the controller
        # and the ZooKeeper session.
        for socket_server in self._socket_servers:
            socket_server.stop()
        stopping = [server.stop(grace=1) for server in self._grpc]
        for stopped in stopping:
            stopped.wait(5)
        self.scheduler.shutdown()
        if self.authorizer is not None:
            self.authorizer.stop()
        if self.replica_manager is not None:
            self.replica_manager.stop()
            self.replica_manager.checkpoint_high_watermarks()
        if self.log_manager is not None:
            self.log_manager.shutdown()
        if self.controller is not None:
            self.controller.shutdown(timeout=10)
        if self.zk is not None:
            if self.controller is not None:  # registered
                try:
                    self.zk.deregister_broker(self.broker_id)
                except Exception as e:
                    log.warning("Could not delete /brokers/ids/%d: %s", self.broker_id, e or type(e).__name__)
            self.zk.close()
        log.info("%s shut down completed", prefix)


def default_log_config(config: KafkaConfig) -> LogConfig:
    """The broker's log.* settings as the defaults every topic's config starts from."""
    return LogConfig(
        segment_bytes=config.log_segment_bytes,
        segment_ms=config.log_roll_ms,
        retention_ms=config.log_retention_ms,
        retention_bytes=config.log_retention_bytes,
        max_message_bytes=config.message_max_bytes,
        index_interval_bytes=config.log_index_interval_bytes,
        segment_index_bytes=config.log_index_size_max_bytes,
        min_insync_replicas=config.min_insync_replicas,
        unclean_leader_election_enable=config.unclean_leader_election_enable,
    )


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


def write_isrs(zk: KafkaZkClient, changes: list[tuple[PartitionInfo, tuple[int, ...]]]) -> list[int | None]:
    """The replica manager's ISR changes in ZooKeeper: each partition's new zk version, or None."""
    written = zk.update_leader_and_isrs({
        (p.topic, p.partition): (
            zk_data.encode_partition_state(p.leader, p.leader_epoch, list(isr), p.controller_epoch), p.zk_version
        )
        for p, isr in changes
    })
    return [written[(p.topic, p.partition)] for p, _ in changes]
