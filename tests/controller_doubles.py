"""Doubles for the controller's two edges: ZooKeeper (KafkaZkClient) and the brokers (the channel manager).

FakeZooKeeper is one in-memory ensemble: znodes with versions and zxids, ephemerals owned by
sessions, one-shot watches and multis that apply whole or not at all. FakeKafkaZkClient is one
broker's session on it, with exactly the KafkaZkClient methods the controller (and a test setting
up a cluster) calls, the same return types and the same exceptions. RecordingChannelManager keeps
every request the controller sends, per broker, as plain data.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import EventType, KeeperState, WatchedEvent, ZnodeStat

from broker.controller.controller_context import TopicPartition
from broker.zk import kafka_zk_client, zk_data
from broker.zk.kafka_zk_client import (
    BrokerIdInUseError,
    ControllerMovedError,
    ControllerZNode,
    SessionEvent,
)
from broker.zk.zk_data import BrokerInfo, ZNodeDecodeError
from minikafka_protocol.errors import Errors
from minikafka_rpc import kafka_pb2

Watch = Callable[[WatchedEvent], None]


# -- the ensemble ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZNode:
    data: bytes
    czxid: int
    mzxid: int
    version: int = 0
    ephemeral_owner: int = 0

    def stat(self, children: int) -> ZnodeStat:
        return ZnodeStat(self.czxid, self.mzxid, 0, 0, self.version, 0, 0, self.ephemeral_owner, len(self.data),
                         children, self.mzxid)


# A multi's operations: ("create", path, data, ephemeral owner or 0), ("set", path, data, version),
# ("delete", path, version), ("check", path, version); version -1 matches any.
Op = tuple[Any, ...]


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class FakeZooKeeper:
    """ZooKeeper's rules in memory. Watches fire on the writer's thread once the write is applied
    (kazoo fires them on its event thread): the controller's only enqueue an event."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.nodes: dict[str, ZNode] = {"/": ZNode(b"", 0, 0)}
        self._zxid = 0
        self._next_session = 0x100
        self.live_sessions: set[int] = set()
        # Per path, (session, watch): kazoo keeps exists watches with the data watches.
        self._data_watches: dict[str, set[tuple[int, Watch]]] = {}
        self._child_watches: dict[str, set[tuple[int, Watch]]] = {}
        # Operations per multi, KafkaZkClient.MULTI_OPS; a test makes it small to split a write.
        self.multi_ops = kafka_zk_client.MULTI_OPS
        # Called after every fenced multi a client sends, applied or refused, with the client and
        # the keys of the items it carried: where a test cuts into a controller's write.
        self.after_fenced_multi: Callable[[FakeKafkaZkClient, list[Any]], None] | None = None
        for path in (*zk_data.PERSISTENT_PATHS, "/admin"):
            self.ensure_path(path)

    # -- sessions --------------------------------------------------------------------------

    def open_session(self) -> int:
        with self._lock:
            self._next_session += 1
            self.live_sessions.add(self._next_session)
            return self._next_session

    def end_session(self, session_id: int) -> None:
        """Expiry or close: the session's ephemerals go (firing the others' watches), its own watches with it."""
        with self._lock:
            self.live_sessions.discard(session_id)
            self.drop_watches(session_id)
            ephemerals = sorted(p for p, n in self.nodes.items() if n.ephemeral_owner == session_id)
            fired = self._apply([("delete", p, -1) for p in ephemerals])[1] if ephemerals else []
        _fire(fired)

    def drop_watches(self, session_id: int) -> None:
        with self._lock:
            for watches in (*self._data_watches.values(), *self._child_watches.values()):
                watches.difference_update({w for w in watches if w[0] == session_id})

    # -- reads -----------------------------------------------------------------------------

    def children(self, path: str) -> list[str]:
        with self._lock:
            prefix = path.rstrip("/") + "/"
            return sorted(p[len(prefix):] for p in self.nodes if p.startswith(prefix) and "/" not in p[len(prefix):])

    def read(self, session_id: int, path: str, watch: Watch | None = None) -> tuple[bytes, ZnodeStat]:
        """getData: NoNodeError, and no watch left, when the znode is missing."""
        with self._lock:
            node = self.nodes.get(path)
            if node is None:
                raise NoNodeError()
            if watch is not None:
                self._data_watches.setdefault(path, set()).add((session_id, watch))
            return node.data, node.stat(len(self.children(path)))

    def stat(self, session_id: int, path: str, watch: Watch | None = None) -> ZnodeStat | None:
        """exists: leaves its watch whether or not the znode exists."""
        with self._lock:
            if watch is not None:
                self._data_watches.setdefault(path, set()).add((session_id, watch))
            node = self.nodes.get(path)
            return None if node is None else node.stat(len(self.children(path)))

    def list_children(self, session_id: int, path: str, watch: Watch | None = None) -> list[str]:
        with self._lock:
            if path not in self.nodes:
                raise NoNodeError()
            if watch is not None:
                self._child_watches.setdefault(path, set()).add((session_id, watch))
            return self.children(path)

    # -- writes ----------------------------------------------------------------------------

    def multi(self, ops: Sequence[Op]) -> list[Any]:
        """One transaction: every result, or (when one operation fails) RolledBackError for those
        before it, its own error, and RuntimeInconsistency for those after, as kazoo answers."""
        with self._lock:
            results, fired = self._apply(ops)
        _fire(fired)
        return results

    def write(self, op: Op) -> Any:
        """One operation: its result, or the error raised."""
        result = self.multi([op])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def ensure_path(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i])
            if prefix not in self.nodes:
                self.write(("create", prefix, b"", 0))

    def _apply(self, ops: Sequence[Op]) -> tuple[list[Any], list[tuple[Watch, WatchedEvent]]]:
        saved = dict(self.nodes)
        self._zxid += 1
        results: list[Any] = []
        events: list[tuple[str, str]] = []  # (path, event type) to fire once it all applied
        for i, op in enumerate(ops):
            try:
                results.append(self._one(op, events))
            except (NoNodeError, NodeExistsError, BadVersionError, NotEmptyError) as e:
                self.nodes = saved
                failed = [RolledBackError() for _ in results] + [e]
                return failed + [RuntimeInconsistency() for _ in ops[i + 1:]], []
        fired: list[tuple[Watch, WatchedEvent]] = []
        for path, kind in events:
            if kind == EventType.CHILD:
                watches = self._child_watches.pop(path, set())
            else:
                watches = self._data_watches.pop(path, set())
                if kind == EventType.DELETED:
                    watches |= self._child_watches.pop(path, set())
            fired.extend((w, WatchedEvent(kind, KeeperState.CONNECTED, path)) for _, w in sorted(
                watches, key=lambda sw: sw[0]))
        return results, fired

    def _one(self, op: Op, events: list[tuple[str, str]]) -> Any:
        kind, path = op[0], op[1]
        node = self.nodes.get(path)
        if kind == "check":
            if node is None:
                raise NoNodeError()
            if op[2] not in (-1, node.version):
                raise BadVersionError()
            return True
        if kind == "create":
            if node is not None:
                raise NodeExistsError()
            if _parent(path) not in self.nodes:
                raise NoNodeError()
            self.nodes[path] = ZNode(op[2], self._zxid, self._zxid, ephemeral_owner=op[3])
            events += [(path, EventType.CREATED), (_parent(path), EventType.CHILD)]
            return path
        if node is None:
            raise NoNodeError()
        if op[-1] not in (-1, node.version):
            raise BadVersionError()
        if kind == "set":
            self.nodes[path] = replace(node, data=op[2], mzxid=self._zxid, version=node.version + 1)
            events.append((path, EventType.CHANGED))
            return self.nodes[path].stat(len(self.children(path)))
        if self.children(path):
            raise NotEmptyError()
        del self.nodes[path]
        events += [(path, EventType.DELETED), (_parent(path), EventType.CHILD)]
        return True

    # -- what a test reads or arranges, as an operator or a previous controller would --------

    def controller_id(self) -> int | None:
        node = self.nodes.get(zk_data.CONTROLLER_PATH)
        return None if node is None else zk_data.decode_controller(node.data)

    def controller_epoch(self) -> tuple[int, int] | None:
        node = self.nodes.get(zk_data.CONTROLLER_EPOCH_PATH)
        return None if node is None else (zk_data.decode_controller_epoch(node.data), node.version)

    def partition_state(self, tp: TopicPartition) -> zk_data.PartitionStateZNode | None:
        node = self.nodes.get(zk_data.partition_state_path(*tp))
        return None if node is None else zk_data.decode_partition_state("", node.data, node.version)

    def set_partition_state(
        self, tp: TopicPartition, leader: int, isr: Sequence[int], leader_epoch: int = 0, controller_epoch: int = 0
    ) -> None:
        """The state a previous controller (or a leader's ISR change) left."""
        path = zk_data.partition_state_path(*tp)
        data = zk_data.encode_partition_state(leader, leader_epoch, tuple(isr), controller_epoch)
        if path in self.nodes:
            self.write(("set", path, data, -1))
        else:
            self.ensure_path(_parent(path))
            self.write(("create", path, data, 0))

    def create_topic(self, topic: str, partitions: dict[int, tuple[int, ...]], config: dict[str, str] | None = None
                     ) -> None:
        """AdminZkClient.createTopicWithAssignment's znodes: config first, then the assignment."""
        self.write(("create", zk_data.topic_config_path(topic), zk_data.encode_topic_config(config or {}), 0))
        assignment = zk_data.TopicAssignment(topic, partitions, zk_data.new_uuid())
        self.write(("create", zk_data.topic_path(topic), zk_data.encode_topic_assignment(assignment), 0))

    def delete(self, path: str) -> None:
        """An operator's unconditional delete (as `zkCli.sh delete /controller` moves the controller)."""
        self.write(("delete", path, -1))


