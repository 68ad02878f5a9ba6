"""What a chaos run needs of a cluster, wherever it runs: who holds a role now, how to hurt a
broker, a ZooKeeper server or a group member and how to mend it, the heal, the brokers' logs
and their replicas on disk. `local.LocalChaosCluster` runs processes on this machine,
`docker.DockerChaosCluster` drives the compose cluster's containers. The group's members are
processes beside the runner in both.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from client.chaos.schedule import CONTROLLER, COORDINATOR, GROUP_LEADER, LEADER, ZK_LEADER, ZK_TWO, PlannedFault
from client.watch.snapshot import ClusterSnapshot

BROKERS = (1, 2, 3)
ZOOKEEPER_SERVERS = (1, 2, 3)
Mend = Callable[[], None]


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
    targets: tuple[str, ...]
    mend: Mend

    @property
    def target(self) -> str:
        return ", ".join(self.targets)


@dataclass(frozen=True)
class ProcessHandles:
    """How to hurt and mend one process or container."""

    kill: Callable[[], None]
    start: Callable[[], None]
    pause: Callable[[], None]
    resume: Callable[[], None]
    stop: Callable[[], None]  # clean: SIGTERM, and wait for the end


def hurt_process(kind: str, handles: ProcessHandles) -> Mend:
    """kill, pause or stop; the mend starts again or resumes. A clean stop takes its time (a
    broker's controlled shutdown): it runs off the schedule's thread and the mend waits for it."""
    if kind == "pause":
        handles.pause()
        return handles.resume
    if kind == "kill":
        handles.kill()
        return handles.start
    if kind == "stop":
        stopping = threading.Thread(target=handles.stop, daemon=True)
        stopping.start()

        def restart() -> None:
            stopping.join(90)
            handles.start()
        return restart
    raise ValueError(f"fault {kind} does not apply to a process")


class ChaosCluster(ABC):
    """The roles, the faults and the bookkeeping of what is hurt; subclasses do the hurting."""

    bootstrap_servers: str
    zookeeper_connect: str
    zookeeper_session_timeout_ms: int

    def __init__(self) -> None:
        self.members: dict[str, MemberProcess] = {}
        self._lock = threading.Lock()
        self.busy: set[str] = set()  # targets under a fault now
        self._restart_at: dict[int, float] = {}  # supervise(): when a broker may be started again

    # -- what subclasses provide ------------------------------------------------------------------

    @abstractmethod
    def zookeeper_modes(self) -> dict[int, str | None]:
        """Each ZooKeeper server's mode (leader, follower, standalone), None if it does not answer."""

    @abstractmethod
    def hurt_broker(self, kind: str, broker_id: int) -> Mend:
        """Apply kill, pause, stop or partition to a broker; the function that mends it."""

    @abstractmethod
    def hurt_zookeeper(self, server_id: int) -> Mend:
        """Kill a ZooKeeper server; the function that starts it again."""

    @abstractmethod
    def ensure_up(self) -> None:
        """The heal: every process running, every broker connected, a ZooKeeper quorum."""

    @abstractmethod
    def exited_brokers(self) -> list[int]:
        """Brokers whose process or container has ended."""

    @abstractmethod
    def start_broker(self, broker_id: int) -> None:
        """Start a broker that has ended."""

    @abstractmethod
    def log_marks(self) -> dict[int, object]:
        """Where each broker's log stands now, for `logged_since`."""

    @abstractmethod
    def logged_since(self, marks: dict[int, object]) -> dict[int, str]:
        """What each broker logged since `marks`."""

    @abstractmethod
    def replica_dir(self, broker_id: int, topic: str, partition: int) -> Path:
        """Where a broker keeps its replica of a partition, readable from here."""

    @abstractmethod
    def stop(self) -> None:
        """End the run's processes (and, for a cluster it started, the cluster)."""

    def supervise(self) -> list[int]:
        """Start again, as a service manager would (systemd's Restart=on-failure), a broker that
        ended by itself and is under no fault: one restarted before its old ZooKeeper session
        expired stops at once, as Kafka's does ("already registered"). At most once a second
        per broker; the brokers started."""
        now = time.monotonic()
        started = []
        for broker_id in self.exited_brokers():
            with self._lock:
                if f"broker {broker_id}" in self.busy or now < self._restart_at.get(broker_id, 0.0):
                    continue
                self._restart_at[broker_id] = now + 1.0
            self.start_broker(broker_id)
            started.append(broker_id)
        return started

    # -- group members ----------------------------------------------------------------------------

    def start_members(self, names: list[str], topic: str, group: str, history_dir: Path) -> None:
        self.members = {name: MemberProcess(name, self.bootstrap_servers, topic, group, history_dir / f"{name}.jsonl")
                        for name in names}
        for member in self.members.values():
            member.start()

    def stop_members(self) -> None:
        """SIGTERM to every member at once (each commits and leaves the group), then wait for each."""
        for member in self.members.values():
            member.signal(signal.SIGCONT)
            member.signal(signal.SIGTERM)
        for member in self.members.values():
            member.terminate()
        self.members = {}  # the run is over: the next heal must not start them again

    def ensure_members_up(self) -> None:
        for member in self.members.values():
            member.signal(signal.SIGCONT)
            if not member.running:
                member.start()

    def hurt_member(self, kind: str, name: str) -> Mend:
        member = self.members[name]
        return hurt_process(kind, ProcessHandles(member.kill, member.start, lambda: member.signal(signal.SIGSTOP),
                                                 lambda: member.signal(signal.SIGCONT), member.terminate))

    # -- roles and faults -------------------------------------------------------------------------

    def zookeeper_leader(self) -> int | None:
        return next((i for i, mode in sorted(self.zookeeper_modes().items()) if mode in ("leader", "standalone")),
                    None)

    def resolve(self, fault: PlannedFault, snapshot: ClusterSnapshot | None, topic: str, group: str) -> list[str]:
        """Who holds the fault's role now: "broker N", a member's name, "zookeeper N"; empty if
        nobody does (no controller, no leader, no ZooKeeper leader...)."""
        if fault.role in (ZK_LEADER, ZK_TWO):
            modes = self.zookeeper_modes()
            leader = self.zookeeper_leader()
            if leader is None:
                return []
            chosen = [leader]
            if fault.role == ZK_TWO:
                chosen += [i for i, mode in sorted(modes.items()) if i != leader and mode is not None][:1]
            return [f"zookeeper {i}" for i in chosen]
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
        return [f"broker {broker}"] if broker in BROKERS else []

    def apply(self, fault: PlannedFault, targets: list[str]) -> AppliedFault | None:
        """Hurt `targets` as the fault says; None if there are none or one is already hurt."""
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

        return AppliedFault(fault, tuple(targets), mend)

    def _hurt(self, kind: str, target: str) -> Mend:
        what, _, number = target.partition(" ")
        if what == "zookeeper":
            return self.hurt_zookeeper(int(number))
        if what == "broker":
            return self.hurt_broker(kind, int(number))
        return self.hurt_member(kind, target)
