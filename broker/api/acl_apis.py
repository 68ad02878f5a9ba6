"""CreateAcls, DescribeAcls and DeleteAcls: the ACL authorizer's store over the request layer,
as Kafka's KafkaApis serves them (Alter on the cluster to change ACLs, Describe to list them;
SECURITY_DISABLED without an authorizer). Any broker answers: the write goes to ZooKeeper and
every broker's cache follows its change notification."""

from __future__ import annotations

import logging

from broker.api import messages as m
from broker.api.authorization import AclAdmin, Authorizer, cluster_allowed
from broker.api.context import RequestContext
from broker.api.kafka_apis import Handler
from broker.authorizer import acl
from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)

NO_AUTHORIZER = "No Authorizer is configured on the broker"


def binding_from_codes(codes: m.AclBindingCodes) -> tuple[acl.ResourcePattern, acl.AclEntry]:
    """A creation: every field named, no ANY."""
    resource_type = acl.member_of(acl.RESOURCE_TYPE_CODES, codes.resource_type, "resource type")
    pattern_type = acl.member_of(acl.PATTERN_TYPE_CODES, codes.pattern_type, "pattern type")
    operation = acl.member_of(acl.OPERATION_CODES, codes.operation, "operation")
    permission = acl.member_of(acl.PERMISSION_CODES, codes.permission_type, "permission type")
    if codes.resource_name is None or codes.principal is None or codes.host is None:
        raise acl.AclError("an ACL to create names its resource, principal and host")
    pattern = acl.ResourcePattern(resource_type, codes.resource_name, pattern_type)
    entry = acl.AclEntry(codes.principal, permission, operation, codes.host)
    acl.check_acl(pattern, entry)
    return pattern, entry


def filter_from_codes(codes: m.AclBindingCodes) -> acl.AclBindingFilter:
    match = codes.pattern_type == acl.MATCH_CODE
    return acl.AclBindingFilter(
        resource_type=acl.filter_member(acl.RESOURCE_TYPE_CODES, codes.resource_type, "resource type"),
        name=codes.resource_name,
        pattern_type=None if match else acl.filter_member(acl.PATTERN_TYPE_CODES, codes.pattern_type, "pattern type"),
        match=match,
        principal=codes.principal,
        host=codes.host,
        operation=acl.filter_member(acl.OPERATION_CODES, codes.operation, "operation"),
        permission=acl.filter_member(acl.PERMISSION_CODES, codes.permission_type, "permission type"),
    )


def codes_of(pattern: acl.ResourcePattern, entry: acl.AclEntry) -> m.AclBindingCodes:
    return m.AclBindingCodes(
        acl.RESOURCE_TYPE_CODES[pattern.resource_type], pattern.name, acl.PATTERN_TYPE_CODES[pattern.pattern_type],
        entry.principal, entry.host, acl.OPERATION_CODES[entry.operation], acl.PERMISSION_CODES[entry.permission],
    )


def _bindings(found: dict[acl.ResourcePattern, frozenset[acl.AclEntry]]) -> tuple[m.AclBindingCodes, ...]:
    return tuple(codes_of(p, e) for p in sorted(found, key=str)
                 for e in sorted(found[p], key=lambda e: (e.principal, e.operation.value, e.permission.value, e.host)))


class AclApis:
    def __init__(self, authorizer: Authorizer, store: AclAdmin | None, prefix: str = "") -> None:
        self._authorizer = authorizer
        self._store = store  # None: no authorizer.class.name
        self._prefix = prefix

    def handlers(self) -> dict[type, Handler]:
        return {
            m.CreateAclsRequest: self.handle_create_acls,
            m.DescribeAclsRequest: self.handle_describe_acls,
            m.DeleteAclsRequest: self.handle_delete_acls,
        }

    def _refusal(self, context: RequestContext, operation: acl.Operation, request: str) -> tuple[Errors, str] | None:
        if self._store is None:
            return Errors.SECURITY_DISABLED, NO_AUTHORIZER
        if not cluster_allowed(self._authorizer, context, operation, request):
            return Errors.CLUSTER_AUTHORIZATION_FAILED, f"{context.principal} may not {operation.value} the cluster"
        return None

    def handle_describe_acls(self, context: RequestContext, request: m.DescribeAclsRequest) -> m.DescribeAclsResponse:
        refused = self._refusal(context, acl.Operation.DESCRIBE, "DESCRIBE_ACLS")
        if refused:
            return m.DescribeAclsResponse(*refused)
        assert self._store is not None
        try:
            wanted = filter_from_codes(request.filter)
        except acl.AclError as e:
            return m.DescribeAclsResponse(Errors.INVALID_REQUEST, str(e))
        return m.DescribeAclsResponse(Errors.NONE, acls=_bindings(acl.filter_acls(self._store.acls(), wanted)))

    def handle_create_acls(self, context: RequestContext, request: m.CreateAclsRequest) -> m.CreateAclsResponse:
        refused = self._refusal(context, acl.Operation.ALTER, "CREATE_ACLS")
        if refused:
            return m.CreateAclsResponse(tuple(m.AclResult(*refused) for _ in request.creations))
        assert self._store is not None
        results = []
        for creation in request.creations:
            try:
                pattern, entry = binding_from_codes(creation)
                self._store.add_acls(pattern, frozenset({entry}))
            except acl.AclError as e:
                results.append(m.AclResult(Errors.INVALID_REQUEST, str(e)))
                continue
            except Exception as e:  # ZooKeeper: the one ACL fails, the others go on
                log.warning("%s Failed to create ACL %s: %s", self._prefix, creation, e or type(e).__name__)
                results.append(m.AclResult(Errors.UNKNOWN_SERVER_ERROR, f"cannot write the ACL: {e}"))
                continue
            log.info("%s Added ACL %s on %s for %s", self._prefix, entry, pattern, context.principal)
            results.append(m.AclResult(Errors.NONE))
        return m.CreateAclsResponse(tuple(results))

    def handle_delete_acls(self, context: RequestContext, request: m.DeleteAclsRequest) -> m.DeleteAclsResponse:
        refused = self._refusal(context, acl.Operation.ALTER, "DELETE_ACLS")
        if refused:
            return m.DeleteAclsResponse(tuple(m.DeleteAclsFilterResult(*refused) for _ in request.filters))
        assert self._store is not None
        results = []
        for codes in request.filters:
            try:
                wanted = filter_from_codes(codes)
            except acl.AclError as e:
                results.append(m.DeleteAclsFilterResult(Errors.INVALID_REQUEST, str(e)))
                continue
            found = acl.filter_acls(self._store.acls(), wanted)
            try:
                for pattern, entries in found.items():
                    self._store.remove_acls(pattern, entries)
            except Exception as e:
                log.warning("%s Failed to delete ACLs matching %s: %s", self._prefix, wanted, e or type(e).__name__)
                results.append(m.DeleteAclsFilterResult(Errors.UNKNOWN_SERVER_ERROR, f"cannot delete the ACLs: {e}"))
                continue
            if found:
                log.info("%s Removed ACLs %s for %s", self._prefix, wanted, context.principal)
            results.append(m.DeleteAclsFilterResult(Errors.NONE, deleted=_bindings(found)))
        return m.DeleteAclsResponse(tuple(results))