def _fire(fired: list[tuple[Watch, WatchedEvent]]) -> None:
    for watch, event in fired:
        watch(event)


# -- one broker's session ------------------------------------------------------------------------


class FakeKafkaZkClient:
    """KafkaZkClient's contract on a FakeZooKeeper. Requests never fail for the connection: the
    real adapter retries them until the session is usable, so its callers only ever see the
    answers below."""

    def __init__(self, zookeeper: FakeZooKeeper,
                 on_session_event: Callable[[SessionEvent], None] | None = None) -> None:
        self.zookeeper = zookeeper
        self._on_session_event = on_session_event or (lambda _event: None)
        self._session_id: int | None = zookeeper.open_session()
        self._untold_expiry = False

    # -- session -------------------------------------------------------------------------

    @property
    def session_id(self) -> int | None:
        return self._session_id

    def set_session_listener(self, listener: Callable[[SessionEvent], None]) -> None:
        self._on_session_event = listener

    def close(self) -> None:
        """As the real close: ZooKeeper drops the session's ephemerals at once; nothing is reported."""
        if self._session_id is not None:
            self.zookeeper.end_session(self._session_id)
        self._session_id = None

    def expire_session(self, told: bool = True) -> None:
        """ZooKeeper expires the session. `told`: the client hears at once (kazoo's LOST, then
        a new session: EXPIRED, NEW_SESSION); otherwise it hears on its next request, as a
        broker paused past its session timeout does, and that request goes out on the new session."""
        assert self._session_id is not None
        self.zookeeper.end_session(self._session_id)
        self._untold_expiry = True
        if told:
            self._session()

    def reconnect(self, while_away: Callable[[], None] = lambda: None) -> None:
        """The connection drops and comes back on the same session. kazoo loses every watch
        meanwhile (the adapter's RECONNECTED says so), so what `while_away` changes fires nothing here."""
        assert self._session_id is not None
        self.zookeeper.drop_watches(self._session_id)
        self._on_session_event(SessionEvent.DISCONNECTED)
        while_away()
        self._on_session_event(SessionEvent.RECONNECTED)

    def _session(self) -> int:
        if self._untold_expiry:
            self._untold_expiry = False
            self._on_session_event(SessionEvent.EXPIRED)
            self._session_id = self.zookeeper.open_session()
            self._on_session_event(SessionEvent.NEW_SESSION)
        assert self._session_id is not None, "request on a closed client"
        return self._session_id

    # -- plain reads -------------------------------------------------------------------------

    def get_data(self, path: str, watch: Watch | None = None) -> tuple[bytes, ZnodeStat] | None:
        try:
            return self.zookeeper.read(self._session(), path, watch)
        except NoNodeError:
            return None

    def exists(self, path: str, watch: Watch | None = None) -> ZnodeStat | None:
        return self.zookeeper.stat(self._session(), path, watch)

    def get_children(self, path: str, watch: Watch | None = None) -> list[str]:
        try:
            return self.zookeeper.list_children(self._session(), path, watch)
        except NoNodeError:
            return []

    # -- broker registration ---------------------------------------------------------------

    def register_broker(self, info: BrokerInfo) -> int:
        """The ephemeral /brokers/ids/<id>; its czxid is the broker epoch. A znode this session
        already owns is ours (checkedEphemeralCreate); another session's is BrokerIdInUseError."""
        session = self._session()
        path = zk_data.broker_id_path(info.broker_id)
        with contextlib.suppress(NodeExistsError):
            self.zookeeper.write(("create", path, zk_data.encode_broker_info(info), session))
        found = self.zookeeper.stat(session, path)
        if found is None or found.ephemeralOwner != session:
            raise BrokerIdInUseError(f"Broker id {info.broker_id} is already registered")
        return found.czxid

    def get_brokers(self, watch: Watch | None = None) -> tuple[list[BrokerInfo], list[str]]:
        brokers, malformed = [], []
        for child in self.get_children(zk_data.BROKER_IDS_PATH, watch=watch):
            broker_id = zk_data.parse_broker_id(child)
            if broker_id is None:
                malformed.append(f"{zk_data.BROKER_IDS_PATH}/{child}: not a broker id")
                continue
            found = self.get_data(zk_data.broker_id_path(broker_id))
            if found is None:
                continue
            try:
                brokers.append(zk_data.decode_broker_info(broker_id, found[0], found[1].czxid))
            except ZNodeDecodeError as e:
                malformed.append(str(e))
        return brokers, malformed

    # -- controller election and fencing ---------------------------------------------------

    def get_controller(self, watch: Watch | None = None) -> ControllerZNode | None:
        """A data watch when /controller exists, an exists watch (for its creation) when not."""
        found = self.get_data(zk_data.CONTROLLER_PATH, watch=watch)
        if found is None:
            if watch is not None and self.exists(zk_data.CONTROLLER_PATH, watch=watch) is not None:
                return self.get_controller(watch)
            return None
        try:
            return ControllerZNode(zk_data.decode_controller(found[0]), found[1].version)
        except ZNodeDecodeError as e:
            return ControllerZNode(None, found[1].version, malformed=str(e))

    def delete_controller_if_version(self, zk_version: int) -> bool:
        self._session()
        try:
            self.zookeeper.write(("delete", zk_data.CONTROLLER_PATH, zk_version))
            return True
        except (NoNodeError, BadVersionError):
            return False

    def get_controller_epoch(self) -> tuple[int, int] | None:
        found = self.get_data(zk_data.CONTROLLER_EPOCH_PATH)
        if found is None:
            return None
        try:
            return zk_data.decode_controller_epoch(found[0]), found[1].version
        except ZNodeDecodeError:
            return found[1].version, found[1].version

    def register_controller_and_increment_epoch(self, broker_id: int) -> tuple[int, int]:
        """The race: one multi creating the ephemeral /controller and bumping /controller_epoch
        conditionally on the version read; ControllerMovedError for the loser."""
        session = self._session()
        if self.get_controller_epoch() is None:
            with contextlib.suppress(NodeExistsError):
                self.zookeeper.write(("create", zk_data.CONTROLLER_EPOCH_PATH,
                                      zk_data.encode_controller_epoch(zk_data.INITIAL_CONTROLLER_EPOCH), 0))
        # No answer is ever lost here, so the real adapter's check that a failed race was in
        # fact its own multi applied (checkControllerAndEpoch) has nothing to find.
        epoch_and_version = self.get_controller_epoch()
        assert epoch_and_version is not None
        epoch, epoch_zk_version = epoch_and_version
        results = self.zookeeper.multi([
            ("create", zk_data.CONTROLLER_PATH, zk_data.encode_controller(broker_id), session),
            ("set", zk_data.CONTROLLER_EPOCH_PATH, zk_data.encode_controller_epoch(epoch + 1), epoch_zk_version),
        ])
        if not isinstance(results[1], Exception):
            return epoch + 1, results[1].version
        current = self.get_controller()
        raise ControllerMovedError(
            f"Controller moved to {current.controller_id if current else 'nobody'} "
            f"while broker {broker_id} raced for epoch {epoch + 1}"
        )

    def _fenced_async(self, epoch_zk_version: int, items: dict[Any, list[Op]]) -> Callable[[], dict[Any, list[Any]]]:
        """KafkaZkClient._fenced_chunks_async: items packed into multis of up to multi_ops
        operations, each behind a check of /controller_epoch's version. The multis are applied as
        they are sent; ControllerMovedError comes when the answers are gathered, and only then, as
        in the real adapter (a fenced chunk does not undo the chunks before it). An item whose
        multi failed on another item's operation is sent again, still fenced."""
        if epoch_zk_version < 0:
            raise ControllerMovedError("this broker holds no controller epoch")
        self._session()
        chunks: list[list[Any]] = [[]]
        size = 0
        for key in items:
            if size + len(items[key]) > self.zookeeper.multi_ops and chunks[-1]:
                chunks.append([])
                size = 0
            chunks[-1].append(key)
            size += len(items[key])
        answers = []
        for chunk in chunks:
            ops = [("check", zk_data.CONTROLLER_EPOCH_PATH, epoch_zk_version)]
            for key in chunk:
                ops.extend(items[key])
            answers.append(self.zookeeper.multi(ops))
            if self.zookeeper.after_fenced_multi is not None:
                self.zookeeper.after_fenced_multi(self, list(chunk))

        def gather() -> dict[Any, list[Any]]:
            results: dict[Any, list[Any]] = {}
            rolled_back: dict[Any, list[Op]] = {}
            for chunk, answer in zip(chunks, answers, strict=True):
                if isinstance(answer[0], (BadVersionError, NoNodeError)):
                    current = self.zookeeper.controller_epoch()
                    raise ControllerMovedError(
                        f"the check on {zk_data.CONTROLLER_EPOCH_PATH} failed: this controller's zk version is "
                        f"{epoch_zk_version}, ZooKeeper's is {current[1] if current else 'none'}"
                    )
                position = 1
                for key in chunk:
                    ops = answer[position:position + len(items[key])]
                    position += len(items[key])
                    failure = next((r for r in ops if isinstance(r, Exception)
                                    and not isinstance(r, (RolledBackError, RuntimeInconsistency))), None)
                    if failure is not None:
                        results[key] = [failure]
                    elif any(isinstance(r, Exception) for r in ops):
                        rolled_back[key] = items[key]
                    else:
                        results[key] = list(ops)
            if rolled_back:
                results.update(self._fenced_async(epoch_zk_version, rolled_back)())
            return results

        return gather

    def _fenced(self, epoch_zk_version: int, items: dict[Any, list[Op]]) -> dict[Any, list[Any]]:
        return self._fenced_async(epoch_zk_version, items)()

    def delete_controller(self, epoch_zk_version: int) -> bool:
        """Fenced delete of /controller; False if it is gone, ControllerMovedError if the fence moved."""
        results = self._fenced(epoch_zk_version, {0: [("delete", zk_data.CONTROLLER_PATH, -1)]})[0]
        return not isinstance(results[0], Exception)

    # -- topics and partitions ---------------------------------------------------------------

    def get_all_topics(self, watch: Watch | None = None) -> list[str]:
        return sorted(self.get_children(zk_data.BROKER_TOPICS_PATH, watch=watch))

    def get_topic_assignments(self, topics: Sequence[str]) -> tuple[dict[str, zk_data.TopicAssignment], list[str]]:
        assignments, malformed = {}, []
        for topic in topics:
            found = self.get_data(zk_data.topic_path(topic))
            if found is None:
                continue
            try:
                assignments[topic] = zk_data.decode_topic_assignment(topic, found[0])
            except ZNodeDecodeError as e:
                malformed.append(str(e))
        return assignments, malformed

    def get_topic_configs(self, topics: Sequence[str]) -> dict[str, dict[str, str]]:
        configs = {}
        for topic in topics:
            found = self.get_data(zk_data.topic_config_path(topic))
            try:
                configs[topic] = {} if found is None else zk_data.decode_topic_config(topic, found[0])
            except ZNodeDecodeError:
                configs[topic] = {}
        return configs

    def get_partition_states(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition,
                                                                                  zk_data.PartitionStateZNode]:
        """The state znodes that exist and decode; the others are left out."""
        states = {}
        for tp in partitions:
            path = zk_data.partition_state_path(*tp)
            found = self.get_data(path)
            if found is None:
                continue
            try:
                states[tp] = zk_data.decode_partition_state(path, found[0], found[1].version)
            except ZNodeDecodeError:
                continue
        return states

    def create_partition_states(
        self, epoch_zk_version: int, states: dict[TopicPartition, bytes]
    ) -> dict[TopicPartition, int | Exception]:
        """Fenced creation of new partitions' state znodes and their parents: each one's zk
        version (0), or ZooKeeper's error (NodeExistsError: created before)."""
        parents = {
            ("parent", t): [("create", zk_data.topic_partitions_path(t), b"", 0)]
            for t in sorted({t for t, _ in states}) if self.exists(zk_data.topic_partitions_path(t)) is None
        }
        if parents:
            self._fenced(epoch_zk_version, parents)
        items: dict[Any, list[Op]] = {}
        for tp, data in states.items():
            ops: list[Op] = []
            if self.exists(zk_data.partition_path(*tp)) is None:
                ops.append(("create", zk_data.partition_path(*tp), b"", 0))
            ops.append(("create", zk_data.partition_state_path(*tp), data, 0))
            items[tp] = ops
        answers = self._fenced(epoch_zk_version, items)
        return {tp: (answer[0] if isinstance(answer[0], Exception) else 0) for tp, answer in answers.items()}

    def update_partition_states_async(
        self, epoch_zk_version: int, states: dict[TopicPartition, tuple[bytes, int]]
    ) -> Callable[[], dict[TopicPartition, int | Exception]]:
        """Conditional, fenced updates: each one's new zk version, or BadVersionError when its
        partition epoch moved."""
        answered = self._fenced_async(
            epoch_zk_version,
            {tp: [("set", zk_data.partition_state_path(*tp), data, version)] for tp, (data, version) in states.items()},
        )

        def gather() -> dict[TopicPartition, int | Exception]:
            return {tp: (answer[0] if isinstance(answer[0], Exception) else answer[0].version)
                    for tp, answer in answered().items()}

        return gather

    def update_partition_states(
        self, epoch_zk_version: int, states: dict[TopicPartition, tuple[bytes, int]]
    ) -> dict[TopicPartition, int | Exception]:
        return self.update_partition_states_async(epoch_zk_version, states)()

    def get_topic_deletions(self, watch: Watch | None = None) -> list[str]:
        return sorted(self.get_children(zk_data.DELETE_TOPICS_PATH, watch=watch))

    def mark_topic_for_deletion(self, topic: str) -> None:
        self._session()
        with contextlib.suppress(NodeExistsError):
            self.zookeeper.write(("create", zk_data.delete_topic_path(topic), b"", 0))

    def delete_topic_znodes(self, epoch_zk_version: int, topic: str) -> None:
        """Fenced removal of the topic's znodes, leaves first, then its config and its deletion mark."""
        partitions = [int(p) for p in self.get_children(zk_data.topic_partitions_path(topic)) if p.isdigit()]
        candidates = [zk_data.partition_state_path(topic, p) for p in partitions]
        candidates += [zk_data.partition_path(topic, p) for p in partitions]
        candidates += [zk_data.topic_partitions_path(topic), zk_data.topic_path(topic)]
        paths = [path for path in candidates if self.exists(path) is not None]
        if paths:
            self._fenced(epoch_zk_version, {0: [("delete", path, -1) for path in paths]})
        for path in (zk_data.topic_config_path(topic), zk_data.delete_topic_path(topic)):
            self._fenced(epoch_zk_version, {0: [("delete", path, -1)]})

    def get_preferred_replica_election(self, watch: Watch | None = None) -> list[TopicPartition] | None:
        found = self.get_data(zk_data.PREFERRED_REPLICA_ELECTION_PATH, watch=watch)
        if found is None:
            if watch is not None and self.exists(zk_data.PREFERRED_REPLICA_ELECTION_PATH, watch=watch) is not None:
                return self.get_preferred_replica_election(watch)
            return None
        try:
            return zk_data.decode_partitions_list(zk_data.PREFERRED_REPLICA_ELECTION_PATH, found[0])
        except ZNodeDecodeError:
            return []

    def delete_preferred_replica_election(self, epoch_zk_version: int) -> None:
        self._fenced(epoch_zk_version, {0: [("delete", zk_data.PREFERRED_REPLICA_ELECTION_PATH, -1)]})

    def get_isr_change_notifications(self, children: Sequence[str]) -> list[TopicPartition]:
        partitions: set[TopicPartition] = set()
        for child in children:
            found = self.get_data(f"{zk_data.ISR_CHANGE_NOTIFICATION_PATH}/{child}")
            if found is None:
                continue
            try:
                partitions.update(zk_data.decode_partitions_list(child, found[0]))
            except ZNodeDecodeError:
                continue
        return sorted(partitions)

    def delete_isr_change_notifications(self, epoch_zk_version: int, children: Sequence[str]) -> int:
        self._fenced(epoch_zk_version,
                     {c: [("delete", f"{zk_data.ISR_CHANGE_NOTIFICATION_PATH}/{c}", -1)] for c in children})
        return len(children)


