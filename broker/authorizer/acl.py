"""ACLs and the authorization decision, as Kafka's AclAuthorizer makes it, over plain data.

A resource's ACLs are those on its literal name, on the wildcard `*` of its type and on every
prefixed pattern its name starts with. A super user may do anything. With no ACL at all on the
resource, `allow.everyone.if.no.acl.found` decides. Otherwise a matching Deny wins; else an
Allow must match: the operation itself or All, where Describe is also granted by Read, Write,
Delete and Alter, and DescribeConfigs by AlterConfigs (a Deny implies nothing).

The znodes are Kafka's: `/kafka-acl/<Type>/<name>` (literal) and
`/kafka-acl-extended/prefixed/<Type>/<name>` hold `{"version":1,"acls":[...]}`; a change is a
sequential `/kafka-acl-changes/acl_changes_N` holding `TOPIC:name`, or under
`/kafka-acl-extended-changes` a JSON event naming a prefixed pattern."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Self, TypeVar

CLUSTER_NAME = "kafka-cluster"  # Resource.CLUSTER_NAME: the one cluster resource
WILDCARD_RESOURCE = "*"
WILDCARD_PRINCIPAL = "User:*"
WILDCARD_HOST = "*"

LITERAL_ACL_PATH = "/kafka-acl"
PREFIXED_ACL_PATH = "/kafka-acl-extended/prefixed"
LITERAL_CHANGES_PATH = "/kafka-acl-changes"
EXTENDED_CHANGES_PATH = "/kafka-acl-extended-changes"
CHANGE_PREFIX = "acl_changes_"


class AclError(ValueError):
    """An ACL or an ACL znode Kafka would not accept; the message is one line."""


class _Named(Enum):
    """An enum written in Kafka's PascalCase and read leniently, as Kafka reads it."""

    @classmethod
    def parse(cls, text: str) -> Self:
        wanted = text.strip().replace("_", "").upper()
        for member in cls:
            if member.value.upper() == wanted:
                return member
        raise AclError(f"'{text}' is not a {cls.__name__} (one of {', '.join(m.value for m in cls)})")


_N = TypeVar("_N", bound=_Named)


class ResourceType(_Named):
    TOPIC = "Topic"
    GROUP = "Group"
    CLUSTER = "Cluster"
    TRANSACTIONAL_ID = "TransactionalId"


class PatternType(_Named):
    LITERAL = "Literal"
    PREFIXED = "Prefixed"


class Operation(_Named):
    ALL = "All"
    READ = "Read"
    WRITE = "Write"
    CREATE = "Create"
    DELETE = "Delete"
    ALTER = "Alter"
    DESCRIBE = "Describe"
    CLUSTER_ACTION = "ClusterAction"
    DESCRIBE_CONFIGS = "DescribeConfigs"
    ALTER_CONFIGS = "AlterConfigs"
    IDEMPOTENT_WRITE = "IdempotentWrite"


class Permission(_Named):
    ALLOW = "Allow"
    DENY = "Deny"


# AclEntry.supportedOperations (All is accepted everywhere too).
SUPPORTED_OPERATIONS: dict[ResourceType, frozenset[Operation]] = {
    ResourceType.TOPIC: frozenset({Operation.READ, Operation.WRITE, Operation.CREATE, Operation.DESCRIBE,
                                   Operation.DELETE, Operation.ALTER, Operation.DESCRIBE_CONFIGS,
                                   Operation.ALTER_CONFIGS}),
    ResourceType.GROUP: frozenset({Operation.READ, Operation.DESCRIBE, Operation.DELETE}),
    ResourceType.CLUSTER: frozenset({Operation.CREATE, Operation.CLUSTER_ACTION, Operation.DESCRIBE_CONFIGS,
                                     Operation.ALTER_CONFIGS, Operation.IDEMPOTENT_WRITE, Operation.ALTER,
                                     Operation.DESCRIBE}),
    ResourceType.TRANSACTIONAL_ID: frozenset({Operation.DESCRIBE, Operation.WRITE}),
}

