"""`minikafka acls`: add, remove and list ACLs as Kafka's kafka-acls.sh does, through the
brokers (`--bootstrap-server`: CreateAcls, DescribeAcls, DeleteAcls) or straight in ZooKeeper
(`--authorizer-properties zookeeper.connect=...`, through the same authorizer the brokers run),
writing Kafka's ACL znodes and change notifications; every broker's authorizer follows the
change within seconds."""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace

from kazoo.exceptions import NoAuthError

from broker.authorizer.acl import (
    CLUSTER_NAME,
    WILDCARD_HOST,
    AclBindingFilter,
    AclEntry,
    AclError,
    Operation,
    PatternType,
    Permission,
    ResourcePattern,
    ResourceType,
)
from broker.authorizer.acl_authorizer import AclAuthorizer
from broker.zk.kafka_zk_client import KafkaZkClient
from broker.zk.zk_security import ZkSecurity, ZkSecurityError
from client.admin import AdminClient, AdminError
from client.cli.common import CliError, Commands, UsageError, client_security

ZK_TIMEOUT_MS = 10000


def _resources(args: argparse.Namespace) -> list[ResourcePattern]:
    try:
        pattern_type = PatternType.parse(args.resource_pattern_type)
    except AclError as e:
        raise UsageError(f"--resource-pattern-type: {e}") from None
    resources = [ResourcePattern(ResourceType.TOPIC, t, pattern_type) for t in args.topic]
    resources += [ResourcePattern(ResourceType.GROUP, g, pattern_type) for g in args.group]
    if args.cluster:
        resources.append(ResourcePattern(ResourceType.CLUSTER, CLUSTER_NAME))
    return resources


def _operations(args: argparse.Namespace) -> list[Operation]:
    try:
        return [Operation.parse(o) for o in args.operation] or [Operation.ALL]
    except AclError as e:
        raise UsageError(f"--operation: {e}") from None


def _entries(args: argparse.Namespace, operations: list[Operation]) -> frozenset[AclEntry]:
    entries = set()
    for principals, hosts, permission in ((args.allow_principal, args.allow_host, Permission.ALLOW),
                                          (args.deny_principal, args.deny_host, Permission.DENY)):
        for p, op, host in itertools.product(principals, operations, hosts or [WILDCARD_HOST]):
            entries.add(AclEntry(p, permission, op, host))
    return frozenset(entries)


def _acls_by_resource(args: argparse.Namespace) -> dict[ResourcePattern, frozenset[AclEntry]]:
    """What to add or remove on each resource: every principal with every operation and host given, or
    --producer's and --consumer's sets as kafka-acls makes them."""
    resources = _resources(args)
    if not resources:
        raise UsageError("give --topic, --group or --cluster")
    if args.producer or args.consumer:
        if not args.topic or (args.consumer and not args.group):
            raise UsageError("--producer needs --topic; --consumer needs --topic and --group")
        if args.operation or args.deny_principal:
            raise UsageError("--producer and --consumer take no --operation and no --deny-principal")
        by_type = {ResourceType.TOPIC: [Operation.WRITE, Operation.DESCRIBE, Operation.CREATE] if args.producer else [],
                   ResourceType.GROUP: []}
        if args.consumer:
            by_type[ResourceType.TOPIC] = [*by_type[ResourceType.TOPIC], Operation.READ, Operation.DESCRIBE]
            by_type[ResourceType.GROUP] = [Operation.READ]
        return {r: _entries(args, list(dict.fromkeys(by_type.get(r.resource_type, [])))) for r in resources
                if by_type.get(r.resource_type)}
    if not (args.allow_principal or args.deny_principal) and not args.remove:
        raise UsageError("give --allow-principal or --deny-principal")
    return {r: _entries(args, _operations(args)) for r in resources}


def _describe(pattern: ResourcePattern) -> str:
    return (f"ResourcePattern(resourceType={pattern.resource_type.name}, name={pattern.name}, "
            f"patternType={pattern.pattern_type.name})")


