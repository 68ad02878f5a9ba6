"""Who may change the cluster's znodes: Kafka's zookeeper.set.acl, over digest authentication.

Kafka authenticates to ZooKeeper with SASL from a JAAS file's `Client` section (or with a TLS
client certificate) and, with zookeeper.set.acl=true, creates every znode it writes with its
own principal's ACL. minikafka authenticates with ZooKeeper's built-in digest scheme instead
(`zookeeper.auth.digest=user:password`, sent as kazoo's auth_data): no JAAS file and no Kerberos
or SASL set-up on the ensemble, and the same effect, since every broker uses the one identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from kazoo.security import ACL, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Permissions

# ZkData.sensitiveRootPaths: credentials live under these, so they are not even world-readable.
SENSITIVE_ROOT_PATHS = ("/config/users", "/config/brokers", "/delegation_token/tokens")


def is_sensitive_path(path: str) -> bool:
    return any(path == root or path.startswith(root + "/") for root in SENSITIVE_ROOT_PATHS)


def opens_children(entry: ACL) -> bool:
    """Whether an ACL entry lets an unauthenticated client create or delete a znode's children."""
    return entry.id.scheme == "world" and bool(entry.perms & (Permissions.CREATE | Permissions.DELETE))


class ZkSecurityError(ValueError):
    """zookeeper.set.acl or zookeeper.auth.digest cannot be used as configured."""


@dataclass(frozen=True)
class ZkSecurity:
    set_acl: bool = False
    digest: str | None = None  # "user:password"

    def __post_init__(self) -> None:
        if self.digest is not None:
            user, colon, password = self.digest.partition(":")
            if not user or not colon or not password:
                raise ZkSecurityError("zookeeper.auth.digest must be user:password")
        if self.set_acl and self.digest is None:
            # Kafka refuses to start the same way when set.acl has no login to create under.
            raise ZkSecurityError("zookeeper.set.acl is true, but no ZooKeeper credentials are "
                                  "configured (zookeeper.auth.digest)")

    @property
    def auth_data(self) -> list[tuple[str, str]]:
        return [("digest", self.digest)] if self.digest else []

    def acls(self, path: str) -> list[ACL]:
        """ZkData.defaultAcls: the creator (any session with the brokers' credentials) may do
        everything; everyone may read, except below the sensitive paths."""
        if not self.set_acl:
            return list(OPEN_ACL_UNSAFE)
        return list(CREATOR_ALL_ACL) + ([] if is_sensitive_path(path) else list(READ_ACL_UNSAFE))

    @property
    def default_acl(self) -> list[ACL]:
        return self.acls("/")
