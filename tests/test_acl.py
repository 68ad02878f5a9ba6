"""The authorization decision and the ACL znodes, as Kafka's AclAuthorizer has them."""

from __future__ import annotations

import pytest

from broker.authorizer.acl import (
    AclEntry,
    AclError,
    Operation,
    PatternType,
    Permission,
    ResourcePattern,
    ResourceType,
    acl_path,
    audit_message,
    authorize,
    authorize_by_resource_type,
    check_acl,
    decode_acls,
    decode_change,
    encode_acls,
    encode_change,
    matching_acls,
    parse_super_users,
)

ALICE, BOB = "User:CN=alice,OU=clients,O=minikafka", "User:CN=bob,OU=clients,O=minikafka"
TOPIC = ResourcePattern(ResourceType.TOPIC, "orders")
ALLOW, DENY = Permission.ALLOW, Permission.DENY
R, W, D = Operation.READ, Operation.WRITE, Operation.DESCRIBE


def may(principal: str, operation: Operation, acls: dict[ResourcePattern, frozenset[AclEntry]],
        name: str = "orders", host: str = "127.0.0.1", everyone: bool = False,
        super_users: frozenset[str] = frozenset()) -> bool:
    return authorize(principal, host, operation, matching_acls(acls, ResourceType.TOPIC, name), super_users,
                     everyone)


def test_an_allow_grants_its_operation_and_the_describe_it_implies() -> None:
    acls = {TOPIC: frozenset({AclEntry(ALICE, ALLOW, R)})}
    assert may(ALICE, R, acls) and may(ALICE, D, acls)
    assert not may(ALICE, W, acls) and not may(BOB, R, acls)
    alter = {TOPIC: frozenset({AclEntry(ALICE, ALLOW, Operation.ALTER_CONFIGS)})}
    assert may(ALICE, Operation.DESCRIBE_CONFIGS, alter) and not may(ALICE, D, alter)


def test_a_deny_wins_and_implies_nothing() -> None:
    acls = {TOPIC: frozenset({AclEntry(ALICE, ALLOW, Operation.ALL), AclEntry(ALICE, DENY, W)})}
    assert may(ALICE, R, acls) and not may(ALICE, W, acls)
    deny_read = {TOPIC: frozenset({AclEntry(ALICE, ALLOW, Operation.ALL), AclEntry(ALICE, DENY, R)})}
    assert may(ALICE, D, deny_read)  # a deny on Read does not deny Describe
    everyone_but = {TOPIC: frozenset({AclEntry("User:*", ALLOW, R), AclEntry(BOB, DENY, R, "10.0.0.9")})}
    assert may(BOB, R, everyone_but) and not may(BOB, R, everyone_but, host="10.0.0.9")


def test_wildcard_and_prefixed_patterns_count_for_a_name() -> None:
    acls = {
        ResourcePattern(ResourceType.TOPIC, "*"): frozenset({AclEntry(ALICE, ALLOW, R)}),
        ResourcePattern(ResourceType.TOPIC, "bob-", PatternType.PREFIXED): frozenset({AclEntry(BOB, ALLOW, W)}),
        ResourcePattern(ResourceType.GROUP, "orders"): frozenset({AclEntry(BOB, ALLOW, R)}),
    }
    assert may(ALICE, R, acls, name="anything")
    assert may(BOB, W, acls, name="bob-orders") and not may(BOB, W, acls, name="orders-bob")
    assert not may(BOB, R, acls)  # the group's ACL is not the topic's


def test_no_acl_at_all_is_decided_by_allow_everyone_if_no_acl_found_and_super_users_need_none() -> None:
    assert not may(ALICE, R, {}) and may(ALICE, R, {}, everyone=True)
    # One ACL for someone else is an ACL found.
    assert not may(ALICE, R, {TOPIC: frozenset({AclEntry(BOB, ALLOW, W)})}, everyone=True)
    supers = parse_super_users(f"User:CN=broker-1,OU=brokers,O=minikafka; {ALICE}")
    assert supers == {"User:CN=broker-1,OU=brokers,O=minikafka", ALICE}
    assert may(ALICE, W, {TOPIC: frozenset({AclEntry(ALICE, DENY, W)})}, super_users=supers)
    assert parse_super_users("") == frozenset() and parse_super_users(None) == frozenset()


def test_acl_znodes_are_kafkas_and_read_leniently() -> None:
    entries = frozenset({AclEntry(ALICE, ALLOW, R), AclEntry("User:*", DENY, W, "10.0.0.9")})
    data = encode_acls(entries)
    assert data.startswith(b'{"version":1,"acls":[{"principal":"User:')
    assert decode_acls("/kafka-acl/Topic/orders", data) == entries
    kafka_written = (b'{"version":1,"acls":[{"principal":"User:bob","permissionType":"ALLOW",'
                     b'"operation":"DESCRIBECONFIGS","host":"*"}]}')
    assert decode_acls("p", kafka_written) == {AclEntry("User:bob", ALLOW, Operation.DESCRIBE_CONFIGS)}
    for bad in (b"[]", b'{"version":2,"acls":[]}', b'{"version":1,"acls":[{"principal":"User:x"}]}', b"{"):
        with pytest.raises(AclError):
            decode_acls("/kafka-acl/Topic/orders", bad)
    assert acl_path(TOPIC) == "/kafka-acl/Topic/orders"
    assert acl_path(ResourcePattern(ResourceType.GROUP, "g-", PatternType.PREFIXED)) == \
        "/kafka-acl-extended/prefixed/Group/g-"