# -- the brokers' side -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionStateSent:
    """One partition's state in a LeaderAndIsr or UpdateMetadata request."""

    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    zk_version: int
    replicas: tuple[int, ...]
    offline_replicas: tuple[int, ...]
    is_new: bool


@dataclass(frozen=True)
class Sent:
    """One request as the broker would receive it."""

    broker_id: int
    method: str  # LeaderAndIsr, UpdateMetadata, StopReplica
    controller_id: int
    controller_epoch: int
    partitions: dict[TopicPartition, PartitionStateSent] = field(default_factory=dict)
    live_brokers: tuple[int, ...] = ()  # UpdateMetadata
    stop: dict[TopicPartition, bool] = field(default_factory=dict)  # StopReplica: delete or not


def _state(s: Any) -> PartitionStateSent:
    return PartitionStateSent(s.leader, s.leader_epoch, tuple(s.isr), s.zk_version, tuple(s.replicas),
                              tuple(s.offline_replicas), s.is_new)


_RESPONSES = {
    "LeaderAndIsr": kafka_pb2.LeaderAndIsrResponse,
    "UpdateMetadata": kafka_pb2.UpdateMetadataResponse,
    "StopReplica": kafka_pb2.StopReplicaResponse,
}


class RecordingChannelManager:
    """The ChannelManager the controller sends through, with every broker answering at once.
    As in ControllerChannelManager, a request to a broker the controller has not added (or has
    removed) goes nowhere."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.brokers: set[int] = set()
        self._sent: list[Sent] = []

    def add_broker(self, broker: BrokerInfo) -> None:
        with self._lock:
            self.brokers.add(broker.broker_id)

    def remove_broker(self, broker_id: int) -> None:
        with self._lock:
            self.brokers.discard(broker_id)

    def shutdown(self) -> None:
        with self._lock:
            self.brokers.clear()

    def send(self, broker_id: int, method: str, request: Any, callback: Callable[[Any], None] | None = None) -> None:
        with self._lock:
            if broker_id not in self.brokers:
                return
            if method == "StopReplica":
                sent = Sent(broker_id, method, request.controller_id, request.controller_epoch,
                            stop={(p.topic, p.partition): p.delete_partition for p in request.partitions})
            else:
                live = request.live_brokers if method == "UpdateMetadata" else ()
                sent = Sent(broker_id, method, request.controller_id, request.controller_epoch,
                            {(s.topic, s.partition): _state(s) for s in request.partition_states},
                            tuple(b.broker_id for b in live))
            self._sent.append(sent)
        if callback is not None:
            callback(_RESPONSES[method](error_code=Errors.NONE.code))

    def sent(self, method: str | None = None, broker_id: int | None = None) -> list[Sent]:
        with self._lock:
            return [s for s in self._sent if (method is None or s.method == method)
                    and (broker_id is None or s.broker_id == broker_id)]

    def last_state(self, broker_id: int, tp: TopicPartition, method: str = "LeaderAndIsr") -> PartitionStateSent | None:
        """The latest state of `tp` a broker was sent."""
        for s in reversed(self.sent(method, broker_id)):
            if tp in s.partitions:
                return s.partitions[tp]
        return None

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()
