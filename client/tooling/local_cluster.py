"""A cluster of real processes on 127.0.0.1: Debian's ZooKeeper server and N brokers.

The base of `minikafka local-cluster`, of the chaos tool and of the test harness. Nothing here is in-process:
ZooKeeper is the Java server from Debian's `zookeeper` package and each broker is its own
`python -m broker` process, so signals (SIGKILL, SIGSTOP, SIGTERM) do what they do in production.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from kazoo.client import KazooClient

from client.tooling.certs import broker_principal_name, make_cluster_certs, super_users
from client.tooling.processes import free_port, wait_until
from client.tooling.zookeeper import ZooKeeperServer


class BrokerProcess:
    """One `minikafka-broker` process with a fixed id, port and log directory."""

    def __init__(
        self,
        broker_id: int,
        zookeeper_connect: str,
        work_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        overrides: Mapping[str, str] | None = None,
        certs: Path | None = None,
        kafka_port: int | None = None,
    ) -> None:
        """With `certs` (a directory `minikafka certs` wrote), the broker's one listener is SSL,
        requires client certificates and is also the brokers' own, and the ACL authorizer is on
        with the brokers and the client `admin` as super users. With `kafka_port`, a second
        listener, KAFKA, speaks Kafka's wire protocol there (for Kafka's own clients)."""
        self.broker_id = broker_id
        self.host = host
        self.port = port or free_port(host)
        self.kafka_port = kafka_port
        self.work_dir = Path(work_dir)
        self.log_path = self.work_dir / "broker.log"
        security = {} if certs is None else {
            "ssl.keystore.location": str(Path(certs) / f"{broker_principal_name(broker_id)}.pem"),
            "ssl.truststore.location": str(Path(certs) / "ca.pem"),
            "ssl.client.auth": "required",
            "authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
            "super.users": super_users(Path(certs)),
        }
        listener = "PLAINTEXT" if certs is None else "SSL"
        kafka_listener = {} if kafka_port is None else {
            "kafka.protocol.listener.names": "KAFKA",
            "listener.security.protocol.map": f"{listener}:{listener},KAFKA:PLAINTEXT",
        }
        self.properties = {
            "broker.id": str(broker_id),
            "listeners": f"{listener}://{host}:{self.port}" + (
                f",KAFKA://{host}:{kafka_port}" if kafka_port is not None else ""),
            "inter.broker.listener.name": listener,
            **kafka_listener,
            "zookeeper.connect": zookeeper_connect,
            "log.dirs": str(self.work_dir / "data"),
            **security,
            **(overrides or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def kafka_address(self) -> str | None:
        """host:port of the Kafka-protocol listener, if the broker has one."""
        return None if self.kafka_port is None else f"{self.host}:{self.kafka_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process else None

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        props = self.work_dir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in self.properties.items()))
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIKAFKA_")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "broker", str(props)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        log.close()

    def _signal(self, signum: int) -> None:
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signum)

    def kill(self) -> None:
        """SIGKILL: the broker dies on the spot, its session expires later."""
        self._signal(signal.SIGKILL)
        if self._process is not None:
            self._process.wait()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM: a clean shutdown; returns the exit status."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self._process.returncode

    def wait(self, timeout: float) -> int:
        assert self._process is not None
        return self._process.wait(timeout)

    def restart(self) -> None:
        if self.running:
            self.kill()
        self.start()

    def exit_reason(self) -> str:
        """Why an exited broker stopped: its own one-line error, else where its log is."""
        errors = [line for line in self.log_text().splitlines() if line.startswith("minikafka-broker: error: ")]
        reason = errors[-1].removeprefix("minikafka-broker: error: ") if errors else "no error line"
        return f"{reason}; see {self.log_path}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


SECURE_CLIENTS = ("admin", "alice", "bob")


class LocalCluster:
    """ZooKeeper plus brokers 1..N, as `minikafka local-cluster` runs them."""

    def __init__(self, work_dir: Path, brokers: int, zookeeper_port: int | None = None,
                 base_port: int | None = None, overrides: Mapping[str, str] | None = None,
                 secure: bool = False, kafka_base_port: int | None = None) -> None:
        """`secure`: SSL listeners with client certificates, between the brokers too; the CA and
        the certificates (brokers, and the clients `admin`, `alice` and `bob`) are in work_dir/certs.
        Unless secure, each broker also has a Kafka-protocol listener (PLAINTEXT), for Kafka's own
        clients: broker N on kafka_base_port + N - 1, or on a free port."""
        self.work_dir = Path(work_dir)
        self.certs: Path | None = None
        # The brokers' ZooKeeper login when secure: their znodes are theirs alone to change.
        self.zookeeper_auth: dict[str, str] = {}
        if secure:
            self.certs = self.work_dir / "certs"
            make_cluster_certs(self.certs, range(1, brokers + 1), SECURE_CLIENTS)
            self.zookeeper_auth = {"zookeeper.set.acl": "true",
                                   "zookeeper.auth.digest": f"kafka:{secrets.token_hex(12)}"}
        self.zookeeper = ZooKeeperServer(self.work_dir / "zookeeper", port=zookeeper_port)
        # Under a chroot, which the brokers create with their ACL: ZooKeeper's root znode is
        # open to all, and anyone may delete and create the children of an open znode.
        self.chroot = "/minikafka" if secure else ""
        # Brokers stop together here: a last broker cannot hand its leaderships to anyone, so
        # keep its controlled shutdown retries short (Kafka's default backoff is 5 s).
        overrides = {"controlled.shutdown.retry.backoff.ms": "1000", **self.zookeeper_auth, **(overrides or {})}
        self.brokers = [
            BrokerProcess(
                broker_id,
                self.zookeeper_connect,
                self.work_dir / f"broker-{broker_id}",
                port=(base_port + broker_id - 1) if base_port else None,
                overrides=overrides,
                certs=self.certs,
                # The Kafka-protocol listener is PLAINTEXT only: a secure cluster has none.
                kafka_port=None if secure else (kafka_base_port + broker_id - 1) if kafka_base_port else free_port(),
            )
            for broker_id in range(1, brokers + 1)
        ]

    @property
    def zookeeper_connect(self) -> str:
        """The brokers' zookeeper.connect."""
        return self.zookeeper.connect + self.chroot

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.address for b in self.brokers)

    @property
    def kafka_bootstrap_servers(self) -> str:
        """The brokers' Kafka-protocol listeners, for kafka-python, aiokafka, librdkafka, kcat;
        empty on a secure cluster, which has none."""
        return ",".join(b.kafka_address for b in self.brokers if b.kafka_address is not None)

    def start(self) -> None:
        self.zookeeper.start()
        for broker in self.brokers:
            broker.start()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every broker is registered in ZooKeeper and a controller is elected."""
        zk = KazooClient(hosts=self.zookeeper.connect)  # the chroot may not be there yet
        zk.start()
        try:
            wait_until(lambda: len(zk.get_children(f"{self.chroot}/brokers/ids")) == len(self.brokers)
                       and zk.exists(f"{self.chroot}/controller"),
                       timeout, "every broker registered and a controller")
        finally:
            zk.stop()
            zk.close()

    def kill(self) -> None:
        """SIGKILL every broker, then stop ZooKeeper: a benchmark's quick end."""
        for broker in self.brokers:
            broker.kill()
        self.zookeeper.stop()

    def stop(self) -> None:
        for broker in self.brokers:
            broker._signal(signal.SIGTERM)
        for broker in self.brokers:
            broker.terminate()
        self.zookeeper.stop()