def test_change_notifications_name_the_resource_as_kafka_writes_it() -> None:
    assert encode_change(TOPIC) == ("/kafka-acl-changes", b"TOPIC:orders")
    prefixed = ResourcePattern(ResourceType.TOPIC, "o", PatternType.PREFIXED)
    path, data = encode_change(prefixed)
    assert path == "/kafka-acl-extended-changes" and decode_change(path, data) == prefixed
    assert decode_change("/kafka-acl-changes", b"Topic:orders") == TOPIC
    assert decode_change("/kafka-acl-changes", b"CLUSTER:kafka-cluster") == \
        ResourcePattern(ResourceType.CLUSTER, "kafka-cluster")
    with pytest.raises(AclError, match="malformed ACL change"):
        decode_change("/kafka-acl-changes", b"nonsense")


@pytest.mark.parametrize(("pattern", "entry", "message"), [
    (ResourcePattern(ResourceType.CLUSTER, "c"), AclEntry(ALICE, ALLOW, Operation.ALTER), "only valid name"),
    (ResourcePattern(ResourceType.GROUP, "g"), AclEntry(ALICE, ALLOW, W), "Group only supports operations"),
    (ResourcePattern(ResourceType.TOPIC, "a/b"), AclEntry(ALICE, ALLOW, R), "invalid resource name"),
    (TOPIC, AclEntry("alice", ALLOW, R), "not a principal"),
])
def test_acls_kafka_refuses_are_one_line_errors(pattern: ResourcePattern, entry: AclEntry, message: str) -> None:
    with pytest.raises(AclError, match=message):
        check_acl(pattern, entry)
    check_acl(TOPIC, AclEntry(ALICE, ALLOW, Operation.ALL))


def test_the_audit_line_is_kafkas() -> None:
    assert audit_message("User:alice", False, R, "127.0.0.1", ResourcePattern(ResourceType.TOPIC, "foo"), "FETCH") == (
        "Principal = User:alice is Denied Operation = Read from host = 127.0.0.1 on resource = Topic:LITERAL:foo "
        "for request = FETCH with resourceRefCount = 1")
    assert Operation.parse("cluster_action") is Operation.CLUSTER_ACTION
    with pytest.raises(AclError, match="is not a Operation"):
        Operation.parse("Fly")


def _by_type(acls: dict[ResourcePattern, frozenset[AclEntry]], principal: str = ALICE,
             allow_everyone: bool = False) -> bool:
    return authorize_by_resource_type(principal, "10.0.0.1", W, ResourceType.TOPIC, acls, frozenset({"User:admin"}),
                                      allow_everyone)


def _topic(name: str, *entries: AclEntry, prefixed: bool = False) -> dict[ResourcePattern, frozenset[AclEntry]]:
    return {ResourcePattern(ResourceType.TOPIC, name, PatternType.PREFIXED if prefixed else PatternType.LITERAL):
            frozenset(entries)}


def test_write_on_some_topic_counts_topics_not_yet_created_and_honours_denies() -> None:
    allow, deny = AclEntry(ALICE, ALLOW, W), AclEntry(ALICE, DENY, W)
    assert _by_type(_topic("future", allow))  # whether or not it exists
    assert _by_type(_topic("logs-", allow, prefixed=True))
    assert _by_type(_topic("any", AclEntry("User:*", ALLOW, Operation.ALL)))
    assert not _by_type(_topic("future", allow), principal=BOB)
    assert not _by_type(_topic("future", AclEntry(ALICE, ALLOW, R)))  # Read is no Write
    assert not _by_type({**_topic("future", allow), **_topic("fut", deny, prefixed=True)})
    assert not _by_type({**_topic("logs-a", allow, prefixed=True), **_topic("logs-", deny, prefixed=True)})
    assert _by_type({**_topic("logs-", allow, prefixed=True), **_topic("logs-a", deny, prefixed=True)})
    assert not _by_type({**_topic("future", allow), **_topic("*", deny)})
    assert not _by_type({**_topic("future", allow), **_topic("future", deny)})
    assert not _by_type({**_topic("future", allow), **_topic("", deny, prefixed=True)})
    assert _by_type({ResourcePattern(ResourceType.GROUP, "g"): frozenset({allow})}, allow_everyone=True)
    assert not _by_type({ResourcePattern(ResourceType.GROUP, "g"): frozenset({allow})})
    assert _by_type(_topic("*", deny), principal="User:admin")  # a super user
    assert not _by_type(_topic("future", AclEntry(ALICE, ALLOW, W, host="10.9.9.9")))
