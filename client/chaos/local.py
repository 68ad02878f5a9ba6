"""The chaos cluster as processes on this machine: a ZooKeeper ensemble (three servers, or one
without zookeeper faults), three brokers that reach each ZooKeeper server through a TCP proxy of
their own (so a broker can be cut off the network while its process runs on), and the group's
member processes. It applies a fault to whoever holds a role at that moment and mends it later.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from broker.local_cluster import BrokerProcess, ZkProxy, ZooKeeperEnsemble, ZooKeeperServer
from client.chaos.schedule import CONTROLLER, COORDINATOR, GROUP_LEADER, LEADER, ZK_LEADER, ZK_TWO, PlannedFault
from client.watch import ClusterSnapshot

log = logging.getLogger(__name__)

BROKERS = (1, 2, 3)
ZOOKEEPER_SESSION_TIMEOUT_MS = 4000
BROKER_OVERRIDES = {
    "zookeeper.session.timeout.ms": str(ZOOKEEPER_SESSION_TIMEOUT_MS),
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "10",  # Kafka's 50 take longer to create, to no purpose here
    "controlled.shutdown.retry.backoff.ms": "1000",
}


class MemberProcess:
    """One member of the consumer group: `python -m client.chaos.workload member`."""

    def __init__(self, name: str, bootstrap: str, topic: str, group: str, history: Path) -> None:
        self.name = name
        self._argv = [sys.executable, "-m", "client.chaos.workload", "member", "--bootstrap-server", bootstrap,
                      "--topic", topic, "--group", group, "--name", name, "--history", str(history)]
        self._log = history.with_suffix(".log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        with open(self._log, "ab") as out:
            self._process = subprocess.Popen(self._argv, stdout=out, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)

    def signal(self, signum: int) -> None:
        if self.running:
            assert self._process is not None
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self._process is not None:
            self._process.wait()

    def terminate(self, timeout: float = 15.0) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class AppliedFault:
    """A fault in force: what it hit and how to mend it."""

    fault: PlannedFault
    target: str  # broker 2, member-1, zookeeper 3, ...
    mend: Callable[[], None]
    targets: tuple[str, ...] = field(default=())


class LocalChaosCluster:
    def __init__(self, work_dir: Path, zookeeper_servers: int = 3) -> None:
        self.work_dir = Path(work_dir)
        self.ensemble = ZooKeeperEnsemble(self.work_dir, zookeeper_servers)
        self.proxies = {b: [ZkProxy(s.host, s.port) for s in self.ensemble.servers] for b in BROKERS}
        self.brokers = {
            b: BrokerProcess(b, ",".join(f"127.0.0.1:{p.port}" for p in self.proxies[b]),
                             self.work_dir / f"broker-{b}", overrides=BROKER_OVERRIDES)
            for b in BROKERS
        }
        self.members: dict[str, MemberProcess] = {}
        self._lock = threading.Lock()
        self.busy: set[str] = set()  # targets under a fault now

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(b.address for b in self.brokers.values())

    @property
    def zookeeper_connect(self) -> str:
        return self.ensemble.connect

    def start(self) -> None:
        self.ensemble.start()
        for broker in self.brokers.values():
            broker.start()

    def stop(self) -> None:
        for member in self.members.values():
            member.kill()
        for broker in self.brokers.values():
            broker.resume()
            broker.kill()
        for proxies in self.proxies.values():
            for proxy in proxies:
                proxy.close()
        self.ensemble.stop()

    def data_dir(self, broker_id: int) -> Path:
        return self.work_dir / f"broker-{broker_id}" / "data"

    def broker_log(self, broker_id: int) -> str:
        return self.brokers[broker_id].log_text()

    # -- group members --------------------------------------------------------------------------

    def start_members(self, names: list[str], topic: str, group: str, history_dir: Path) -> None:
        self.members = {name: MemberProcess(name, self.bootstrap_servers, topic, group, history_dir / f"{name}.jsonl")
                        for name in names}
        for member in self.members.values():
            member.start()

    def stop_members(self) -> None:
        for member in self.members.values():
            member.terminate()

    # -- faults ---------------------------------------------------------------------------------

    def resolve(self, fault: PlannedFault, snapshot: ClusterSnapshot | None, topic: str, group: str) -> list[str]:
        """Who holds the fault's role now: broker ids as "broker N", members by name, ZooKeeper
        servers as "zookeeper N". Empty if nobody does (no controller, no leader, ...)."""
        if fault.role in (ZK_LEADER, ZK_TWO):
            leader = self.ensemble.leader()
            if leader is None:
                return []
            chosen = [leader]
            if fault.role == ZK_TWO:
                others = [s for s in self.ensemble.servers if s is not leader and s.running]
                chosen += others[:1]
            return [f"zookeeper {self.ensemble.servers.index(s) + 1}" for s in chosen]
        if snapshot is None:
            return []
        if fault.role == CONTROLLER:
            broker = snapshot.controller_id
        elif fault.role == LEADER:
            broker = next((p.leader for p in snapshot.partitions or () if p.topic == topic
                           and p.partition == fault.partition), -1)
        elif fault.role == COORDINATOR:
            broker = next((g.coordinator for g in snapshot.groups if g.group_id == group), -1)
        elif fault.role == GROUP_LEADER:
            found = next((g for g in snapshot.groups if g.group_id == group), None)
            member = next((m for m in found.members if m.member_id == found.leader), None) if found else None
            return [member.client_id] if member is not None and member.client_id in self.members else []
        else:
            raise ValueError(f"unknown role {fault.role}")
        return [f"broker {broker}"] if broker is not None and broker in self.brokers else []

    def apply(self, fault: PlannedFault, targets: list[str]) -> AppliedFault | None:
        """Hurt `targets` as the fault says; None if one of them is already under a fault."""
        with self._lock:
            if not targets or any(t in self.busy for t in targets):
                return None
            self.busy.update(targets)
        menders = [self._hurt(fault.kind, t) for t in targets]

        def mend() -> None:
            for m in menders:
                m()
            with self._lock:
                self.busy.difference_update(targets)

        return AppliedFault(fault, ", ".join(targets), mend, tuple(targets))

    def _hurt(self, kind: str, target: str) -> Callable[[], None]:
        what, _, name = target.partition(" ")
        if what == "zookeeper":
            server = self.ensemble.servers[int(name) - 1]
            return self._kill_zookeeper(server)
        if what == "broker":
            broker = self.brokers[int(name)]
            if kind == "partition":
                return self._cut_off(broker.broker_id)
            return self._signal_process(kind, broker.kill, broker.pause, broker.resume,
                                        lambda: broker.terminate(60), broker.start)
        member = self.members[target]
        return self._signal_process(kind, member.kill, lambda: member.signal(signal.SIGSTOP),
                                    lambda: member.signal(signal.SIGCONT), member.terminate, member.start)

    @staticmethod
    def _signal_process(kind: str, kill: Callable[[], None], pause: Callable[[], None],
                        resume: Callable[[], None], terminate: Callable[[], None],
                        start: Callable[[], None]) -> Callable[[], None]:
        if kind == "pause":
            pause()
            return resume
        if kind == "kill":
            kill()
            return start
        if kind == "stop":
            # A clean stop takes its time (a broker's controlled shutdown): not on the schedule's thread.
            stopping = threading.Thread(target=terminate, daemon=True)
            stopping.start()

            def restart() -> None:
                stopping.join(90)
                start()
            return restart
        raise ValueError(f"fault {kind} does not apply to a process")

    def _cut_off(self, broker_id: int) -> Callable[[], None]:
        for proxy in self.proxies[broker_id]:
            proxy.cut()

        def heal() -> None:
            for proxy in self.proxies[broker_id]:
                proxy.heal()
        return heal

    @staticmethod
    def _kill_zookeeper(server: ZooKeeperServer) -> Callable[[], None]:
        server.kill()
        return server.start

