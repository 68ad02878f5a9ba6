"""What the request layer asks of the authorizer (broker/authorizer): may this request's caller
do an operation on a resource. Without `authorizer.class.name` every caller may do everything,
as in Kafka without an authorizer."""

from __future__ import annotations

from typing import Protocol

from broker.api.context import RequestContext
from broker.authorizer.acl import CLUSTER_NAME, AclEntry, Operation, ResourcePattern, ResourceType


class Authorizer(Protocol):
    def authorize(self, principal: str, host: str, operation: Operation, resource_type: ResourceType,
                  name: str, request: str, log_if_denied: bool = True) -> bool: ...

    def authorize_by_resource_type(self, principal: str, host: str, operation: Operation,
                                   resource_type: ResourceType) -> bool: ...


class AllowEverything:
    def authorize(self, principal: str, host: str, operation: Operation, resource_type: ResourceType,
                  name: str, request: str, log_if_denied: bool = True) -> bool:
        return True

    def authorize_by_resource_type(self, principal: str, host: str, operation: Operation,
                                   resource_type: ResourceType) -> bool:
        return True


ALLOW_EVERYTHING = AllowEverything()


def allowed(authorizer: Authorizer, context: RequestContext, operation: Operation, resource_type: ResourceType,
            name: str, request: str, log_if_denied: bool = True) -> bool:
    """Kafka's AuthHelper.authorize for one literal resource; the host is the caller's address."""
    return authorizer.authorize(context.principal, context.client_host.lstrip("/"), operation, resource_type,
                                name, request, log_if_denied)


def cluster_allowed(authorizer: Authorizer, context: RequestContext, operation: Operation, request: str,
                    log_if_denied: bool = True) -> bool:
    return allowed(authorizer, context, operation, ResourceType.CLUSTER, CLUSTER_NAME, request, log_if_denied)


class AclAdmin(Protocol):
    """The ACL authorizer's store, for CreateAcls, DescribeAcls and DeleteAcls."""

    def acls(self) -> dict[ResourcePattern, frozenset[AclEntry]]: ...

    def add_acls(self, pattern: ResourcePattern, entries: frozenset[AclEntry]) -> None: ...

    def remove_acls(self, pattern: ResourcePattern, entries: frozenset[AclEntry] | None = None) -> None: ...
