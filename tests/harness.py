"""The live-cluster test harness, in the spirit of kazoo's: a real ZooKeeper server, a chroot per
test, real broker processes, and the means to hurt them.

Every broker reaches ZooKeeper through its own TCP proxy, so a test can cut one broker off
ZooKeeper (and so expire its session) while the process runs on.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from kazoo.client import KazooClient

from client.admin import AdminClient, ClusterDescription
from client.security import PLAINTEXT, read_command_config
from client.tooling.certs import make_cluster_certs
from client.tooling.local_cluster import SECURE_CLIENTS, BrokerProcess
from client.tooling.processes import free_port, wait_until
from client.tooling.zookeeper import ZkProxy, ZooKeeperServer

# Short sessions keep failover tests quick; ZooKeeper's tickTime of 500 ms allows them.
DEFAULT_SESSION_TIMEOUT_MS = 4000


# __consumer_offsets partitions in the group tests' clusters (Kafka's 50 take longer to create).
OFFSETS_PARTITIONS = 10


@dataclass(frozen=True)
class ControllerState:
    controller_id: int
    epoch: int
    epoch_zk_version: int


class ClusterHarness:
    """Brokers of one test, in that test's chroot of the ZooKeeper server."""

    def __init__(self, zookeeper: ZooKeeperServer, chroot: str, work_dir: Path) -> None:
        self.zookeeper = zookeeper
        self.chroot = chroot
        self.work_dir = work_dir
        self.brokers: dict[int, BrokerProcess] = {}
        self.proxies: dict[int, ZkProxy] = {}
        self.certs: Path | None = None  # with use_tls(): every broker's one listener is SSL
        self.security = PLAINTEXT  # how admin() connects
        root = KazooClient(hosts=zookeeper.connect, timeout=10)
        root.start(timeout=15)
        root.ensure_path(chroot)
        root.stop()
        root.close()
        self.zk = KazooClient(hosts=zookeeper.connect + chroot, timeout=10)
        self.zk.start(timeout=15)

    # -- brokers --------------------------------------------------------------------------

    def use_tls(self) -> Path:
        """Brokers started from now on listen on SSL only, require client certificates and
        speak SSL to each other; admin() connects as `admin`. Returns the certificates' directory
        (clients admin, alice and bob)."""
        self.certs = self.work_dir / "certs"
        make_cluster_certs(self.certs, [1, 2, 3, 4, 5], SECURE_CLIENTS)
        self.security = read_command_config(str(self.certs / "admin.properties"))
        return self.certs

    def start_broker(
        self,
        broker_id: int,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        wait: bool = True,
        kafka_protocol: bool = False,
        **overrides: str,
    ) -> BrokerProcess:
        """Broker `broker_id`, with `kafka_protocol` a second listener that speaks Kafka's protocol."""
        if broker_id not in self.proxies:
            self.proxies[broker_id] = ZkProxy(self.zookeeper.host, self.zookeeper.port)
        proxy = self.proxies[broker_id]
        properties = {"zookeeper.session.timeout.ms": str(session_timeout_ms), **overrides}
        broker = self.brokers.get(broker_id)
        if broker is None:
            broker = BrokerProcess(
                broker_id,
                f"127.0.0.1:{proxy.port}{self.chroot}",
                self.work_dir / f"broker-{broker_id}",
                overrides=properties,
                certs=self.certs,
                kafka_port=free_port() if kafka_protocol else None,
            )
            self.brokers[broker_id] = broker
        broker.start()
        if wait:
            self.wait_registered(broker_id)
        return broker

    def start_brokers(self, *broker_ids: int, **kwargs: object) -> None:
        for broker_id in broker_ids:
            self.start_broker(broker_id, wait=False, **kwargs)  # type: ignore[arg-type]
        for broker_id in broker_ids:
            self.wait_registered(broker_id)

    def wait_registered(self, broker_id: int, timeout: float = 30) -> int:
        """Wait for the broker's registration; returns its broker epoch."""
        broker = self.brokers[broker_id]

        def registered() -> int | None:
            if not broker.running:
                raise AssertionError(f"broker {broker_id} exited with status {broker.returncode}")
            stat = self.zk.exists(f"/brokers/ids/{broker_id}")
            return stat.czxid if stat else None

        return wait_until(registered, timeout, f"broker {broker_id} to register")

    def expire_session(self, broker_id: int, timeout: float = 30) -> None:
        """Cut the broker off ZooKeeper until ZooKeeper expires its session, then reconnect it."""
        stat = self.zk.exists(f"/brokers/ids/{broker_id}")
        assert stat is not None, f"broker {broker_id} is not registered"
        self.proxies[broker_id].cut()
        try:
            wait_until(
                lambda: not self._owned_by(broker_id, stat.ephemeralOwner),
                timeout,
                f"ZooKeeper to expire broker {broker_id}'s session",
            )
        finally:
            self.proxies[broker_id].heal()

    def _owned_by(self, broker_id: int, session_id: int) -> bool:
        stat = self.zk.exists(f"/brokers/ids/{broker_id}")
        return stat is not None and stat.ephemeralOwner == session_id

    # -- what ZooKeeper says ------------------------------------------------------------

    def read_json(self, path: str) -> dict:
        data, _ = self.zk.get(path)
        return json.loads(data)

    def controller(self) -> ControllerState | None:
        try:
            data, _ = self.zk.get("/controller")
            epoch_data, epoch_stat = self.zk.get("/controller_epoch")
        except Exception:
            return None
        try:
            controller_id = json.loads(data)["brokerid"]
        except (ValueError, KeyError, TypeError):
            return None
        return ControllerState(controller_id, int(epoch_data), epoch_stat.version)

    def wait_for_controller(self, timeout: float = 30, other_than: int | None = None,
                            epoch_above: int = 0) -> ControllerState:
        def elected() -> ControllerState | None:
            state = self.controller()
            if state is None or state.controller_id == other_than or state.epoch <= epoch_above:
                return None
            return state

        return wait_until(elected, timeout, f"a controller other than {other_than} above epoch {epoch_above}")

    def registered_ids(self) -> set[int]:
        return {int(c) for c in self.zk.get_children("/brokers/ids") if c.isdigit()}

    def admin(self, *broker_ids: int, timeout_s: float = 10) -> AdminClient:
        ids = broker_ids or tuple(b for b, p in self.brokers.items() if p.running)
        return AdminClient(",".join(self.brokers[b].address for b in ids), timeout_s=timeout_s,
                           security=self.security)

    def describe(self, *broker_ids: int) -> ClusterDescription:
        return self.admin(*broker_ids).describe_cluster()

    def log(self, broker_id: int) -> str:
        return self.brokers[broker_id].log_text()

    def wait_for_log(self, broker_id: int, text: str, timeout: float = 30) -> str:
        return wait_until(
            lambda: text in self.log(broker_id) and self.log(broker_id),
            timeout,
            f"broker {broker_id} to log {text!r}",
        )

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        for broker in self.brokers.values():
            broker.resume()
            broker.kill()
        for proxy in self.proxies.values():
            proxy.close()
        with contextlib.suppress(Exception):
            self.zk.delete("/", recursive=True)
        with contextlib.suppress(Exception):
            self.zk.stop()
            self.zk.close()