def _print(title: str, pattern: ResourcePattern, entries: frozenset[AclEntry]) -> None:
    ordered = sorted(entries, key=lambda e: (e.principal, e.operation.name, e.permission.name, e.host))
    lines = [f"(principal={e.principal}, host={e.host}, operation={e.operation.name}, "
             f"permissionType={e.permission.name})" for e in ordered]
    print(f"{title} `{_describe(pattern)}`: \n \t" + "\n\t".join(lines) + " \n")


AUTHORIZER_PROPERTIES = ("zookeeper.connect", "zookeeper.set.acl", "zookeeper.auth.digest")


def _zookeeper(args: argparse.Namespace) -> tuple[str, ZkSecurity]:
    """zookeeper.connect and the brokers' ZooKeeper login, from --zookeeper and
    --authorizer-properties (key=value, as kafka-acls takes them)."""
    props: dict[str, str] = {}
    for item in args.authorizer_properties:
        key, eq, value = item.partition("=")
        if not eq or key not in AUTHORIZER_PROPERTIES:
            raise UsageError(f"--authorizer-properties takes {', '.join(k + '=...' for k in AUTHORIZER_PROPERTIES)}; "
                             f"not '{item}'")
        props[key] = value
    connect = args.zookeeper or props.get("zookeeper.connect")
    if not connect:
        raise UsageError("give --zookeeper HOST:PORT or --authorizer-properties zookeeper.connect=HOST:PORT")
    set_acl = props.get("zookeeper.set.acl", "false").strip().lower()
    if set_acl not in ("true", "false"):
        raise UsageError(f"zookeeper.set.acl must be true or false, not '{set_acl}'")
    try:
        return connect, ZkSecurity(set_acl == "true", props.get("zookeeper.auth.digest"))
    except ZkSecurityError as e:
        raise UsageError(str(e)) from None


class _ZooKeeperAcls:
    """ACLs written in ZooKeeper through the brokers' own authorizer (kafka-acls
    --authorizer-properties)."""

    def __init__(self, zk: KafkaZkClient) -> None:
        self._zk = zk
        self._authorizer = AclAuthorizer(zk)

    def all(self) -> dict[ResourcePattern, frozenset[AclEntry]]:
        acls, problems = self._zk.get_all_acls()
        for problem in problems:
            print(f"minikafka: warning: {problem}")
        return acls

    def of(self, pattern: ResourcePattern) -> frozenset[AclEntry]:
        return self._zk.get_resource_acls(pattern)[0]

    def add(self, pattern: ResourcePattern, entries: frozenset[AclEntry]) -> None:
        self._zk.create_acl_paths()
        self._authorizer.add_acls(pattern, entries)

    def remove(self, pattern: ResourcePattern, entries: frozenset[AclEntry] | None) -> None:
        self._zk.create_acl_paths()
        self._authorizer.remove_acls(pattern, entries)


class _BrokerAcls:
    """ACLs through any broker's CreateAcls, DescribeAcls and DeleteAcls (kafka-acls
    --bootstrap-server)."""

    def __init__(self, admin: AdminClient) -> None:
        self._admin = admin

    def all(self) -> dict[ResourcePattern, frozenset[AclEntry]]:
        return self._admin.describe_acls(AclBindingFilter())

    def of(self, pattern: ResourcePattern) -> frozenset[AclEntry]:
        return self._admin.describe_acls(_exactly(pattern)).get(pattern, frozenset())

    def add(self, pattern: ResourcePattern, entries: frozenset[AclEntry]) -> None:
        self._admin.create_acls(pattern, entries)

    def remove(self, pattern: ResourcePattern, entries: frozenset[AclEntry] | None) -> None:
        self._admin.delete_acls([_exactly(pattern)] if entries is None else [
            replace(_exactly(pattern), principal=e.principal, host=e.host, operation=e.operation,
                    permission=e.permission) for e in entries])


def _exactly(pattern: ResourcePattern) -> AclBindingFilter:
    return AclBindingFilter(pattern.resource_type, pattern.name, pattern.pattern_type)


