"""CreateAcls, DescribeAcls and DeleteAcls in the request layer, and Kafka's ACL binding filters
(ANY, MATCH, LITERAL, PREFIXED), over ACLs in a dict with the authorizer's own decision."""

from __future__ import annotations

import pytest

from broker.api import messages as m
from broker.api.acl_apis import AclApis
from broker.api.authorization import ALLOW_EVERYTHING
from broker.api.context import RequestContext
from broker.authorizer import acl
from broker.authorizer.acl import AclBindingFilter, AclEntry, Operation, PatternType, Permission, ResourcePattern
from broker.authorizer.acl import ResourceType as RT
from minikafka_protocol.errors import Errors

ADMIN = RequestContext(client_host="/127.0.0.1", principal="User:CN=admin,OU=clients,O=minikafka")
BOB = RequestContext(client_host="/127.0.0.1", principal="User:CN=bob,OU=clients,O=minikafka")
ALICE = "User:CN=alice,OU=clients,O=minikafka"
READ_ORDERS = AclEntry(ALICE, Permission.ALLOW, Operation.READ)
ORDERS = ResourcePattern(RT.TOPIC, "orders")
ANY_TOPIC = ResourcePattern(RT.TOPIC, "*")
ORD_PREFIX = ResourcePattern(RT.TOPIC, "ord", PatternType.PREFIXED)
GROUP = ResourcePattern(RT.GROUP, "orders")


class DictStore:
    """The ACL authorizer's store and decision over a dict: admin is the one super user."""

    def __init__(self, acls: dict[ResourcePattern, frozenset[AclEntry]] | None = None) -> None:
        self.table: dict[ResourcePattern, frozenset[AclEntry]] = dict(acls or {})

    def acls(self) -> dict[ResourcePattern, frozenset[AclEntry]]:
        return dict(self.table)

    def add_acls(self, pattern: ResourcePattern, entries: frozenset[AclEntry]) -> None:
        for entry in entries:
            acl.check_acl(pattern, entry)
        self.table[pattern] = self.table.get(pattern, frozenset()) | entries

    def remove_acls(self, pattern: ResourcePattern, entries: frozenset[AclEntry] | None = None) -> None:
        left = frozenset() if entries is None else self.table.get(pattern, frozenset()) - entries
        if left:
            self.table[pattern] = left
        else:
            self.table.pop(pattern, None)

    def authorize(self, principal: str, host: str, operation: Operation, resource_type: RT, name: str,
                  request: str, log_if_denied: bool = True) -> bool:
        return acl.authorize(principal, host, operation, acl.matching_acls(self.table, resource_type, name),
                             frozenset({ADMIN.principal}), False)


    def authorize_by_resource_type(self, principal: str, host: str, operation: Operation, resource_type: RT) -> bool:
        return acl.authorize_by_resource_type(principal, host, operation, resource_type, self.table,
                                              frozenset({ADMIN.principal}), False)


def codes(pattern: ResourcePattern, entry: AclEntry) -> m.AclBindingCodes:
    return m.AclBindingCodes(acl.RESOURCE_TYPE_CODES[pattern.resource_type], pattern.name,
                             acl.PATTERN_TYPE_CODES[pattern.pattern_type], entry.principal, entry.host,
                             acl.OPERATION_CODES[entry.operation], acl.PERMISSION_CODES[entry.permission])


def any_filter(**fields: object) -> m.AclBindingCodes:
    base: dict[str, object] = {"resource_type": 1, "resource_name": None, "pattern_type": 1, "principal": None,
                               "host": None, "operation": 1, "permission_type": 1}
    return m.AclBindingCodes(**{**base, **fields})  # type: ignore[arg-type]


def everything() -> DictStore:
    return DictStore({ORDERS: frozenset({READ_ORDERS}), ANY_TOPIC: frozenset({READ_ORDERS}),
                      ORD_PREFIX: frozenset({READ_ORDERS}), GROUP: frozenset({READ_ORDERS}),
                      ResourcePattern(RT.TOPIC, "other"): frozenset({READ_ORDERS})})


@pytest.mark.parametrize(("wanted", "found"), [
    (AclBindingFilter(), {ORDERS, ANY_TOPIC, ORD_PREFIX, GROUP, ResourcePattern(RT.TOPIC, "other")}),
    (AclBindingFilter(RT.TOPIC, "orders"), {ORDERS}),  # ANY pattern type with a name: that exact name
    (AclBindingFilter(RT.TOPIC, "ord"), {ORD_PREFIX}),
    (AclBindingFilter(None, "orders"), {ORDERS, GROUP}),
    (AclBindingFilter(RT.TOPIC, "orders", match=True), {ORDERS, ANY_TOPIC, ORD_PREFIX}),
    (AclBindingFilter(RT.TOPIC, None, PatternType.PREFIXED), {ORD_PREFIX}),
    (AclBindingFilter(RT.TOPIC, "orders", PatternType.PREFIXED), set()),
    (AclBindingFilter(principal="User:CN=bob,OU=clients,O=minikafka"), set()),
    (AclBindingFilter(RT.GROUP, operation=Operation.READ, permission=Permission.ALLOW, host="*"), {GROUP}),
    (AclBindingFilter(RT.GROUP, operation=Operation.WRITE), set()),
])
def test_binding_filters_match_as_kafkas_resource_pattern_and_entry_filters(
        wanted: AclBindingFilter, found: set[ResourcePattern]) -> None:
    assert set(acl.filter_acls(everything().acls(), wanted)) == found


