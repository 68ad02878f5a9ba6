"""The broker's configuration, under Kafka's property names and with Kafka's defaults.

A property comes from, in rising precedence: the properties file, an environment variable
(`MINIKAFKA_` + the name in upper case with dots as underscores: `MINIKAFKA_BROKER_ID`), and
`--override name=value` on the command line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from broker.zk.zk_security import ZkSecurity, ZkSecurityError
from minikafka_protocol.properties import PropertiesError, read_properties
from minikafka_protocol.security import (
    DEFAULT_PROTOCOL_MAP,
    SUPPORTED_PROTOCOLS,
    SecurityConfigError,
    SecurityProtocol,
    SslStores,
    load_ssl_stores,
)

ENV_PREFIX = "MINIKAFKA_"


class ConfigError(ValueError):
    """A property that is unknown, missing or malformed; its message is one line."""


@dataclass(frozen=True)
class EndPoint:
    """One listener, `NAME://host:port`; an empty host binds every interface."""

    listener_name: str
    host: str
    port: int

    @property
    def connection_string(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.listener_name}://{host}:{self.port}"


_ENDPOINT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)://(?P<host>\[[0-9a-fA-F:.]+\]|[^:\[\]/]*):(?P<port>-?\d+)$")


def parse_endpoints(name: str, value: str) -> list[EndPoint]:
    endpoints = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        match = _ENDPOINT.match(item)
        if match is None:
            raise ConfigError(
                f"Invalid value {value} for configuration {name}: "
                f"'{item}' is not of the form LISTENER_NAME://host:port"
            )
        port = int(match["port"])
        if not 0 <= port <= 65535:
            raise ConfigError(f"Invalid value {value} for configuration {name}: port {port} is out of range")
        endpoints.append(EndPoint(match["name"].upper(), match["host"].strip("[]"), port))
    if not endpoints:
        raise ConfigError(f"Invalid value {value} for configuration {name}: no listener given")
    names = [e.listener_name for e in endpoints]
    if len(set(names)) != len(names):
        raise ConfigError(f"Invalid value {value} for configuration {name}: each listener must have a different name")
    return endpoints


def _to_int(name: str, raw: str, minimum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"Invalid value {raw} for configuration {name}: Not a number of type INT") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"Invalid value {raw} for configuration {name}: Value must be at least {minimum}")
    return value


def _to_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in ("true", "false"):
        raise ConfigError(f"Invalid value {raw} for configuration {name}: Expected value to be either true or false")
    return lowered == "true"


def _to_list(name: str, raw: str) -> list[str]:
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"Invalid value {raw} for configuration {name}: the list is empty")
    return items


def _to_zk_connect(name: str, raw: str) -> str:
    # host:port[,host:port...][/chroot], as ZooKeeper's own clients take it.
    value = raw.strip()
    servers, _, chroot = value.partition("/")
    for server in servers.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ConfigError(f"Invalid value {raw} for configuration {name}: '{server}' is not host:port")
    if chroot and (chroot.endswith("/") or "//" in chroot):
        raise ConfigError(f"Invalid value {raw} for configuration {name}: malformed chroot '/{chroot}'")
    return value


def _to_protocol_map(name: str, raw: str) -> dict[str, SecurityProtocol]:
    protocols: dict[str, SecurityProtocol] = {}
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        listener, sep, protocol = item.partition(":")
        if not sep or not listener.strip():
            raise ConfigError(f"Invalid value {raw} for configuration {name}: '{item}' is not NAME:PROTOCOL")
        try:
            protocols[listener.strip().upper()] = SecurityProtocol(protocol.strip().upper())
        except ValueError:
            raise ConfigError(f"Invalid value {raw} for configuration {name}: no security protocol "
                              f"'{protocol.strip()}'") from None
    return protocols


ACL_AUTHORIZER_NAMES = ("kafka.security.authorizer.AclAuthorizer", "AclAuthorizer")


def _to_authorizer(name: str, raw: str) -> str:
    value = raw.strip()
    if value and value not in ACL_AUTHORIZER_NAMES:
        raise ConfigError(f"Invalid value {raw} for configuration {name}: the one authorizer is "
                          f"{ACL_AUTHORIZER_NAMES[0]}")
    return value


def _to_client_auth(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value == "requested":
        raise ConfigError(f"Invalid value {raw} for configuration {name}: 'requested' is not supported, since "
                          "gRPC's TLS cannot ask for a client certificate without requiring one; "
                          "use required or none")
    if value not in ("required", "none"):
        raise ConfigError(f"Invalid value {raw} for configuration {name}: use required or none")
    return value


@dataclass(frozen=True)
class ConfigDef:
    name: str
    parse: Callable[[str, str], Any]
    default: Any
    doc: str
    required: bool = False


def _non_negative_int(name: str, raw: str) -> int:
    return _to_int(name, raw, minimum=0)


def _positive_int(name: str, raw: str) -> int:
    return _to_int(name, raw, minimum=1)


def _int(name: str, raw: str) -> int:
    return _to_int(name, raw)


def _optional_positive_int(name: str, raw: str) -> int | None:
    return _to_int(name, raw, minimum=1) if raw.strip() else None


def _optional_str(_name: str, raw: str) -> str | None:
    return raw.strip() or None


# Kafka's names and defaults; where ours differ the doc says why.
CONFIG_DEFS: dict[str, ConfigDef] = {
    d.name: d
    for d in (
        ConfigDef(
            "broker.id", _non_negative_int, None,
            "This broker's id. Kafka can generate one (broker.id -1); minikafka requires it.",
            required=True,
        ),
        ConfigDef(
            "listeners", parse_endpoints, "PLAINTEXT://:9092",
            "Where the broker's gRPC server listens; port 0 picks a free port.",
        ),
        ConfigDef(
            "advertised.listeners", parse_endpoints, None,
            "What the broker registers in ZooKeeper for clients; defaults to listeners.",
        ),
        ConfigDef(
            "listener.security.protocol.map", _to_protocol_map, DEFAULT_PROTOCOL_MAP,
            "Each listener name's security protocol, NAME:PROTOCOL,...; PLAINTEXT and SSL are supported.",
        ),
        ConfigDef(
            "security.inter.broker.protocol", _optional_str, None,
            "The protocol brokers speak to each other (the listener of that name); default PLAINTEXT.",
        ),
        ConfigDef(
            "inter.broker.listener.name", _optional_str, None,
            "The listener brokers speak to each other on; not together with security.inter.broker.protocol.",
        ),
        ConfigDef("ssl.keystore.type", _optional_str, "PEM", "Only PEM keystores are supported."),
        ConfigDef("ssl.keystore.location", _optional_str, None, "A PEM file: the private key, then its chain."),
        ConfigDef("ssl.keystore.key", _optional_str, None, "The private key as PEM text."),
        ConfigDef("ssl.keystore.certificate.chain", _optional_str, None, "The certificate chain as PEM text."),
        ConfigDef("ssl.key.password", _optional_str, None, "The password of an encrypted private key."),
        ConfigDef("ssl.truststore.type", _optional_str, "PEM", "Only PEM truststores are supported."),
        ConfigDef("ssl.truststore.location", _optional_str, None, "A PEM file of the CA certificates trusted."),
        ConfigDef("ssl.truststore.certificates", _optional_str, None, "The trusted CA certificates as PEM text."),
        ConfigDef(
            "ssl.client.auth", _to_client_auth, "none",
            "required: an SSL client must present a certificate the truststore signed; none: it is not asked. "
            "Kafka's 'requested' (ask, but accept none) is refused: gRPC's TLS cannot ask without requiring.",
        ),
        ConfigDef(
            "authorizer.class.name", _to_authorizer, "",
            "kafka.security.authorizer.AclAuthorizer (or AclAuthorizer) turns on the ACL authorizer; empty: none.",
        ),
        ConfigDef("super.users", _optional_str, None, "Principals allowed everything: User:a;User:b."),
        ConfigDef(
            "allow.everyone.if.no.acl.found", _to_bool, False,
            "Whether a resource without any ACL is open to every principal.",
        ),
        ConfigDef("zookeeper.connect", _to_zk_connect, None, "host:port[,host:port][/chroot]", required=True),
        ConfigDef("zookeeper.session.timeout.ms", _positive_int, 18000, "ZooKeeper session timeout."),
        ConfigDef(
            "zookeeper.connection.timeout.ms", _positive_int, None,
            "How long to wait for the first connection; defaults to the session timeout.",
        ),
        ConfigDef("zookeeper.set.acl", _to_bool, False, "Create znodes writable by the brokers alone."),
        ConfigDef(
            "zookeeper.auth.digest", _optional_str, None,
            "user:password the brokers authenticate to ZooKeeper with (Kafka: JAAS Client section).",
        ),
        ConfigDef("log.dirs", _to_list, None, "Directories of the broker's data; defaults to log.dir."),
        ConfigDef("log.dir", _optional_str, "/tmp/kafka-logs", "Used when log.dirs is not set."),
        ConfigDef(
            "kafka.protocol.listener.names", _optional_str, None,
            "minikafka's own: the listeners (by name) that speak Kafka's wire protocol instead of gRPC, "
            "for Kafka's own clients; each is still in listeners and listener.security.protocol.map.",
        ),
        ConfigDef("broker.rack", _optional_str, None, "The broker's rack, registered in ZooKeeper."),
        ConfigDef(
            "socket.request.max.bytes", _positive_int, 104857600,
            "The largest request a listener accepts; a larger one is refused with RESOURCE_EXHAUSTED.",
        ),
        ConfigDef(
            "queued.max.requests", _positive_int, 2048,
            "Requests a listener serves at once (each holds a worker thread); more are refused.",
        ),
        ConfigDef("num.partitions", _positive_int, 1, "Partitions of a topic created without a count."),
        ConfigDef(
            "default.replication.factor", _positive_int, 1, "Replication factor of a topic created without one."
        ),
        ConfigDef(
            "unclean.leader.election.enable", _to_bool, False,
            "Elect an out-of-sync replica when no ISR member is alive (topics may override).",
        ),
        ConfigDef("auto.leader.rebalance.enable", _to_bool, True, "Run the preferred election periodically."),
        ConfigDef("leader.imbalance.check.interval.seconds", _positive_int, 300, "How often to check."),
        ConfigDef(
            "leader.imbalance.per.broker.percentage", _non_negative_int, 10,
            "The share of a broker's preferred partitions it may fail to lead before a rebalance.",
        ),
        ConfigDef("log.segment.bytes", _positive_int, 1073741824, "Roll a segment at this size."),
        ConfigDef("log.roll.ms", _optional_positive_int, None, "Roll a segment this old; defaults to log.roll.hours."),
        ConfigDef("log.roll.hours", _positive_int, 168, "Used when log.roll.ms is not set."),
        ConfigDef(
            "log.retention.ms", _int, None,
            "Delete segments older than this (-1: never); defaults to log.retention.minutes, then hours.",
        ),
        ConfigDef("log.retention.minutes", _optional_positive_int, None, "Used when log.retention.ms is not set."),
        ConfigDef("log.retention.hours", _positive_int, 168, "Used when neither of the above is set."),
        ConfigDef("log.retention.bytes", _int, -1, "Delete the oldest segments beyond this size (-1: no limit)."),
        ConfigDef("log.retention.check.interval.ms", _positive_int, 300000, "How often retention runs."),
        ConfigDef("log.index.interval.bytes", _positive_int, 4096, "Bytes between offset index entries."),
        ConfigDef("log.index.size.max.bytes", _positive_int, 10485760, "The largest offset index file."),
        ConfigDef("message.max.bytes", _positive_int, 1048588, "The largest record batch a topic accepts."),
        ConfigDef(
            "min.insync.replicas", _positive_int, 1,
            "With acks=all, the fewest ISR members a write needs (topics may override).",
        ),
        ConfigDef(
            "replica.lag.time.max.ms", _positive_int, 30000,
            "A follower that has not caught up with the leader for this long leaves the ISR.",
        ),
        ConfigDef("replica.fetch.wait.max.ms", _positive_int, 500, "How long a follower's fetch may wait."),
        ConfigDef("replica.fetch.min.bytes", _positive_int, 1, "Bytes a follower's fetch waits for."),
        ConfigDef("replica.fetch.max.bytes", _positive_int, 1048576, "Bytes fetched per partition."),
        ConfigDef("replica.fetch.response.max.bytes", _positive_int, 10485760, "Bytes per fetch response."),
        ConfigDef("replica.fetch.backoff.ms", _non_negative_int, 1000, "Pause after a failed fetch."),
        ConfigDef(
            "replica.high.watermark.checkpoint.interval.ms", _positive_int, 5000,
            "How often each log dir's high watermarks are written to disk.",
        ),
        ConfigDef("num.replica.fetchers", _positive_int, 1, "Fetcher threads per source broker."),
        ConfigDef("offsets.topic.num.partitions", _positive_int, 50, "Partitions of __consumer_offsets."),
        ConfigDef(
            "offsets.topic.replication.factor", _positive_int, 3,
            "Replication factor of __consumer_offsets; lowered, with a warning, to the live brokers' count.",
        ),
        ConfigDef("offsets.topic.segment.bytes", _positive_int, 104857600, "Segment size of __consumer_offsets."),
        ConfigDef(
            "offsets.load.buffer.size", _positive_int, 5242880,
            "Bytes read at a time when a coordinator loads an offsets partition.",
        ),
        ConfigDef(
            "offsets.commit.timeout.ms", _positive_int, 5000,
            "How long an offset commit or a group write waits for the offsets partition's ISR.",
        ),
        ConfigDef("offset.metadata.max.bytes", _non_negative_int, 4096, "The longest metadata of a commit."),
        ConfigDef("group.min.session.timeout.ms", _positive_int, 6000, "The shortest session a member may ask for."),
        ConfigDef(
            "group.max.session.timeout.ms", _positive_int, 1800000, "The longest session a member may ask for."
        ),
        ConfigDef("group.max.size", _positive_int, 2147483647, "The most members a group may have."),
        ConfigDef(
            "group.initial.rebalance.delay.ms", _non_negative_int, 3000,
            "How long the first rebalance of an empty group waits for more members.",
        ),
        ConfigDef(
            "max.incremental.fetch.session.cache.slots", _non_negative_int, 1000,
            "Incremental fetch sessions (KIP-227) a broker keeps; 0 turns them off.",
        ),
        ConfigDef("controlled.shutdown.enable", _to_bool, True, "Move leadership away before a clean stop."),
        ConfigDef("controlled.shutdown.max.retries", _non_negative_int, 3, "Attempts before stopping anyway."),
        ConfigDef("controlled.shutdown.retry.backoff.ms", _non_negative_int, 5000, "Pause between attempts."),
    )
}


def env_name(property_name: str) -> str:
    return ENV_PREFIX + property_name.upper().replace(".", "_")


_BY_ENV_NAME = {env_name(name): name for name in CONFIG_DEFS}


def parse_override(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"Invalid override '{item}': expected name=value")
    return name.strip(), value


class KafkaConfig:
    """The validated configuration of one broker."""

    def __init__(self, props: Mapping[str, str], origins: Mapping[str, str] | None = None) -> None:
        origins = origins or {}
        for name in props:
            if name not in CONFIG_DEFS:
                where = origins.get(name, "configuration")
                raise ConfigError(f"Unknown configuration '{name}' ({where})")
        values: dict[str, Any] = {}
        for name, definition in CONFIG_DEFS.items():
            if name in props:
                values[name] = definition.parse(name, props[name])
            elif definition.required:
                raise ConfigError(
                    f"Missing required configuration '{name}' (set it in the properties file, "
                    f"with --override {name}=... or as {env_name(name)})"
                )
            else:
                values[name] = definition.default
        self.values = values
        self.broker_id: int = values["broker.id"]
        listeners = values["listeners"]
        self.listeners: list[EndPoint] = (
            parse_endpoints("listeners", listeners) if isinstance(listeners, str) else listeners
        )
        self.advertised_listeners: list[EndPoint] = values["advertised.listeners"] or self.listeners
        advertised_names = {e.listener_name for e in self.advertised_listeners}
        unknown = advertised_names - {e.listener_name for e in self.listeners}
        if unknown:
            raise ConfigError(
                f"advertised.listeners names {', '.join(sorted(unknown))}, which is not in listeners"
            )
        self._security(values)
        self.zookeeper_connect: str = values["zookeeper.connect"]
        self.zookeeper_session_timeout_ms: int = values["zookeeper.session.timeout.ms"]
        self.zookeeper_connection_timeout_ms: int = (
            values["zookeeper.connection.timeout.ms"] or self.zookeeper_session_timeout_ms
        )
        try:
            self.zk_security = ZkSecurity(values["zookeeper.set.acl"], values["zookeeper.auth.digest"])
        except ZkSecurityError as e:
            raise ConfigError(str(e)) from None
        self.log_dirs: list[str] = values["log.dirs"] or [values["log.dir"]]
        self.rack: str | None = values["broker.rack"]
        self.socket_request_max_bytes: int = values["socket.request.max.bytes"]
        self.queued_max_requests: int = values["queued.max.requests"]
        self.num_partitions: int = values["num.partitions"]
        self.default_replication_factor: int = values["default.replication.factor"]
        self.unclean_leader_election_enable: bool = values["unclean.leader.election.enable"]
        self.auto_leader_rebalance_enable: bool = values["auto.leader.rebalance.enable"]
        self.leader_imbalance_check_interval_seconds: int = values["leader.imbalance.check.interval.seconds"]
        self.leader_imbalance_per_broker_percentage: int = values["leader.imbalance.per.broker.percentage"]
        self.log_segment_bytes: int = values["log.segment.bytes"]
        self.log_roll_ms: int = values["log.roll.ms"] or values["log.roll.hours"] * 3_600_000
        minutes = values["log.retention.minutes"]
        self.log_retention_ms: int = (
            values["log.retention.ms"] if values["log.retention.ms"] is not None
            else minutes * 60_000 if minutes is not None else values["log.retention.hours"] * 3_600_000
        )
        self.log_retention_bytes: int = values["log.retention.bytes"]
        self.log_retention_check_interval_ms: int = values["log.retention.check.interval.ms"]
        self.log_index_interval_bytes: int = values["log.index.interval.bytes"]
        self.log_index_size_max_bytes: int = values["log.index.size.max.bytes"]
        self.message_max_bytes: int = values["message.max.bytes"]
        self.min_insync_replicas: int = values["min.insync.replicas"]
        self.replica_lag_time_max_ms: int = values["replica.lag.time.max.ms"]
        self.replica_fetch_wait_max_ms: int = values["replica.fetch.wait.max.ms"]
        self.replica_fetch_min_bytes: int = values["replica.fetch.min.bytes"]
        self.replica_fetch_max_bytes: int = values["replica.fetch.max.bytes"]
        self.replica_fetch_response_max_bytes: int = values["replica.fetch.response.max.bytes"]
        self.replica_fetch_backoff_ms: int = values["replica.fetch.backoff.ms"]
        self.replica_high_watermark_checkpoint_interval_ms: int = values[
            "replica.high.watermark.checkpoint.interval.ms"
        ]
        self.num_replica_fetchers: int = values["num.replica.fetchers"]
        self.offsets_topic_num_partitions: int = values["offsets.topic.num.partitions"]
        self.offsets_topic_replication_factor: int = values["offsets.topic.replication.factor"]
        self.offsets_topic_segment_bytes: int = values["offsets.topic.segment.bytes"]
        self.offsets_load_buffer_size: int = values["offsets.load.buffer.size"]
        self.offsets_commit_timeout_ms: int = values["offsets.commit.timeout.ms"]
        self.offset_metadata_max_bytes: int = values["offset.metadata.max.bytes"]
        self.group_min_session_timeout_ms: int = values["group.min.session.timeout.ms"]
        self.group_max_session_timeout_ms: int = values["group.max.session.timeout.ms"]
        self.group_max_size: int = values["group.max.size"]
        self.group_initial_rebalance_delay_ms: int = values["group.initial.rebalance.delay.ms"]
        self.max_incremental_fetch_session_cache_slots: int = values["max.incremental.fetch.session.cache.slots"]
        self.controlled_shutdown_enable: bool = values["controlled.shutdown.enable"]
        self.controlled_shutdown_max_retries: int = values["controlled.shutdown.max.retries"]
        self.controlled_shutdown_retry_backoff_ms: int = values["controlled.shutdown.retry.backoff.ms"]

    def _security(self, values: dict[str, Any]) -> None:
        """Each listener's security protocol, the inter-broker listener and the SSL stores, checked
        as Kafka checks them at startup."""
        protocol_map = values["listener.security.protocol.map"]
        if isinstance(protocol_map, str):
            protocol_map = _to_protocol_map("listener.security.protocol.map", protocol_map)
        self.listener_protocols: dict[str, SecurityProtocol] = {}
        for endpoint in self.listeners:
            protocol = protocol_map.get(endpoint.listener_name)
            if protocol is None:
                raise ConfigError(f"No security protocol defined for listener {endpoint.listener_name} "
                                  "(set listener.security.protocol.map)")
            if protocol not in SUPPORTED_PROTOCOLS:
                raise ConfigError(f"Listener {endpoint.listener_name} uses {protocol}, which is not supported "
                                  f"(SASL is not implemented; use {' or '.join(SUPPORTED_PROTOCOLS)})")
            self.listener_protocols[endpoint.listener_name] = protocol
        inter_protocol, inter_name = values["security.inter.broker.protocol"], values["inter.broker.listener.name"]
        if inter_protocol and inter_name:
            raise ConfigError("Only one of inter.broker.listener.name and security.inter.broker.protocol "
                              "should be set.")
        if inter_name:
            self.inter_broker_listener_name: str = inter_name.upper()
        else:
            try:
                self.inter_broker_listener_name = SecurityProtocol(
                    (inter_protocol or SecurityProtocol.PLAINTEXT).upper()).value
            except ValueError:
                raise ConfigError(f"Invalid value {inter_protocol} for configuration "
                                  "security.inter.broker.protocol: no such security protocol") from None
        if self.inter_broker_listener_name not in {e.listener_name for e in self.advertised_listeners}:
            raise ConfigError(f"inter.broker.listener.name must be a listener name defined in advertised.listeners. "
                              f"The valid options based on currently configured listeners are "
                              f"{','.join(e.listener_name for e in self.advertised_listeners)}")
        self.inter_broker_protocol = self.listener_protocols[self.inter_broker_listener_name]
        self.kafka_protocol_listeners: frozenset[str] = frozenset(
            n.strip().upper() for n in (values["kafka.protocol.listener.names"] or "").split(",") if n.strip())
        unknown = self.kafka_protocol_listeners - set(self.listener_protocols)
        if unknown:
            raise ConfigError(f"Invalid value {values['kafka.protocol.listener.names']} for configuration "
                              f"kafka.protocol.listener.names: {', '.join(sorted(unknown))} not in listeners")
        if self.inter_broker_listener_name in self.kafka_protocol_listeners:
            raise ConfigError("kafka.protocol.listener.names: the inter-broker listener "
                              f"{self.inter_broker_listener_name} must speak gRPC")
        for name in self.kafka_protocol_listeners:
            if self.listener_protocols[name] is not SecurityProtocol.PLAINTEXT:
                raise ConfigError(f"kafka.protocol.listener.names: listener {name} uses "
                                  f"{self.listener_protocols[name]}; the Kafka protocol is served on PLAINTEXT only")
        self.ssl_client_auth: str = values["ssl.client.auth"]
        self.authorizer_enabled: bool = bool(values["authorizer.class.name"])
        self.super_users: str | None = values["super.users"]
        self.allow_everyone_if_no_acl_found: bool = values["allow.everyone.if.no.acl.found"]
        ssl_props = {name: str(value) for name, value in values.items() if name.startswith("ssl.") and value}
        try:
            self.ssl_stores: SslStores = load_ssl_stores(ssl_props)
        except SecurityConfigError as e:
            raise ConfigError(str(e)) from None
        if SecurityProtocol.SSL in self.listener_protocols.values():
            if self.ssl_stores.key is None:
                raise ConfigError("An SSL listener needs a keystore: set ssl.keystore.location "
                                  "(or ssl.keystore.key and ssl.keystore.certificate.chain)")
            if self.ssl_client_auth == "required" and self.ssl_stores.trusted is None:
                raise ConfigError("ssl.client.auth=required needs a truststore: set ssl.truststore.location")

    @classmethod
    def load(
        cls,
        properties_file: str | None = None,
        overrides: Iterable[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> tuple[KafkaConfig, list[str]]:
        """Merge file, environment and overrides. Returns the config and warnings to log."""
        props: dict[str, str] = {}
        origins: dict[str, str] = {}
        warnings: list[str] = []
        if properties_file is not None:
            try:
                parsed = read_properties(properties_file)
            except PropertiesError as e:
                raise ConfigError(str(e)) from None
            for name, value in parsed.items():
                props[name] = value
                origins[name] = f"in {properties_file}"
        environ = os.environ if environ is None else environ
        for var, value in sorted(environ.items()):
            if not var.startswith(ENV_PREFIX):
                continue
            name = _BY_ENV_NAME.get(var)
            if name is None:
                warnings.append(f"Ignoring environment variable {var}: it names no broker property")
                continue
            props[name] = value
            origins[name] = f"from {var}"
        for item in overrides:
            name, value = parse_override(item)
            props[name] = value
            origins[name] = "from --override"
        return cls(props, origins), warnings
