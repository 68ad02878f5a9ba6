"""Kafka's AclAuthorizer over ZooKeeper: every broker keeps all ACLs in a cache, loaded at start
and kept up to date by the change notifications any broker (or `minikafka acls`) writes; the
decision itself is acl.authorize over the cache.

A change notification names a resource; the follower re-reads that resource's znode. As Kafka's
ZkNodeChangeNotificationListener, it starts listening before it loads the cache, so no change
falls between the two, and it deletes notifications older than 15 minutes. kazoo loses its
watches when a session is renewed, so the follower also looks every few seconds."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from broker.authorizer import acl
from broker.zk.kafka_zk_client import KafkaZkClient

log = logging.getLogger(__name__)
audit_log = logging.getLogger("kafka.authorizer.logger")

CHANGE_EXPIRATION_MS = 15 * 60 * 1000  # ZkNodeChangeNotificationListener's changeExpirationMs
RECHECK_S = 5.0  # how often the follower looks for changes without a watch
MAX_UPDATE_RETRIES = 10


class AclAuthorizer:
    def __init__(self, zk: KafkaZkClient, super_users: frozenset[str] = frozenset(),
                 allow_everyone_if_no_acl_found: bool = False, prefix: str = "") -> None:
        self._zk = zk
        self.super_users = super_users
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self._prefix = prefix
        self._lock = threading.Lock()  # the cache and the changes processed: this object's alone
        self._acls: dict[acl.ResourcePattern, frozenset[acl.AclEntry]] = {}
        self._last_change = {acl.LITERAL_CHANGES_PATH: -1, acl.EXTENDED_CHANGES_PATH: -1}
        self._created_ms: dict[str, int] = {}  # each notification read, by path: when it was made
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self._denials_logged: set[tuple[str, acl.ResourcePattern, acl.Operation]] = set()
        self._thread = threading.Thread(target=self._follow, name="acl-change-follower", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._zk.create_acl_paths()
        for root in self._last_change:  # listen first (replaying what is there), then load
            self._process_changes(root)
        acls, problems = self._zk.get_all_acls()
        for problem in problems:
            log.error("%s %s", self._prefix, problem)
        with self._lock:
            self._acls = acls  # read after the changes replayed above: the fresher
        log.info("%s Loaded ACLs of %d resources", self._prefix, len(acls))
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._changed.set()

    # -- decisions -------------------------------------------------------------------------------

    def acls(self) -> dict[acl.ResourcePattern, frozenset[acl.AclEntry]]:
        with self._lock:
            return dict(self._acls)

    def authorize(self, principal: str, host: str, operation: acl.Operation, resource_type: acl.ResourceType,
                  name: str, request: str, log_if_denied: bool = True) -> bool:
        """Whether `principal` from `host` may do `operation` on the literal resource `name`; a
        denial is logged (kafka.authorizer.logger) once per principal, resource and operation."""
        with self._lock:
            matching = acl.matching_acls(self._acls, resource_type, name)
        allowed = acl.authorize(principal, host, operation, matching, self.super_users,
                                self.allow_everyone_if_no_acl_found)
        resource = acl.ResourcePattern(resource_type, name)
        if allowed:
            audit_log.debug(acl.audit_message(principal, True, operation, host, resource, request))
        elif log_if_denied:
            key = (principal, resource, operation)
            with self._lock:
                first = key not in self._denials_logged
                self._denials_logged.add(key)
            if first:
                audit_log.info(acl.audit_message(principal, False, operation, host, resource, request))
        return allowed

    def authorize_by_resource_type(self, principal: str, host: str, operation: acl.Operation,
                                   resource_type: acl.ResourceType) -> bool:
        with self._lock:
            acls = dict(self._acls)
        return acl.authorize_by_resource_type(principal, host, operation, resource_type, acls, self.super_users,
                                              self.allow_everyone_if_no_acl_found)

    # -- writes ----------------------------------------------------------------------------------

    def add_acls(self, pattern: acl.ResourcePattern, entries: frozenset[acl.AclEntry]) -> None:
        for entry in entries:
            acl.check_acl(pattern, entry)
        self._update(pattern, lambda current: current | entries)

    def remove_acls(self, pattern: acl.ResourcePattern, entries: frozenset[acl.AclEntry] | None = None) -> None:
        """Remove `entries` from the resource, or all of its ACLs when None."""
        self._update(pattern, lambda current: frozenset() if entries is None else current - entries)

    def _update(self, pattern: acl.ResourcePattern,
                change: Callable[[frozenset[acl.AclEntry]], frozenset[acl.AclEntry]]) -> None:
        for _ in range(MAX_UPDATE_RETRIES):
            current, version = self._zk.get_resource_acls(pattern)
            wanted = change(current)
            if wanted == current:
                return
            if self._zk.write_resource_acls(pattern, wanted, version):
                log.info("%s Updated ACLs for %s", self._prefix, pattern)
                self._zk.create_acl_change(pattern)
                with self._lock:
                    self._set(pattern, wanted)
                return
            time.sleep(0.1)
        raise acl.AclError(f"ACLs of {pattern} changed {MAX_UPDATE_RETRIES} times while being updated")

    def _set(self, pattern: acl.ResourcePattern, entries: frozenset[acl.AclEntry]) -> None:
        if entries:
            self._acls[pattern] = entries
        else:
            self._acls.pop(pattern, None)
        self._denials_logged = {d for d in self._denials_logged if d[1].resource_type is not pattern.resource_type}

    # -- following changes -----------------------------------------------------------------------

    def _watch(self, _event: object) -> None:
        self._changed.set()

    def _follow(self) -> None:
        while not self._stopped.is_set():
            self._changed.wait(RECHECK_S)
            self._changed.clear()
            if self._stopped.is_set():
                return
            for root in self._last_change:
                try:
                    self._process_changes(root)
                except Exception as e:  # ZooKeeper away: the next look catches up
                    log.warning("%s Cannot read ACL changes under %s: %s", self._prefix, root, e)

    def _process_changes(self, root: str) -> None:
        now_ms = time.time() * 1000
        for number, child in self._zk.get_acl_changes(root, watch=self._watch):
            path = f"{root}/{child}"
            if number > self._last_change[root]:
                found = self._zk.get_data(path)
                if found is not None:
                    self._created_ms[path] = found[1].ctime
                    try:
                        pattern = acl.decode_change(root, found[0])
                        entries, _ = self._zk.get_resource_acls(pattern)
                    except acl.AclError as e:
                        log.error("%s %s", self._prefix, e)
                    else:
                        log.info("%s Processing Acl change notification for %s, versionedAcls : %d ACLs",
                                 self._prefix, pattern, len(entries))
                        with self._lock:
                            self._set(pattern, entries)
                self._last_change[root] = number
            # The notification's age is known from its one read: no request per notification per look.
            created = self._created_ms.get(path)
            if created is not None and now_ms - created > CHANGE_EXPIRATION_MS:
                with contextlib.suppress(Exception):
                    self._zk.delete_acl_change(path)
                    del self._created_ms[path]
