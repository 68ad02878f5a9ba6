"""A cluster of real processes on 127.0.0.1: Debian's ZooKeeper server and N brokers.

The base of `minikafka local-cluster` and of the test harness. Nothing here is in-process:
ZooKeeper is the Java server from Debian's `zookeeper` package and each broker is its own
`python -m broker` process, so signals (SIGKILL, SIGSTOP, SIGTERM) do what they do in production.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from kazoo.client import KazooClient

T = TypeVar("T")

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
ZOOKEEPER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


class LocalClusterError(Exception):
    """A process of the local cluster could not be started; the message is one line."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], T], timeout: float, description: str, interval: float = 0.05) -> T:
    """Poll until `condition` returns something truthy; AssertionError naming it after `timeout`.

    A condition raising AssertionError or LocalClusterError ends the wait at once: that is a
    verdict, not a cluster still settling."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (AssertionError, LocalClusterError):
            raise
        except Exception as e:  # a condition may fail while a cluster settles
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {description}{detail}")
        time.sleep(interval)


def zookeeper_installed() -> bool:
    return ZOOKEEPER_JAR.exists() and shutil.which("java") is not None


def four_letter_word(host: str, port: int, word: str, timeout: float = 1.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@dataclass(frozen=True)
class QuorumPeer:
    """One server of a ZooKeeper ensemble: its myid and its client, quorum and election ports."""

    server_id: int
    client_port: int
    quorum_port: int
    election_port: int


class ZooKeeperServer:
    """A ZooKeeper server whose data survives restarts (same directory, same port): standalone, or
    server `server_id` of an ensemble of `peers`."""

    def __init__(
        self, data_dir: Path, port: int | None = None, tick_time_ms: int = 500, host: str = "127.0.0.1",
        server_id: int | None = None, peers: tuple[QuorumPeer, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.tick_time_ms = tick_time_ms
        self.server_id = server_id
        self.peers = peers
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connect(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_config(self) -> Path:
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "zoo.cfg"
        config.write_text(
            f"tickTime={self.tick_time_ms}\n"
            f"dataDir={self.data_dir / 'data'}\n"
            f"clientPort={self.port}\n"
            f"clientPortAddress={self.host}\n"
            # Session timeouts from 2 ticks up to a minute, so tests can use short ones.
            "maxSessionTimeout=60000\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok,srvr,mntr,cons\n"
            + self._quorum_config()
        )
        return config

    def _quorum_config(self) -> str:
        if not self.peers:
            return ""
        (self.data_dir / "data" / "myid").write_text(f"{self.server_id}\n")
        return "initLimit=10\nsyncLimit=5\n" + "".join(
            f"server.{p.server_id}={self.host}:{p.quorum_port}:{p.election_port}\n" for p in self.peers)

    def mode(self) -> str | None:
        """`leader`, `follower` or `standalone` as the server says (srvr), None if it does not answer."""
        try:
            answer = four_letter_word(self.host, self.port, "srvr")
        except OSError:
            return None
        for line in answer.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def start(self, timeout: float = 30.0, wait: bool = True) -> None:
        """Start the server and, with `wait`, wait until it answers (a server of an ensemble
        answers only once it is part of a quorum: start its peers without waiting)."""
        if not zookeeper_installed():
            raise LocalClusterError(
                f"ZooKeeper is not installed ({ZOOKEEPER_JAR} or java missing): run `make install`"
            )
        try:
            with socket.create_server((self.host, self.port)):
                pass
        except OSError as e:
            raise LocalClusterError(f"cannot start ZooKeeper on {self.connect}: {e.strerror}") from None
        config = self._write_config()
        log = open(self.data_dir / "zookeeper.log", "ab")  # noqa: SIM115 - the child owns it
        self._process = subprocess.Popen(
            ["java", "-Xmx256m", "-cp", str(ZOOKEEPER_JAR), ZOOKEEPER_MAIN, str(config)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        if wait:
            self.wait_answering(timeout)

    def wait_answering(self, timeout: float = 30.0) -> None:
        try:
            wait_until(self._answers, timeout, f"ZooKeeper to answer on {self.connect}")
        except AssertionError:
            self.stop()
            raise LocalClusterError(f"ZooKeeper did not start on {self.connect} within {timeout:.0f} s") from None

    def _answers(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            raise LocalClusterError(
                f"ZooKeeper exited with status {self._process.returncode}; see {self.data_dir / 'zookeeper.log'}"
            )
        try:
            return four_letter_word(self.host, self.port, "ruok") == "imok"
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        if down_for:
            time.sleep(down_for)
        self.start()


class ZooKeeperEnsemble:
    """`size` ZooKeeper servers on 127.0.0.1 forming one quorum (size 1: a standalone server)."""

    def __init__(self, work_dir: Path, size: int = 3, tick_time_ms: int = 500) -> None:
        if size < 1:
            raise ValueError("an ensemble needs at least one server")
        if size == 1:
            self.servers = [ZooKeeperServer(Path(work_dir) / "zookeeper-1", tick_time_ms=tick_time_ms)]
            return
        peers = tuple(QuorumPeer(i, free_port(), free_port(), free_port()) for i in range(1, size + 1))
        self.servers = [
            ZooKeeperServer(Path(work_dir) / f"zookeeper-{p.server_id}", port=p.client_port,
                            tick_time_ms=tick_time_ms, server_id=p.server_id, peers=peers)
            for p in peers
        ]

    @property
    def connect(self) -> str:
        return ",".join(s.connect for s in self.servers)

    def start(self, timeout: float = 60.0) -> None:
        for server in self.servers:
            server.start(timeout, wait=False)
        for server in self.servers:
            server.wait_answering(timeout)
        self.wait_for_quorum(timeout)

    def wait_for_quorum(self, timeout: float = 60.0) -> None:
        def serving() -> bool:
            modes = [s.mode() for s in self.servers if s.running]
            return "leader" in modes or "standalone" in modes
        wait_until(serving, timeout, "the ZooKeeper ensemble to elect a leader")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


class ZkProxy:
    """A TCP proxy in front of a ZooKeeper server for one broker; `cut()` severs every connection
    through it and refuses new ones until `heal()`: the broker is cut off, its process runs on."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept_loop, name=f"zk-proxy-{self.port}", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            with self._lock:
                if (a, b) in self._pairs:
                    self._pairs.remove((a, b))
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def heal(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()


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
    ) -> None:
        self.broker_id = broker_id
        self.host = host
        self.port = port or free_port(host)
        self.work_dir = Path(work_dir)
        self.log_path = self.work_dir / "broker.log"
        self.properties = {
            "broker.id": str(broker_id),
            "listeners": f"PLAINTEXT://{host}:{self.port}",
            "zookeeper.connect": zookeeper_connect,
            "log.dirs": str(self.work_dir / "data"),
            **(overrides or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

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

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class LocalCluster:
    """ZooKeeper plus brokers 1..N, as `minikafka local-cluster` runs them."""

    def __init__(self, work_dir: Path, brokers: int, zookeeper_port: int | None = None,
                 base_port: int | None = None, overrides: Mapping[str, str] | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.zookeeper = ZooKeeperServer(self.work_dir / "zookeeper", port=zookeeper_port)
        # Brokers stop together here: a last broker cannot hand its leaderships to anyone, so
        # keep its controlled shutdown retries short (Kafka's default backoff is 5 s).
        overrides = {"controlled.shutdown.retry.backoff.ms": "1000", **(overrides or {})}
        self.brokers = [
            BrokerProcess(
                broker_id,
                self.zookeeper.connect,
                self.work_dir / f"broker-{broker_id}",
                port=(base_port + broker_id - 1) if base_port else None,
                overrides=overrides,
            )
            for broker_id in range(1, brokers + 1)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.address for b in self.brokers)

    def start(self) -> None:
        self.zookeeper.start()
        for broker in self.brokers:
            broker.start()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every broker is registered in ZooKeeper and a controller is elected."""
        zk = KazooClient(hosts=self.zookeeper.connect)
        zk.start()
        try:
            wait_until(lambda: len(zk.get_children("/brokers/ids")) == len(self.brokers) and zk.exists("/controller"),
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