def test_create_describe_and_delete_acls_through_the_request_layer() -> None:
    store = DictStore()
    apis = AclApis(store, store)
    created = apis.handle_create_acls(ADMIN, m.CreateAclsRequest((codes(ORDERS, READ_ORDERS), codes(
        ORD_PREFIX, AclEntry(ALICE, Permission.DENY, Operation.WRITE, "10.0.0.1")))))
    assert [r.error for r in created.results] == [Errors.NONE, Errors.NONE]
    assert store.table[ORD_PREFIX] == {AclEntry(ALICE, Permission.DENY, Operation.WRITE, "10.0.0.1")}

    described = apis.handle_describe_acls(ADMIN, m.DescribeAclsRequest(any_filter(
        resource_type=2, resource_name="orders", pattern_type=acl.MATCH_CODE)))
    assert described.error is Errors.NONE
    assert [(b.resource_name, b.pattern_type, b.operation, b.permission_type) for b in described.acls] == [
        ("orders", 3, 3, 3), ("ord", 4, 4, 2)]

    deleted = apis.handle_delete_acls(ADMIN, m.DeleteAclsRequest((any_filter(permission_type=2), any_filter(
        resource_type=3))))
    assert [r.error for r in deleted.results] == [Errors.NONE, Errors.NONE]
    assert [b.resource_name for b in deleted.results[0].deleted] == ["ord"] and not deleted.results[1].deleted
    assert store.table == {ORDERS: frozenset({READ_ORDERS})}


def test_acl_requests_need_alter_or_describe_on_the_cluster_and_an_authorizer() -> None:
    store = everything()
    apis = AclApis(store, store)
    assert apis.handle_describe_acls(BOB, m.DescribeAclsRequest(any_filter())).error is \
        Errors.CLUSTER_AUTHORIZATION_FAILED
    created = apis.handle_create_acls(BOB, m.CreateAclsRequest((codes(ORDERS, READ_ORDERS),) * 2))
    assert [r.error for r in created.results] == [Errors.CLUSTER_AUTHORIZATION_FAILED] * 2
    deleted = apis.handle_delete_acls(BOB, m.DeleteAclsRequest((any_filter(),)))
    assert deleted.results[0].error is Errors.CLUSTER_AUTHORIZATION_FAILED and len(store.table) == 5
    # Describe on the cluster is enough to list, not to change.
    store.table[ResourcePattern(RT.CLUSTER, acl.CLUSTER_NAME)] = frozenset(
        {AclEntry(BOB.principal, Permission.ALLOW, Operation.DESCRIBE)})
    assert apis.handle_describe_acls(BOB, m.DescribeAclsRequest(any_filter())).error is Errors.NONE
    assert apis.handle_delete_acls(BOB, m.DeleteAclsRequest((any_filter(),))).results[0].error is \
        Errors.CLUSTER_AUTHORIZATION_FAILED

    unsecured = AclApis(ALLOW_EVERYTHING, None)
    assert unsecured.handle_describe_acls(ADMIN, m.DescribeAclsRequest(any_filter())).error is \
        Errors.SECURITY_DISABLED
    assert unsecured.handle_create_acls(ADMIN, m.CreateAclsRequest((codes(ORDERS, READ_ORDERS),))).results[0] \
        .error is Errors.SECURITY_DISABLED


@pytest.mark.parametrize("bad", [
    {"resource_type": 1}, {"resource_type": 0}, {"resource_type": 7}, {"pattern_type": 1}, {"pattern_type": 2},
    {"operation": 1}, {"operation": 99}, {"permission_type": 1}, {"principal": "alice"}, {"principal": None},
    {"resource_name": ""}, {"resource_name": None}, {"host": None},
    {"resource_type": 4, "resource_name": "not-the-cluster"}, {"resource_type": 3, "operation": 4},
])
def test_a_malformed_acl_or_filter_is_invalid_request_and_the_others_go_on(bad: dict[str, object]) -> None:
    store = DictStore()
    apis = AclApis(store, store)
    good = codes(ORDERS, READ_ORDERS)
    malformed = m.AclBindingCodes(**{**good.__dict__, **bad})  # type: ignore[arg-type]
    created = apis.handle_create_acls(ADMIN, m.CreateAclsRequest((malformed, good)))
    assert [r.error for r in created.results] == [Errors.INVALID_REQUEST, Errors.NONE]
    assert created.results[0].message
    assert store.table == {ORDERS: frozenset({READ_ORDERS})}


@pytest.mark.parametrize("bad", [{"resource_type": 0}, {"pattern_type": 9}, {"operation": -1},
                                 {"permission_type": 4}])
def test_a_filter_with_an_unknown_code_is_invalid_request(bad: dict[str, object]) -> None:
    store = everything()
    apis = AclApis(store, store)
    assert apis.handle_describe_acls(ADMIN, m.DescribeAclsRequest(any_filter(**bad))).error is Errors.INVALID_REQUEST
    result = apis.handle_delete_acls(ADMIN, m.DeleteAclsRequest((any_filter(**bad),))).results[0]
    assert result.error is Errors.INVALID_REQUEST and len(store.table) == 5