def cmd_acls(args: argparse.Namespace) -> int:
    actions = [a for a in ("add", "remove", "list") if getattr(args, a)]
    if len(actions) != 1:
        raise UsageError("Command must include exactly one action: --list, --add, --remove.")
    for principal in args.allow_principal + args.deny_principal:
        if ":" not in principal:
            raise UsageError(f"'{principal}' is not a principal of the form Type:name (User:alice)")
    through_zookeeper = bool(args.zookeeper or args.authorizer_properties)
    if through_zookeeper == bool(args.bootstrap_server):
        raise UsageError("give either --bootstrap-server or --zookeeper / --authorizer-properties")
    if args.bootstrap_server:
        return _run(args, _BrokerAcls(AdminClient(args.bootstrap_server, security=client_security(args))))
    connect, security = _zookeeper(args)
    zk = KafkaZkClient(connect, ZK_TIMEOUT_MS, ZK_TIMEOUT_MS, security=security)
    try:
        zk.start()
    except Exception as e:
        raise CliError(f"cannot reach ZooKeeper at {connect}: {e}") from None
    try:
        return _run(args, _ZooKeeperAcls(zk))
    except NoAuthError:
        raise CliError("ZooKeeper refused to write /kafka-acl: it belongs to the brokers' login; give theirs "
                       "with --authorizer-properties zookeeper.auth.digest=USER:PASSWORD") from None
    finally:
        zk.close()


def _run(args: argparse.Namespace, store: _ZooKeeperAcls | _BrokerAcls) -> int:
    try:
        if args.list:
            wanted = set(_resources(args))
            for pattern, entries in sorted(store.all().items(), key=lambda kv: str(kv[0])):
                if not wanted or pattern in wanted:
                    _print("Current ACLs for resource", pattern, entries)
            return 0
        for pattern, entries in _acls_by_resource(args).items():
            if args.add:
                _print("Adding ACLs for resource", pattern, entries)
                store.add(pattern, entries)
            elif entries:
                _print("Removing ACLs for resource", pattern, entries)
                store.remove(pattern, entries)
            else:
                print(f"Removing all ACLs for resource `{_describe(pattern)}`")
                store.remove(pattern, None)
            _print("Current ACLs for resource", pattern, store.of(pattern))
    except (AclError, AdminError) as e:
        raise CliError(str(e)) from None
    return 0


def add_commands(commands: Commands) -> None:
    acls = commands.add_parser("acls", help="add, remove and list ACLs (as kafka-acls)",
                               description="ACLs of the brokers' ACL authorizer (authorizer.class.name), "
                                           "written in ZooKeeper as Kafka's authorizer stores them.")
    acls.add_argument("--bootstrap-server", metavar="HOST:PORT[,HOST:PORT]",
                      help="change and list ACLs through the brokers (CreateAcls, DescribeAcls, DeleteAcls)")
    acls.add_argument("--command-config", metavar="FILE",
                      help="with --bootstrap-server: client properties (security.protocol=SSL, ssl.*)")
    acls.add_argument("--zookeeper", metavar="HOST:PORT[/CHROOT]",
                      help="or write them in ZooKeeper: the cluster's zookeeper.connect")
    acls.add_argument("--authorizer-properties", nargs="+", default=[], metavar="KEY=VALUE",
                      help="zookeeper.connect, and as the brokers have them zookeeper.set.acl "
                           "and zookeeper.auth.digest")
    for action in ("add", "remove", "list"):
        acls.add_argument(f"--{action}", action="store_true")
    acls.add_argument("--allow-principal", action="append", default=[], metavar="User:NAME")
    acls.add_argument("--deny-principal", action="append", default=[], metavar="User:NAME")
    acls.add_argument("--allow-host", action="append", default=[], metavar="IP", help="default: * (any)")
    acls.add_argument("--deny-host", action="append", default=[], metavar="IP", help="default: * (any)")
    acls.add_argument("--operation", action="append", default=[],
                      help="Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, "
                           "AlterConfigs, IdempotentWrite or All (the default)")
    acls.add_argument("--topic", action="append", default=[])
    acls.add_argument("--group", action="append", default=[])
    acls.add_argument("--cluster", action="store_true")
    acls.add_argument("--resource-pattern-type", default="literal", help="literal or prefixed")
    acls.add_argument("--producer", action="store_true", help="Write, Describe and Create on the topics")
    acls.add_argument("--consumer", action="store_true", help="Read and Describe on the topics, Read on the group")
    acls.add_argument("--force", action="store_true", help="accepted for kafka-acls' sake: nothing is asked")
    acls.set_defaults(func=cmd_acls)
