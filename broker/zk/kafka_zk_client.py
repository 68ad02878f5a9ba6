"""The broker's one ZooKeeper session: a thin adapter over kazoo in Kafka's words (KafkaZkClient).

It knows paths, bytes and ZooKeeper's rules; it decides nothing. Session changes and watches
are handed to a listener (the controller's event queue); they never run controller code here.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
    UnimplementedError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.serialization import CheckVersion, Create, Delete, SetData, Transaction
from kazoo.protocol.states import WatchedEvent, ZnodeStat
from kazoo.retry import KazooRetry

from broker.authorizer import acl
from broker.zk import zk_data, zk_security
from broker.zk.multi_read import MultiRead
from broker.zk.zk_data import BrokerInfo, ZNodeDecodeError
from broker.zk.zk_security import ZkSecurity

log = logging.getLogger(__name__)

T = TypeVar("T")
Watch = Callable[[WatchedEvent], None]
# One operation of a multi, as kazoo puts it on the wire (Create, SetData, Delete), its path
# already under the chroot. Built directly rather than through kazoo's TransactionRequest,
# whose path checks cost more than the rest of a mass election's write.
Op = Create | SetData | Delete

# Operations in one multi: well under ZooKeeper's 1 MB request limit for partition states.
MULTI_OPS = 500
# Partitions named by one ISR change notification: about 40 bytes each, well under ZooKeeper's
# 1 MB znode limit.
ISR_NOTIFICATION_PARTITIONS = 10_000

# Failures after which the same request is tried again once the session is usable.
_RETRIABLE = (ConnectionLoss, OperationTimeoutError, SessionExpiredError, ConnectionClosedError)
# What a failed multi answers for its other operations: RolledBackError for those before the one
# that failed (applied, then undone), RuntimeInconsistency for those after it (never tried).
_NOT_APPLIED = (RolledBackError, RuntimeInconsistency)


class ZooKeeperClientTimeoutError(Exception):
    """No connection to ZooKeeper within zookeeper.connection.timeout.ms."""


class ZooKeeperClosedError(Exception):
    """The client was closed while a request was waiting for a connection."""


class BrokerIdInUseError(Exception):
    """/brokers/ids/<id> belongs to another live session: another broker has this id."""


class ControllerMovedError(Exception):
    """A controller write failed its check on /controller_epoch: another broker is controller."""


class SessionEvent(Enum):
    # The connection dropped; the session may still be alive.
    DISCONNECTED = "disconnected"
    # The connection is back on the same session (kazoo dropped every watch meanwhile).
    RECONNECTED = "reconnected"
    # The session is gone, by ZooKeeper's verdict or because the broker was cut off for
    # longer than the session timeout.
    EXPIRED = "expired"
    # A fresh session replaced an expired one: ephemerals and watches must be set again.
    NEW_SESSION = "new_session"


@dataclass(frozen=True)
class ControllerZNode:
    """What /controller holds: a controller id, or data Kafka never writes."""

    controller_id: int | None
    zk_version: int
    malformed: str | None = None


@dataclass(frozen=True)
class ClusterSnapshot:
    cluster_id: str | None
    controller_id: int
    controller_epoch: int
    brokers: list[BrokerInfo]


def parse_zk_connect(connect: str) -> tuple[str, str | None]:
    servers, slash, chroot = connect.partition("/")
    return servers, ("/" + chroot.rstrip("/")) if slash and chroot.strip("/") else None


# The longest one connection handshake may wait for ZooKeeper's answer.
HANDSHAKE_TIMEOUT_MS = 2000


def bounded_handshake_hosts(servers: str, chroot: str | None, session_timeout_ms: int) -> str:
    """kazoo waits session_timeout / len(hosts) for the answer to a connection handshake, and
    a ZooKeeper server that accepts a connection while it is still starting may never answer:
    the broker would then sit out a whole session timeout. Listing each server several times
    bounds one handshake to about HANDSHAKE_TIMEOUT_MS without changing the session."""
    hosts = [h.strip() for h in servers.split(",") if h.strip()]
    repeat = max(1, -(-session_timeout_ms // (HANDSHAKE_TIMEOUT_MS * len(hosts))))
    return ",".join(hosts * repeat) + (chroot or "")


class KafkaZkClient:
    def __init__(
        self,
        connect: str,
        session_timeout_ms: int,
        connection_timeout_ms: int,
        on_session_event: Callable[[SessionEvent], None] | None = None,
        security: ZkSecurity | None = None,
    ) -> None:
        self._servers, self._chroot = parse_zk_connect(connect)
        # Every znode kazoo creates gets security's default ACL; minikafka writes nothing below
        # the sensitive paths, which alone would need another.
        self.security = security or ZkSecurity()
        self._connect = connect
        self.session_timeout_ms = session_timeout_ms
        self._connection_timeout_ms = connection_timeout_ms
        self._on_session_event = on_session_event or (lambda _event: None)
        self._closing = threading.Event()
        self._live = threading.Event()
        self._lock = threading.Lock()
        self._session_id: int | None = None
        self._given_up: int | None = None  # a session we declared lost while cut off
        self._cut_off_timer: threading.Timer | None = None
        # Reconnect quickly: a broker that waits minutes between attempts lets a session
        # that ZooKeeper would have kept expire.
        self._kazoo = KazooClient(
            hosts=bounded_handshake_hosts(self._servers, self._chroot, session_timeout_ms),
            timeout=session_timeout_ms / 1000,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0),
            logger=logging.getLogger("kazoo.client"),
            auth_data=self.security.auth_data,
            default_acl=self.security.default_acl,
        )
        self._kazoo.add_listener(self._on_state)
        self._multi_read_supported = True

    # -- session -------------------------------------------------------------------------

    @property
    def session_id(self) -> int | None:
        return self._session_id

    def set_session_listener(self, listener: Callable[[SessionEvent], None]) -> None:
        self._on_session_event = listener

    def start(self) -> None:
        """Connect, creating the chroot if needed (as Kafka's createChrootIfNecessary)."""
        timeout = self._connection_timeout_ms / 1000
        if self._chroot:
            bootstrap = KazooClient(hosts=self._servers, timeout=self.session_timeout_ms / 1000,
                                    auth_data=self.security.auth_data, default_acl=self.security.default_acl)
            self._start_within(bootstrap, timeout)
            try:
                bootstrap.ensure_path(self._chroot)
            finally:
                bootstrap.stop()
                bootstrap.close()
        self._start_within(self._kazoo, timeout)
        self._session_id = self._kazoo.client_id[0]
        self._live.set()
        if self.security.set_acl:
            self._warn_if_root_open()

    def _warn_if_root_open(self) -> None:
        """The brokers' ACLs protect what they create, but the children of an open parent can
        be deleted and created by anyone: /controller among them. Kafka says nothing of it."""
        acls, _ = self.retry(self._kazoo.get_acls, "/")
        if any(zk_security.opens_children(entry) for entry in acls):
            log.warning(
                "zookeeper.set.acl is true, but %s is open to everyone, so any ZooKeeper client can "
                "delete and create /controller and the other top-level znodes; give zookeeper.connect "
                "a chroot the brokers create (host:port/kafka)", self._chroot or "the root znode",
            )

    def _start_within(self, client: KazooClient, timeout: float) -> None:
        try:
            client.start(timeout=timeout)
        except KazooTimeoutError:
            raise ZooKeeperClientTimeoutError(
                f"Timed out waiting for connection to ZooKeeper at {self._servers} "
                f"after {timeout * 1000:.0f} ms (zookeeper.connection.timeout.ms)"
            ) from None

    def close(self) -> None:
        """Close the session: ZooKeeper deletes its ephemerals at once."""
        self._closing.set()
        self._live.set()  # wake requests waiting for a connection so they can give up
        if self._cut_off_timer:
            self._cut_off_timer.cancel()
        try:
            self._kazoo.stop()
            self._kazoo.close()
        except Exception:  # closing a dead connection must not fail a shutdown
            log.debug("Error while closing the ZooKeeper client", exc_info=True)

    def _on_state(self, state: str) -> None:
        """kazoo's connection thread: record the change and hand it on, never block."""
        if self._closing.is_set():
            return
        if state == KazooState.SUSPENDED:
            self._live.clear()
            self._start_cut_off_timer()
            self._on_session_event(SessionEvent.DISCONNECTED)
        elif state == KazooState.LOST:
            self._live.clear()
            self._cancel_cut_off_timer()
            with self._lock:
                already_given_up = self._given_up is not None
            if not already_given_up and self._session_id is not None:
                self._on_session_event(SessionEvent.EXPIRED)
        elif state == KazooState.CONNECTED:
            self._cancel_cut_off_timer()
            client_id = self._kazoo.client_id
            if client_id is None:
                return  # lost again already: the SUSPENDED or LOST that follows is handled instead
            session_id = client_id[0]
            with self._lock:
                revived = self._given_up is not None and session_id == self._given_up
                if not revived:
                    self._given_up = None
                previous, self._session_id = self._session_id, session_id
            if revived:
                # ZooKeeper kept (or, after its own restart, revived) the session this broker
                # already declared lost. Close it so its ephemerals go, then start afresh.
                threading.Thread(target=self._renew_session, name="zk-renew-session", daemon=True).start()
                return
            self._live.set()
            if previous is not None and previous != session_id:
                self._on_session_event(SessionEvent.NEW_SESSION)
            elif previous is not None:
                self._on_session_event(SessionEvent.RECONNECTED)

    def _start_cut_off_timer(self) -> None:
        self._cancel_cut_off_timer()
        timer = threading.Timer(self.session_timeout_ms / 1000, self._cut_off_too_long)
        timer.daemon = True
        self._cut_off_timer = timer
        timer.start()

    def _cancel_cut_off_timer(self) -> None:
        if self._cut_off_timer is not None:
            self._cut_off_timer.cancel()
            self._cut_off_timer = None

    def _cut_off_too_long(self) -> None:
        # Kafka waits for ZooKeeper's verdict when it reconnects; a broker cut off from
        # ZooKeeper would go on acting as controller meanwhile, and ZooKeeper revives sessions
        # when it restarts. Like Curator, minikafka treats a disconnection longer than the
        # session timeout as the loss of the session.
        with self._lock:
            if self._live.is_set() or self._closing.is_set() or self._session_id is None:
                return
            self._given_up = self._session_id
        log.warning(
            "No connection to ZooKeeper for %d ms (zookeeper.session.timeout.ms): "
            "treating session 0x%x as expired",
            self.session_timeout_ms, self._given_up,
        )
        self._on_session_event(SessionEvent.EXPIRED)

    def _renew_session(self) -> None:
        if self._closing.is_set():
            return
        log.info("Closing revived ZooKeeper session 0x%x and starting a new one", self._given_up or 0)
        try:
            self._kazoo.stop()
            with self._lock:
                self._given_up = None
            if not self._closing.is_set():
                self._kazoo.start_async()
        except Exception:
            log.exception("Could not renew the ZooKeeper session")

    # -- requests --------------------------------------------------------------------------

    def retry(self, fn: Callable[..., T], *args: Any, deadline_s: float | None = None, **kwargs: Any) -> T:
        """Kafka's retryRequestsUntilConnected: retry through connection loss and session
        renewal. A controller write retried into a new session still carries its epoch check."""
        give_up = None if deadline_s is None else time.monotonic() + deadline_s
        delay = 0.02
        while True:
            if self._closing.is_set():
                raise ZooKeeperClosedError("ZooKeeper client closed")
            try:
                return fn(*args, **kwargs)
            except _RETRIABLE:
                if self._closing.is_set():
                    raise ZooKeeperClosedError("ZooKeeper client closed") from None
                remaining = None if give_up is None else give_up - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise
                self._live.wait(timeout=remaining)
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def get_data(self, path: str, watch: Watch | None = None) -> tuple[bytes, ZnodeStat] | None:
        try:
            return self.retry(self._kazoo.get, path, watch=watch)
        except NoNodeError:
            return None

    def exists(self, path: str, watch: Watch | None = None) -> ZnodeStat | None:
        return self.retry(self._kazoo.exists, path, watch=watch)

    def get_children(self, path: str, watch: Watch | None = None) -> list[str]:
        try:
            return self.retry(self._kazoo.get_children, path, watch=watch)
        except NoNodeError:
            return []

    def create_persistent_paths(self) -> None:
        for path in zk_data.PERSISTENT_PATHS:
            self.retry(self._kazoo.ensure_path, path)

    def get_or_create_cluster_id(self) -> str:
        """KafkaZkClient.getClusterId, creating it when no broker has yet."""
        while True:
            found = self.get_data(zk_data.CLUSTER_ID_PATH)
            if found is not None:
                return zk_data.decode_cluster_id(found[0])
            proposed = zk_data.new_uuid()
            try:
                self.retry(self._kazoo.create, zk_data.CLUSTER_ID_PATH, zk_data.encode_cluster_id(proposed))
                return proposed
            except NodeExistsError:
                continue

    # -- broker registration ---------------------------------------------------------------

    def register_broker(self, info: BrokerInfo) -> int:
        """Create the ephemeral /brokers/ids/<id>; returns its czxid, the broker epoch.

        A NodeExists from a create whose first answer was lost is ours if the znode's owner
        is this session (Kafka's checkedEphemeralCreate)."""
        path = zk_data.broker_id_path(info.broker_id)
        data = zk_data.encode_broker_info(info)
        with contextlib.suppress(NodeExistsError):
            self.retry(self._kazoo.create, path, data, ephemeral=True)
        stat = self.exists(path)
        if stat is None:
            raise BrokerIdInUseError(f"{path} vanished right after it was created")
        client_id = self._kazoo.client_id
        if client_id is None:
            raise ConnectionLoss(f"the connection to ZooKeeper was lost while registering {path}")
        if stat.ephemeralOwner != client_id[0]:
            raise BrokerIdInUseError(
                f"Broker id {info.broker_id} is already registered: {path} belongs to ZooKeeper "
                f"session 0x{stat.ephemeralOwner:x}, not this broker's (0x{client_id[0]:x}); "
                "broker.id must be unique in the cluster"
            )
        return stat.czxid

    def deregister_broker(self, broker_id: int) -> None:
        path = zk_data.broker_id_path(broker_id)
        found = self.retry(self._kazoo.exists, path, deadline_s=5)
        client_id = self._kazoo.client_id
        if found is not None and client_id is not None and found.ephemeralOwner == client_id[0]:
            with contextlib.suppress(NoNodeError, BadVersionError):
                self.retry(self._kazoo.delete, path, version=found.version, deadline_s=5)

    def get_brokers(self, watch: Watch | None = None) -> tuple[list[BrokerInfo], list[str]]:
        """Every registration under /brokers/ids, and a description of each malformed one."""
        brokers, malformed = [], []
        for child in sorted(self.get_children(zk_data.BROKER_IDS_PATH, watch=watch)):
            broker_id = zk_data.parse_broker_id(child)
            if broker_id is None:
                malformed.append(f"{zk_data.BROKER_IDS_PATH}/{child}: not a broker id")
                continue
            found = self.get_data(zk_data.broker_id_path(broker_id))
            if found is None:
                continue  # left between the two reads
            try:
                brokers.append(zk_data.decode_broker_info(broker_id, found[0], found[1].czxid))
            except ZNodeDecodeError as e:
                malformed.append(str(e))
        return brokers, malformed

    # -- controller election and fencing ---------------------------------------------------

    def get_controller(self, watch: Watch | None = None) -> ControllerZNode | None:
        """Read /controller and leave a watch on it (existence or data)."""
        try:
            data, stat = self.retry(self._kazoo.get, zk_data.CONTROLLER_PATH, watch=watch)
        except NoNodeError:
            # Watch for its creation too, as Kafka's registerZNodeChangeHandlerAndCheckExistence.
            if watch is not None and self.exists(zk_data.CONTROLLER_PATH, watch=watch) is not None:
                return self.get_controller(watch)
            return None
        try:
            return ControllerZNode(zk_data.decode_controller(data), stat.version)
        except ZNodeDecodeError as e:
            return ControllerZNode(None, stat.version, malformed=str(e))

    def delete_controller_if_version(self, zk_version: int) -> bool:
        """Remove a /controller that cannot stand, only if it is still the same znode version."""
        try:
            self.retry(self._kazoo.delete, zk_data.CONTROLLER_PATH, version=zk_version)
            return True
        except (NoNodeError, BadVersionError):
            return False

    def get_controller_epoch(self) -> tuple[int, int] | None:
        """(epoch, zk version) of /controller_epoch. An epoch Kafka could not have written is
        replaced by the znode's version, which every election bumps along with the epoch."""
        found = self.get_data(zk_data.CONTROLLER_EPOCH_PATH)
        if found is None:
            return None
        data, stat = found
        try:
            return zk_data.decode_controller_epoch(data), stat.version
        except ZNodeDecodeError as e:
            log.error("%s; reading the controller epoch as %d, its zk version", e, stat.version)
            return stat.version, stat.version

    def read_controller_identity(self, deadline_s: float) -> tuple[int | None, int | None]:
        """(epoch in /controller_epoch, id in /controller), each None when missing or not Kafka's,
        read after a sync: this session's server has then applied every election the leader has."""
        self.retry(self._kazoo.sync, zk_data.CONTROLLER_EPOCH_PATH, deadline_s=deadline_s)

        def read(path: str, decode: Callable[[bytes], int]) -> int | None:
            try:
                return decode(self.retry(self._kazoo.get, path, deadline_s=deadline_s)[0])
            except (NoNodeError, ZNodeDecodeError):
                return None

        return (read(zk_data.CONTROLLER_EPOCH_PATH, zk_data.decode_controller_epoch),
                read(zk_data.CONTROLLER_PATH, zk_data.decode_controller))

    def create_controller_epoch_if_missing(self) -> tuple[int, int]:
        """KafkaZkClient.maybeCreateControllerEpochZNode."""
        found = self.get_controller_epoch()
        if found is not None:
            return found
        try:
            self.retry(
                self._kazoo.create,
                zk_data.CONTROLLER_EPOCH_PATH,
                zk_data.encode_controller_epoch(zk_data.INITIAL_CONTROLLER_EPOCH),
            )
            return zk_data.INITIAL_CONTROLLER_EPOCH, zk_data.INITIAL_CONTROLLER_EPOCH_ZK_VERSION
        except NodeExistsError:
            found = self.get_controller_epoch()
            assert found is not None
            return found

    def register_controller_and_increment_epoch(self, broker_id: int) -> tuple[int, int]:
        """One multi: create the ephemeral /controller and bump /controller_epoch, conditional
        on the epoch's zk version. Returns (new epoch, new epoch zk version); raises
        ControllerMovedError when another broker won the race."""
        epoch, epoch_zk_version = self.create_controller_epoch_if_missing()
        new_epoch = epoch + 1

        def attempt() -> list[Any]:
            txn = self._kazoo.transaction()
            txn.create(zk_data.CONTROLLER_PATH, zk_data.encode_controller(broker_id), ephemeral=True)
            txn.set_data(
                zk_data.CONTROLLER_EPOCH_PATH,
                zk_data.encode_controller_epoch(new_epoch),
                version=epoch_zk_version,
            )
            return txn.commit()

        results = self.retry(attempt)
        failure = next((r for r in results if isinstance(r, Exception)), None)
        if failure is None:
            stat = results[1]
            return new_epoch, stat.version
        if isinstance(failure, (NodeExistsError, BadVersionError)):
            # Maybe our own multi went through and only its answer was lost
            # (KafkaZkClient.checkControllerAndEpoch).
            current = self.get_controller()
            current_epoch = self.get_controller_epoch()
            if (
                current is not None
                and current.controller_id == broker_id
                and current_epoch is not None
                and current_epoch[0] == new_epoch
            ):
                return current_epoch
            raise ControllerMovedError(
                f"Controller moved to {current.controller_id if current else 'nobody'} "
                f"while broker {broker_id} raced for epoch {new_epoch}"
            )
        raise failure

    def _root(self, path: str) -> str:
        return (self._kazoo.chroot or "") + path

    def op_create(self, path: str, data: bytes = b"") -> Op:
        return Create(self._root(path), data, self.security.acls(path), 0)

    def op_set_data(self, path: str, data: bytes, version: int) -> Op:
        return SetData(self._root(path), data, version)

    def op_delete(self, path: str) -> Op:
        return Delete(self._root(path), -1)

    def fenced_write(self, epoch_zk_version: int, ops: Sequence[Op]) -> list[Any]:
        """A controller write: `ops` (one ZooKeeper operation each) in one multi, after a check
        that /controller_epoch is still at the zk version this controller set when elected.
        Returns the operations' results, or the one error that failed the multi."""
        return self._fenced_chunks(epoch_zk_version, {0: list(ops)})[0]

    def delete_controller(self, epoch_zk_version: int) -> bool:
        """KafkaZkClient.deleteController: a fenced delete of /controller. False if it is gone."""
        results = self.fenced_write(epoch_zk_version, [self.op_delete(zk_data.CONTROLLER_PATH)])
        return not isinstance(results[0], Exception)

    def delete_isr_change_notifications(self, epoch_zk_version: int, children: Sequence[str]) -> int:
        """Fenced delete of processed ISR change notifications; one deleted meanwhile is
        skipped and the others still go. Returns how many were asked for."""
        self._fenced_chunks(
            epoch_zk_version,
            {c: [self.op_delete(f"{zk_data.ISR_CHANGE_NOTIFICATION_PATH}/{c}")] for c in children},
        )
        return len(children)

    # -- cluster description ---------------------------------------------------------------

    def describe_cluster(self, cluster_id: str | None, deadline_s: float) -> ClusterSnapshot:
        def read_or_none(path: str) -> tuple[bytes, ZnodeStat] | None:
            try:
                return self._kazoo.get(path)
            except NoNodeError:
                return None

        def read() -> ClusterSnapshot:
            controller_id = -1
            controller = read_or_none(zk_data.CONTROLLER_PATH)
            if controller is not None:
                with contextlib.suppress(ZNodeDecodeError):
                    controller_id = zk_data.decode_controller(controller[0])
            epoch = -1
            found = read_or_none(zk_data.CONTROLLER_EPOCH_PATH)
            if found is not None:
                try:
                    epoch = zk_data.decode_controller_epoch(found[0])
                except ZNodeDecodeError:
                    epoch = found[1].version
            brokers = []
            for child in self._kazoo.get_children(zk_data.BROKER_IDS_PATH):
                broker_id = zk_data.parse_broker_id(child)
                registration = None if broker_id is None else read_or_none(zk_data.broker_id_path(broker_id))
                if broker_id is None or registration is None:
                    continue
                try:
                    brokers.append(zk_data.decode_broker_info(broker_id, registration[0], registration[1].czxid))
                except ZNodeDecodeError:
                    continue
            return ClusterSnapshot(cluster_id, controller_id, epoch, sorted(brokers, key=lambda b: b.broker_id))

        return self.retry(read, deadline_s=deadline_s)

    # -- topics and partitions ---------------------------------------------------------------

    def pipelined(self, requests: Sequence[Callable[[], Any]]) -> list[Any]:
        """Send every request at once (kazoo's async API) and gather the answers in order.

        An answer is a result or the exception ZooKeeper gave for it; requests lost to a
        connection problem are sent again once the session is usable, like Kafka's
        retryRequestsUntilConnected over a batch."""
        return self.pipelined_async(requests)()

    def pipelined_async(self, requests: Sequence[Callable[[], Any]]) -> Callable[[], list[Any]]:
        """`pipelined` in two halves: the requests leave now, and calling the function returned
        waits for their answers. The caller works while ZooKeeper does."""
        sent = self._send_all(requests, range(len(requests)))

        def gather() -> list[Any]:
            results: list[Any] = [None] * len(requests)
            in_flight, delay = sent, 0.02
            while True:
                retry = []
                for i, future in in_flight:
                    if isinstance(future, Exception):
                        retry.append(i)
                        continue
                    try:
                        results[i] = future.get()
                    except _RETRIABLE:
                        retry.append(i)
                    except Exception as e:  # ZooKeeper's answer for this request
                        results[i] = e
                if not retry:
                    return results
                self._live.wait()
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                in_flight = self._send_all(requests, retry)

        return gather

    def _send_all(self, requests: Sequence[Callable[[], Any]], indexes: Iterable[int]) -> list[tuple[int, Any]]:
        if self._closing.is_set():
            raise ZooKeeperClosedError("ZooKeeper client closed")
        sent: list[tuple[int, Any]] = []
        for i in indexes:
            try:
                sent.append((i, requests[i]()))
            except _RETRIABLE as e:
                sent.append((i, e))
        return sent

    def get_many(self, paths: Sequence[str]) -> list[Any]:
        """(data, stat) or the exception for each path: ZooKeeper's multiRead in chunks of
        MULTI_OPS, all in flight at once; pipelined getData where the server has no multiRead."""
        if not self._multi_read_supported:
            return self.pipelined([lambda p=p: self._kazoo.get_async(p) for p in paths])
        chunks = [list(paths[i:i + MULTI_OPS]) for i in range(0, len(paths), MULTI_OPS)]

        def request(chunk: list[str]) -> Callable[[], Any]:
            def send() -> Any:
                result = self._kazoo.handler.async_result()
                prefix = self._kazoo.chroot or ""
                self._kazoo._call(MultiRead([prefix + p for p in chunk]), result)
                return result

            return send

        answers = self.pipelined([request(chunk) for chunk in chunks])
        if any(isinstance(a, UnimplementedError) for a in answers):
            log.info("ZooKeeper has no multiRead: reading znodes one request each")
            self._multi_read_supported = False
            return self.get_many(paths)
        results: list[Any] = []
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
            results.extend(answer)
        return results

    def get_all_topics(self, watch: Watch | None = None) -> list[str]:
        return sorted(self.get_children(zk_data.BROKER_TOPICS_PATH, watch=watch))

    def get_topic_assignments(self, topics: Sequence[str]) -> tuple[dict[str, zk_data.TopicAssignment], list[str]]:
        """Assignments of the topics that exist, and a description of each malformed one."""
        answers = self.get_many([zk_data.topic_path(t) for t in topics])
        assignments, malformed = {}, []
        for topic, answer in zip(topics, answers, strict=True):
            if isinstance(answer, NoNodeError):
                continue
            if isinstance(answer, Exception):
                raise answer
            try:
                assignments[topic] = zk_data.decode_topic_assignment(topic, answer[0])
            except ZNodeDecodeError as e:
                malformed.append(str(e))
        return assignments, malformed

    def get_topic_configs(self, topics: Sequence[str]) -> dict[str, dict[str, str]]:
        answers = self.get_many([zk_data.topic_config_path(t) for t in topics])
        configs = {}
        for topic, answer in zip(topics, answers, strict=True):
            if isinstance(answer, Exception):
                configs[topic] = {}
                continue
            try:
                configs[topic] = zk_data.decode_topic_config(topic, answer[0])
            except ZNodeDecodeError as e:
                log.error("Ignoring malformed topic config: %s", e)
                configs[topic] = {}
        return configs

    def get_partition_states(
        self, partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], zk_data.PartitionStateZNode]:
        """The state znodes that exist and decode; missing or malformed ones are left out."""
        paths = [zk_data.partition_state_path(*tp) for tp in partitions]
        found: list[tuple[tuple[str, int], tuple[str, bytes | None, int]]] = []
        for tp, path, answer in zip(partitions, paths, self.get_many(paths), strict=True):
            if isinstance(answer, NoNodeError):
                continue
            if isinstance(answer, Exception):
                raise answer
            found.append((tp, (path, answer[0], answer[1].version)))
        states = {}
        for (tp, _), state in zip(found, zk_data.decode_partition_states([item for _, item in found]), strict=True):
            if isinstance(state, ZNodeDecodeError):
                log.error("Ignoring malformed partition state: %s", state)
            else:
                states[tp] = state
        return states

    def _fenced_chunks(
        self, epoch_zk_version: int, items: dict[Any, list[Op]]
    ) -> dict[Any, list[Any]]:
        """Many items' operations in few fenced multis, all in flight at once.

        Each item is a list of operations that must succeed together; items are packed into
        multis of up to MULTI_OPS operations, each behind one check on /controller_epoch, so a
        thousand partitions cost a handful of round trips instead of a thousand. A multi fails
        whole: the items whose own operation failed get that error, the others (rolled back, or
        never tried) are sent again. Returns each item's operation results (or the exception for
        the one that failed)."""
        return self._fenced_chunks_async(epoch_zk_version, items)()

    def _fenced_chunks_async(
        self, epoch_zk_version: int, items: dict[Any, list[Op]]
    ) -> Callable[[], dict[Any, list[Any]]]:
        """`_fenced_chunks` in two halves: the multis leave now, and calling the function
        returned waits for them (and sends again, synchronously, what a failed multi rolled back)."""
        if epoch_zk_version < 0:
            # ZooKeeper reads version -1 as "any version": that would be no fence at all.
            raise ControllerMovedError("this broker holds no controller epoch")
        fence = self._root(zk_data.CONTROLLER_EPOCH_PATH)
        chunks: list[list[Any]] = [[]]
        size = 0
        for key in items:
            if size + len(items[key]) > MULTI_OPS and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append(key)
            size += len(items[key])

        def request(chunk: list[Any]) -> Callable[[], Any]:
            def send() -> Any:
                ops: list[Any] = [CheckVersion(fence, epoch_zk_version)]
                for key in chunk:
                    ops.extend(items[key])
                result = self._kazoo.handler.async_result()
                self._kazoo._call(Transaction(ops), result)
                return result

            return send

        answered = self.pipelined_async([request(chunk) for chunk in chunks])

        def gather() -> dict[Any, list[Any]]:
            results: dict[Any, list[Any]] = {}
            rolled_back: dict[Any, list[Op]] = {}
            for chunk, answer in zip(chunks, answered(), strict=True):
                if isinstance(answer, Exception):
                    raise answer
                if isinstance(answer[0], (BadVersionError, NoNodeError)):
                    self._raise_controller_moved(epoch_zk_version)
                position = 1
                for key in chunk:
                    ops = answer[position:position + len(items[key])]
                    position += len(items[key])
                    failure = next((r for r in ops if isinstance(r, Exception) and not isinstance(r, _NOT_APPLIED)),
                                   None)
                    if failure is not None:
                        results[key] = [failure]
                    elif any(isinstance(r, _NOT_APPLIED) for r in ops):
                        rolled_back[key] = items[key]
                    else:
                        results[key] = list(ops)
            if rolled_back:
                results.update(self._fenced_chunks(epoch_zk_version, rolled_back))
            return results

        return gather

    def _raise_controller_moved(self, epoch_zk_version: int) -> None:
        current = self.get_controller_epoch()
        raise ControllerMovedError(
            f"the check on {zk_data.CONTROLLER_EPOCH_PATH} failed: this controller's zk version is "
            f"{epoch_zk_version}, ZooKeeper's is {current[1] if current else 'none'} "
            f"(epoch {current[0] if current else 'none'})"
        )

    def create_partition_states(
        self, epoch_zk_version: int, states: dict[tuple[str, int], bytes]
    ) -> dict[tuple[str, int], int | Exception]:
        """Create the state znodes of new partitions (and their parents), fenced; returns each
        one's zk version (0) or the error ZooKeeper gave (NodeExists: created before)."""
        topics = sorted({t for t, _ in states})
        parents = {
            ("parent", t): [self.op_create(zk_data.topic_partitions_path(t))]
            for t in topics if self.exists(zk_data.topic_partitions_path(t)) is None
        }
        if parents:
            self._fenced_chunks(epoch_zk_version, parents)
        existing = {
            tp for tp, answer in zip(states, self.get_many([zk_data.partition_path(*tp) for tp in states]),
                                     strict=True)
            if not isinstance(answer, Exception)
        }
        items: dict[Any, list[Op]] = {}
        for tp, data in states.items():
            ops: list[Op] = []
            if tp not in existing:
                ops.append(self.op_create(zk_data.partition_path(*tp)))
            ops.append(self.op_create(zk_data.partition_state_path(*tp), data))
            items[tp] = ops
        answers = self._fenced_chunks(epoch_zk_version, items)
        return {
            tp: (answer[0] if isinstance(answer[0], Exception) else 0) for tp, answer in answers.items()
        }

    def update_partition_states(
        self, epoch_zk_version: int, states: dict[tuple[str, int], tuple[bytes, int]]
    ) -> dict[tuple[str, int], int | Exception]:
        """Conditional updates of partition state znodes (expected zk version each), fenced and
        packed into few multis; returns each one's new zk version, or BadVersionError when its
        partition epoch moved."""
        return self.update_partition_states_async(epoch_zk_version, states)()

    def update_partition_states_async(
        self, epoch_zk_version: int, states: dict[tuple[str, int], tuple[bytes, int]]
    ) -> Callable[[], dict[tuple[str, int], int | Exception]]:
        """`update_partition_states` in two halves: the writes leave now, and calling the
        function returned waits for their answers."""
        answered = self._fenced_chunks_async(
            epoch_zk_version,
            {tp: [self.op_set_data(zk_data.partition_state_path(*tp), data, version)]
             for tp, (data, version) in states.items()},
        )

        def gather() -> dict[tuple[str, int], int | Exception]:
            return {
                tp: (answer[0] if isinstance(answer[0], Exception) else answer[0].version)
                for tp, answer in answered().items()
            }

        return gather

    def create_topic(self, assignment: zk_data.TopicAssignment, config: dict[str, str]) -> None:
        """AdminZkClient.createTopicWithAssignment: config first, then the assignment the
        controller watches for. NodeExistsError when the topic exists."""
        if self.exists(zk_data.topic_path(assignment.topic)) is not None:
            raise NodeExistsError()
        data = zk_data.encode_topic_config(config)
        try:
            self.retry(self._kazoo.create, zk_data.topic_config_path(assignment.topic), data)
        except NodeExistsError:
            self.retry(self._kazoo.set, zk_data.topic_config_path(assignment.topic), data)
        data = zk_data.encode_topic_assignment(assignment)
        self.retry(self._kazoo.create, zk_data.topic_path(assignment.topic), data)

    def mark_topic_for_deletion(self, topic: str) -> None:
        with contextlib.suppress(NodeExistsError):
            self.retry(self._kazoo.create, zk_data.delete_topic_path(topic), makepath=True)

    def get_topic_deletions(self, watch: Watch | None = None) -> list[str]:
        return sorted(self.get_children(zk_data.DELETE_TOPICS_PATH, watch=watch))

    def delete_topic_znodes(self, epoch_zk_version: int, topic: str) -> None:
        """Fenced removal of a topic's assignment, partition states, config and deletion mark."""
        partitions = [int(p) for p in self.get_children(zk_data.topic_partitions_path(topic)) if p.isdigit()]
        candidates = [zk_data.partition_state_path(topic, p) for p in partitions]
        candidates += [zk_data.partition_path(topic, p) for p in partitions]
        candidates += [zk_data.topic_partitions_path(topic), zk_data.topic_path(topic)]
        paths = [path for path in candidates if self.exists(path) is not None]
        if paths:  # one multi, leaves first
            self.fenced_write(epoch_zk_version, [self.op_delete(path) for path in paths])
        for path in (zk_data.topic_config_path(topic), zk_data.delete_topic_path(topic)):
            self.fenced_write(epoch_zk_version, [self.op_delete(path)])

    def get_preferred_replica_election(self, watch: Watch | None = None) -> list[tuple[str, int]] | None:
        """The partitions asked for in /admin/preferred_replica_election (None: no request)."""
        try:
            data, _ = self.retry(self._kazoo.get, zk_data.PREFERRED_REPLICA_ELECTION_PATH, watch=watch)
        except NoNodeError:
            if watch is not None and self.exists(zk_data.PREFERRED_REPLICA_ELECTION_PATH, watch=watch) is not None:
                return self.get_preferred_replica_election(watch)
            return None
        try:
            return zk_data.decode_partitions_list(zk_data.PREFERRED_REPLICA_ELECTION_PATH, data)
        except ZNodeDecodeError as e:
            log.error("Ignoring malformed preferred replica election request: %s", e)
            return []

    def delete_preferred_replica_election(self, epoch_zk_version: int) -> None:
        self.fenced_write(epoch_zk_version, [self.op_delete(zk_data.PREFERRED_REPLICA_ELECTION_PATH)])

    def update_leader_and_isrs(
        self, states: Mapping[tuple[str, int], tuple[bytes, int]]
    ) -> dict[tuple[str, int], int | None]:
        """Partition leaders' own ISR changes, each conditional on its partition's zk version and
        all in flight at once, then announced under /isr_change_notification in as few znodes as
        fit (Kafka's propagateIsrChanges). Each partition's new zk version, or None when the
        version moved (the controller wrote meanwhile; its next LeaderAndIsr brings the new one)."""
        paths = list(states)
        answers = self.pipelined([
            lambda tp=tp: self._kazoo.set_async(zk_data.partition_state_path(*tp), *states[tp]) for tp in paths
        ])
        versions: dict[tuple[str, int], int | None] = {}
        for tp, answer in zip(paths, answers, strict=True):
            if isinstance(answer, Exception):
                if not isinstance(answer, (BadVersionError, NoNodeError)):
                    log.error("Failed to write the ISR of %s-%d: %r", tp[0], tp[1], answer)
                versions[tp] = None
            else:
                versions[tp] = answer.version
        # A write sent again after a lost connection finds its own first attempt applied: the
        # version moved, to exactly what was written. Kafka's leader checks for that too
        # (ReplicationUtils.checkLeaderAndIsrZkData); without it the leader keeps a stale version
        # and none of its ISR changes is ever written again.
        conflicted = [tp for tp, answer in zip(paths, answers, strict=True) if isinstance(answer, BadVersionError)]
        if conflicted:
            found = self.get_many([zk_data.partition_state_path(*tp) for tp in conflicted])
            for tp, answer in zip(conflicted, found, strict=True):
                if not isinstance(answer, Exception) and answer[0] == states[tp][0]:
                    versions[tp] = answer[1].version
        changed = [tp for tp, version in versions.items() if version is not None]
        for start in range(0, len(changed), ISR_NOTIFICATION_PARTITIONS):
            self.retry(
                self._kazoo.create,
                f"{zk_data.ISR_CHANGE_NOTIFICATION_PATH}/isr_change_",
                zk_data.encode_partitions_list(changed[start:start + ISR_NOTIFICATION_PARTITIONS]),
                sequence=True,
            )
        return versions

    # -- ACLs (Kafka's ZooKeeper authorizer store: broker/authorizer/acl.py) -----------------------

    def create_acl_paths(self) -> None:
        """KafkaZkClient.createAclPaths: the stores, a child per resource type, the change paths."""
        for root in (acl.LITERAL_ACL_PATH, acl.PREFIXED_ACL_PATH):
            for resource_type in acl.ResourceType:
                self.retry(self._kazoo.ensure_path, f"{root}/{resource_type.value}")
        for path in (acl.LITERAL_CHANGES_PATH, acl.EXTENDED_CHANGES_PATH):
            self.retry(self._kazoo.ensure_path, path)

    def get_resource_acls(self, pattern: acl.ResourcePattern) -> tuple[frozenset[acl.AclEntry], int]:
        """A resource's ACLs and its znode's version (-1: no znode)."""
        path = acl.acl_path(pattern)
        found = self.get_data(path)
        if found is None:
            return frozenset(), -1
        return acl.decode_acls(path, found[0]), found[1].version

    def get_all_acls(self) -> tuple[dict[acl.ResourcePattern, frozenset[acl.AclEntry]], list[str]]:
        """Every resource's ACLs, and what could not be read (malformed znodes, unknown types)."""
        found: dict[acl.ResourcePattern, frozenset[acl.AclEntry]] = {}
        problems: list[str] = []
        for root, pattern_type in ((acl.LITERAL_ACL_PATH, acl.PatternType.LITERAL),
                                   (acl.PREFIXED_ACL_PATH, acl.PatternType.PREFIXED)):
            for type_name in self.get_children(root):
                try:
                    resource_type = acl.ResourceType.parse(type_name)
                except acl.AclError:
                    problems.append(f"Ignoring unknown ResourceType: {type_name}")
                    continue
                for name in self.get_children(f"{root}/{type_name}"):
                    pattern = acl.ResourcePattern(resource_type, name, pattern_type)
                    try:
                        entries, _ = self.get_resource_acls(pattern)
                    except acl.AclError as e:
                        problems.append(str(e))
                        continue
                    if entries:
                        found[pattern] = entries
        return found, problems

    def write_resource_acls(self, pattern: acl.ResourcePattern, entries: frozenset[acl.AclEntry],
                            version: int) -> bool:
        """Replace a resource's ACLs if its znode is still at `version` (-1: absent); an empty set
        deletes the znode. False when someone else changed it first."""
        path = acl.acl_path(pattern)
        try:
            if not entries:
                if version >= 0:
                    self.retry(self._kazoo.delete, path, version=version)
            elif version < 0:
                self.retry(self._kazoo.create, path, acl.encode_acls(entries), makepath=True)
            else:
                self.retry(self._kazoo.set, path, acl.encode_acls(entries), version=version)
        except (BadVersionError, NoNodeError, NodeExistsError):
            return False
        return True

    def create_acl_change(self, pattern: acl.ResourcePattern) -> None:
        root, data = acl.encode_change(pattern)
        self.retry(self._kazoo.create, f"{root}/{acl.CHANGE_PREFIX}", data, sequence=True, makepath=True)

    def delete_acl_change(self, path: str) -> None:
        with contextlib.suppress(NoNodeError):
            self.retry(self._kazoo.delete, path)

    def get_acl_changes(self, root: str, watch: Watch | None = None) -> list[tuple[int, str]]:
        """The change notifications under `root` as (sequence number, child), in order."""
        changes = []
        for child in self.get_children(root, watch=watch):
            number = child.removeprefix(acl.CHANGE_PREFIX)
            if child.startswith(acl.CHANGE_PREFIX) and number.isdigit():
                changes.append((int(number), child))
        return sorted(changes)

    def allocate_producer_id_block(self, broker_id: int) -> zk_data.ProducerIdBlock:
        """Kafka's ZkProducerIdManager: reserve the next block of producer ids with a conditional
        write of /latest_producer_id_block, retrying when another broker took one meanwhile."""
        while True:
            found = self.get_data(zk_data.PRODUCER_ID_BLOCK_PATH)
            first = 0 if found is None else zk_data.decode_producer_id_block(found[0]).last + 1
            block = zk_data.ProducerIdBlock(broker_id, first, first + zk_data.PRODUCER_ID_BLOCK_SIZE - 1)
            data = zk_data.encode_producer_id_block(block)
            try:
                if found is None:
                    self.retry(self._kazoo.create, zk_data.PRODUCER_ID_BLOCK_PATH, data)
                else:
                    self.retry(self._kazoo.set, zk_data.PRODUCER_ID_BLOCK_PATH, data, version=found[1].version)
                return block
            except (NodeExistsError, BadVersionError):
                continue

    def get_isr_change_notifications(self, children: Sequence[str]) -> list[tuple[str, int]]:
        answers = self.get_many([f"{zk_data.ISR_CHANGE_NOTIFICATION_PATH}/{c}" for c in children])
        partitions: set[tuple[str, int]] = set()
        for child, answer in zip(children, answers, strict=True):
            if isinstance(answer, Exception):
                continue
            try:
                partitions.update(zk_data.decode_partitions_list(child, answer[0]))
            except ZNodeDecodeError as e:
                log.error("Ignoring malformed ISR change notification: %s", e)
        return sorted(partitions)