# The allows that grant an operation besides itself and All.
_IMPLIED_BY: dict[Operation, frozenset[Operation]] = {
    Operation.DESCRIBE: frozenset({Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.ALTER_CONFIGS}),
}


@dataclass(frozen=True)
class ResourcePattern:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType = PatternType.LITERAL

    def __str__(self) -> str:
        # As Kafka's audit log writes a resource: Topic:LITERAL:foo.
        return f"{self.resource_type.value}:{self.pattern_type.name}:{self.name}"


@dataclass(frozen=True)
class AclEntry:
    principal: str  # "User:CN=alice,OU=clients,O=minikafka", or "User:*"
    permission: Permission
    operation: Operation
    host: str = WILDCARD_HOST  # an IP address, or "*"

    def matches(self, principal: str, host: str, operation: Operation) -> bool:
        return (self.principal in (principal, WILDCARD_PRINCIPAL) and self.host in (host, WILDCARD_HOST)
                and self.operation in (operation, Operation.ALL))


def check_acl(pattern: ResourcePattern, entry: AclEntry) -> None:
    """What CreateAcls refuses: a principal without a type, a cluster resource not named
    kafka-cluster, an empty or slashed name, an operation the resource type does not have."""
    if ":" not in entry.principal or entry.principal.startswith(":"):
        raise AclError(f"'{entry.principal}' is not a principal of the form Type:name (User:alice)")
    if pattern.resource_type is ResourceType.CLUSTER and pattern.name != CLUSTER_NAME:
        raise AclError(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    if not pattern.name or "/" in pattern.name:
        raise AclError(f"ACL binding contains invalid resource name: '{pattern.name}'")
    supported = SUPPORTED_OPERATIONS[pattern.resource_type]
    if entry.operation is not Operation.ALL and entry.operation not in supported:
        raise AclError(f"ResourceType {pattern.resource_type.value} only supports operations "
                       f"{','.join(sorted(o.value for o in supported))}")


def matching_acls(acls: Mapping[ResourcePattern, frozenset[AclEntry]], resource_type: ResourceType,
                  name: str) -> list[AclEntry]:
    """Every ACL on the literal name, the type's wildcard and each prefix the name starts with."""
    found = [*acls.get(ResourcePattern(resource_type, name), ()),
             *acls.get(ResourcePattern(resource_type, WILDCARD_RESOURCE), ())]
    for pattern, entries in acls.items():
        if (pattern.pattern_type is PatternType.PREFIXED and pattern.resource_type is resource_type
                and name.startswith(pattern.name)):
            found.extend(entries)
    return found


def authorize(principal: str, host: str, operation: Operation, matching: Iterable[AclEntry],
              super_users: frozenset[str], allow_everyone_if_no_acl_found: bool) -> bool:
    """AclAuthorizer.authorizeAction over the resource's matching ACLs."""
    if principal in super_users:
        return True
    entries = list(matching)
    if not entries:
        return allow_everyone_if_no_acl_found
    if any(e.permission is Permission.DENY and e.matches(principal, host, operation) for e in entries):
        return False
    granting = {operation} | _IMPLIED_BY.get(operation, frozenset())
    return any(e.permission is Permission.ALLOW and any(e.matches(principal, host, op) for op in granting)
               for e in entries)


def authorize_by_resource_type(principal: str, host: str, operation: Operation, resource_type: ResourceType,
                               acls: Mapping[ResourcePattern, frozenset[AclEntry]], super_users: frozenset[str],
                               allow_everyone_if_no_acl_found: bool) -> bool:
    """Authorizer.authorizeByResourceType (KIP-679): may the principal do `operation` on *some*
    resource of the type, existing or not. As Kafka: first the decision for a name no ACL names
    (super users, the wildcard and empty-prefix ACLs, allow.everyone.if.no.acl.found); else a
    wildcard Deny refuses, and an Allow on a literal name or a prefix grants, unless a Deny on
    the same name or on a prefix of it covers it."""
    if authorize(principal, host, operation, matching_acls(acls, resource_type, "\0no-such-resource"),
                 super_users, allow_everyone_if_no_acl_found):
        return True
    allowed: dict[PatternType, set[str]] = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
    denied: dict[PatternType, set[str]] = {PatternType.LITERAL: set(), PatternType.PREFIXED: set()}
    for pattern, entries in acls.items():
        if pattern.resource_type is not resource_type:
            continue
        for entry in entries:
            if entry.matches(principal, host, operation):
                (denied if entry.permission is Permission.DENY else allowed)[pattern.pattern_type].add(pattern.name)
    if WILDCARD_RESOURCE in denied[PatternType.LITERAL] or "" in denied[PatternType.PREFIXED]:
        return False

    def covered(name: str) -> bool:
        return any(name.startswith(prefix) for prefix in denied[PatternType.PREFIXED])

    return (any(not covered(prefix) for prefix in allowed[PatternType.PREFIXED])
            or any(name not in denied[PatternType.LITERAL] and not covered(name)
                   for name in allowed[PatternType.LITERAL]))


# -- the admin APIs' filters (DescribeAcls, DeleteAcls) ----------------------------------------


@dataclass(frozen=True)
class AclBindingFilter:
    """Kafka's AclBindingFilter; None is ANY. `match` is the MATCH pattern type: every pattern
    that applies to the resource `name` (itself, the type's wildcard, each prefix it starts with)."""

    resource_type: ResourceType | None = None
    name: str | None = None
    pattern_type: PatternType | None = None
    match: bool = False
    principal: str | None = None
    host: str | None = None
    operation: Operation | None = None
    permission: Permission | None = None

    def matches_pattern(self, pattern: ResourcePattern) -> bool:
        """ResourcePatternFilter.matches."""
        if self.resource_type is not None and self.resource_type is not pattern.resource_type:
            return False
        if not self.match and self.pattern_type is not None and self.pattern_type is not pattern.pattern_type:
            return False
        if self.name is None:
            return True
        if not self.match:
            return self.name == pattern.name
        if pattern.pattern_type is PatternType.LITERAL:
            return pattern.name in (self.name, WILDCARD_RESOURCE)
        return self.name.startswith(pattern.name)

    def matches_entry(self, entry: AclEntry) -> bool:
        """AccessControlEntryFilter.matches."""
        return ((self.principal is None or self.principal == entry.principal)
                and (self.host is None or self.host == entry.host)
                and (self.operation is None or self.operation is entry.operation)
                and (self.permission is None or self.permission is entry.permission))


def filter_acls(acls: Mapping[ResourcePattern, frozenset[AclEntry]],
                wanted: AclBindingFilter) -> dict[ResourcePattern, frozenset[AclEntry]]:
    found = {}
    for pattern, entries in acls.items():
        if wanted.matches_pattern(pattern):
            kept = frozenset(e for e in entries if wanted.matches_entry(e))
            if kept:
                found[pattern] = kept
    return found


# Kafka's wire codes (ResourceType, PatternType, AclOperation, AclPermissionType); 1 is ANY
# throughout, 0 UNKNOWN. PatternType's MATCH is 2.
ANY_CODE = 1
MATCH_CODE = 2
RESOURCE_TYPE_CODES = {ResourceType.TOPIC: 2, ResourceType.GROUP: 3, ResourceType.CLUSTER: 4,
                       ResourceType.TRANSACTIONAL_ID: 5}
PATTERN_TYPE_CODES = {PatternType.LITERAL: 3, PatternType.PREFIXED: 4}
OPERATION_CODES = {Operation.ALL: 2, Operation.READ: 3, Operation.WRITE: 4, Operation.CREATE: 5,
                   Operation.DELETE: 6, Operation.ALTER: 7, Operation.DESCRIBE: 8, Operation.CLUSTER_ACTION: 9,
                   Operation.DESCRIBE_CONFIGS: 10, Operation.ALTER_CONFIGS: 11, Operation.IDEMPOTENT_WRITE: 12}
PERMISSION_CODES = {Permission.DENY: 2, Permission.ALLOW: 3}


def member_of(codes: Mapping[_N, int], code: int, what: str) -> _N:
    """The member with Kafka's `code`."""
    for member, member_code in codes.items():
        if member_code == code:
            return member
    raise AclError(f"{code} is not a valid {what} code here")


def filter_member(codes: Mapping[_N, int], code: int, what: str) -> _N | None:
    """A filter's member: None for ANY."""
    return None if code == ANY_CODE else member_of(codes, code, what)


def parse_super_users(value: str | None) -> frozenset[str]:
    """super.users: principals separated by semicolons (User:alice;User:bob)."""
    return frozenset(p.strip() for p in (value or "").split(";") if p.strip())


def audit_message(principal: str, allowed: bool, operation: Operation, host: str, resource: ResourcePattern,
                  request: str) -> str:
    """The line Kafka's kafka.authorizer.logger writes for a decision."""
    return (f"Principal = {principal} is {'Allowed' if allowed else 'Denied'} Operation = {operation.value} "
            f"from host = {host} on resource = {resource} for request = {request} with resourceRefCount = 1")


# -- ZooKeeper ------------------------------------------------------------------------------------


def acl_path(pattern: ResourcePattern) -> str:
    root = LITERAL_ACL_PATH if pattern.pattern_type is PatternType.LITERAL else PREFIXED_ACL_PATH
    return f"{root}/{pattern.resource_type.value}/{pattern.name}"


def encode_acls(entries: Iterable[AclEntry]) -> bytes:
    acls = [{"principal": e.principal, "permissionType": e.permission.value, "operation": e.operation.value,
             "host": e.host} for e in sorted(entries, key=lambda e: (e.principal, e.operation.value,
                                                                      e.permission.value, e.host))]
    return json.dumps({"version": 1, "acls": acls}, separators=(",", ":")).encode()


def decode_acls(path: str, data: bytes | None) -> frozenset[AclEntry]:
    try:
        obj = json.loads(data or b"")
    except (ValueError, UnicodeDecodeError):
        raise AclError(f"{path}: not JSON") from None
    if not isinstance(obj, dict) or obj.get("version") != 1 or not isinstance(obj.get("acls"), list):
        raise AclError(f"{path}: not Kafka's ACL znode (version 1 with a list of acls)")
    entries = set()
    for acl in obj["acls"]:
        try:
            entries.add(AclEntry(str(acl["principal"]), Permission.parse(str(acl["permissionType"])),
                                 Operation.parse(str(acl["operation"])), str(acl["host"])))
        except (KeyError, TypeError, AclError) as e:
            raise AclError(f"{path}: malformed ACL {acl!r}: {e}") from None
    return frozenset(entries)


def encode_change(pattern: ResourcePattern) -> tuple[str, bytes]:
    """(the change path to create a sequential node under, its data)."""
    if pattern.pattern_type is PatternType.LITERAL:
        return LITERAL_CHANGES_PATH, f"{pattern.resource_type.name}:{pattern.name}".encode()
    event = {"version": 1, "resourceType": pattern.resource_type.name, "name": pattern.name,
             "patternType": pattern.pattern_type.name}
    return EXTENDED_CHANGES_PATH, json.dumps(event, separators=(",", ":")).encode()


def decode_change(changes_path: str, data: bytes | None) -> ResourcePattern:
    text = (data or b"").decode("utf-8", "replace")
    try:
        if changes_path == LITERAL_CHANGES_PATH:
            kind, sep, name = text.partition(":")
            if not sep:
                raise AclError("no ':'")
            return ResourcePattern(ResourceType.parse(kind), name)
        event = json.loads(text)
        return ResourcePattern(ResourceType.parse(event["resourceType"]), event["name"],
                               PatternType.parse(event["patternType"]))
    except (AclError, ValueError, KeyError, TypeError) as e:
        raise AclError(f"{changes_path}: malformed ACL change {text!r}: {e}") from None
