"""Debian's ZooKeeper server run as real processes (one server or an ensemble), a proxy that cuts a
broker off from it, and its four-letter words."""

from __future__ import annotations

import contextlib
import selectors
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from client.tooling.processes import LocalClusterError, free_port, wait_until

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
ZOOKEEPER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


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
