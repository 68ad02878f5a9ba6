"""One chaos run from start to verdict, and a suite of runs over one cluster.

A run: a new topic (3 partitions, replication 3, min.insync.replicas=2) and a new group; the
producer and the group's three members start; once the group is Stable the faults of the
schedule fire against whoever holds their role at that moment, each mended when its hold ends;
the standalone consumer starts during the first failover. Then the heal: every fault still in
force is mended and every process is up again; the producer stops and its last answers are
awaited; the run waits (up to a bound) until every partition has a leader and a whole ISR, the
group is Stable, and the group and the standalone consumer have read every acknowledged record.
The members stop, the brokers' logs of the topic are read from disk, and the checker gives its
verdicts. The events are in the run's history directory, one JSON-lines file per process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from broker.log.record_batch import CorruptRecordError, batches, records
from client.admin import AdminClient, AdminError
from client.chaos import checker
from client.chaos import history as h
from client.chaos.checker import ControllerElection, FinalState, LogRecord, Verdict
from client.chaos.cluster import BROKERS, AppliedFault, ChaosCluster
from client.chaos.history import HistoryWriter, read_history
from client.chaos.local import LocalChaosCluster
from client.chaos.schedule import FAULT_KINDS, PlannedFault, Schedule, draw_schedule
from client.chaos.workload import MEMBER_SESSION_TIMEOUT_MS, Producer, StandaloneReader, number
from client.tooling.processes import wait_until
from client.watch.collector import SnapshotCollector
from client.watch.snapshot import ClusterSnapshot, GroupState
from minikafka_protocol.errors import Errors

log = logging.getLogger(__name__)

PARTITIONS = 3
MEMBERS = ("member-1", "member-2", "member-3")
# After the heal: a member's session and a broker's, then this long to catch up and read.
CONVERGENCE_SLACK_S = 30.0


def convergence_bound_s(cluster: ChaosCluster) -> float:
    return (MEMBER_SESSION_TIMEOUT_MS + cluster.zookeeper_session_timeout_ms) / 1000 + CONVERGENCE_SLACK_S
ELECTED = re.compile(r"^\[(?P<at>[^\]]+)\] .*\[Controller id=(?P<broker>\d+)\] \d+ successfully elected as the "
                     r"controller\. Epoch incremented to (?P<epoch>\d+)", re.MULTILINE)


@dataclass
class RunReport:
    seed: int
    schedule: Schedule
    faults: list[dict[str, object]]  # what fired: at, kind, role, target, mended_at (or skipped)
    verdicts: list[Verdict]
    sent: int
    acked: int
    lost: int
    duplicated: int
    converged_s: float | None
    history_dir: Path
    setup_error: str | None = None

    @property
    def violations(self) -> int:
        return sum(1 for v in self.verdicts if not v.held) + (1 if self.setup_error else 0)

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def to_json(self) -> dict[str, object]:
        return {
            "seed": self.seed, "ok": self.ok, "sent": self.sent, "acked": self.acked, "lost": self.lost,
            "duplicated": self.duplicated, "converged_s": self.converged_s, "history": str(self.history_dir),
            "setup_error": self.setup_error,
            "schedule": [f.describe() for f in self.schedule.faults],
            "reader_start_s": self.schedule.reader_start_s,
            "faults": self.faults,
            "invariants": [{"name": v.invariant, "held": v.held, "summary": v.summary, "evidence": list(v.evidence),
                            "count": v.count} for v in self.verdicts],
        }


class Monitor:
    """Watches the cluster every half second (the watch view's collector) and records what it saw:
    the controller and its epoch, and the group's state, generation and assignment."""

    def __init__(self, bootstrap: str, zookeeper: str, topic: str, group: str, history: HistoryWriter) -> None:
        self._collector = SnapshotCollector(bootstrap, zookeeper.split(","), timeout_s=1.0)
        self._topic = topic
        self._group = group
        self._history = history
        self._stop = threading.Event()
        self.latest: ClusterSnapshot | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                snapshot = self._collector.collect()
            except Exception as e:  # a refresh that failed is seen again at the next
                log.debug("monitor: %s", e)
            else:
                self.latest = snapshot
                self._record(snapshot)
            self._stop.wait(0.5)

    def _record(self, snapshot: ClusterSnapshot) -> None:
        group = next((g for g in snapshot.groups if g.group_id == self._group), None)
        fields: dict[str, object] = {"controller": snapshot.controller_id, "epoch": snapshot.controller_epoch}
        if group is not None and not group.stale and group.state is not None:
            fields.update(group_state=group.state, generation=group.generation, assignment={
                m.client_id or m.member_id: sorted(tp.partition for tp in m.assignment if tp.topic == self._topic)
                for m in group.members})
        self._history.record(h.OBSERVED, **fields)

    def not_whole(self) -> list[str]:
        """The topic's partitions without a leader or a whole ISR, as last seen."""
        s = self.latest
        mine = {p.partition: p for p in (s.partitions or ()) if p.topic == self._topic} if s is not None else {}
        missing = []
        for partition in range(PARTITIONS):
            p = mine.get(partition)
            if p is None:
                missing.append(f"partition {partition} unknown to the cluster")
            elif p.leader < 0:
                missing.append(f"partition {partition} without a leader")
            elif set(p.isr) != set(p.replicas):
                missing.append(f"partition {partition}: ISR {list(p.isr)} of replicas {list(p.replicas)}")
        return missing

    def partitions_whole(self) -> bool:
        return not self.not_whole()

    def _described(self) -> GroupState | None:
        s = self.latest
        return next((g for g in s.groups if g.group_id == self._group), None) if s is not None else None

    def group_stable(self, members: int) -> bool:
        group = self._described()
        return group is not None and not group.stale and group.state == "Stable" and len(group.members) == members

    def group_summary(self) -> str:
        group = self._described()
        if group is None or group.state is None:
            return "not described"
        return f"{group.state} with {len(group.members)} member(s) in generation {group.generation}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._collector.close()


class ChaosSuite:
    """Runs on one local cluster, started at the first run and stopped by close()."""

    def __init__(self, kinds: tuple[str, ...] = FAULT_KINDS, duration_s: float = 20.0,
                 history_dir: Path | None = None, cluster: ChaosCluster | None = None) -> None:
        """Runs on `cluster`, or on a local cluster started at the first run."""
        self.kinds = kinds
        self.duration_s = duration_s
        self.work_dir = Path(tempfile.mkdtemp(prefix="minikafka-chaos-"))
        self.history_dir = Path(history_dir or self.work_dir / "history")
        self.cluster = cluster
        self._owns_cluster = cluster is None

    def _ensure_cluster(self) -> ChaosCluster:
        if self.cluster is None:
            shutil.rmtree(self.work_dir / "cluster", ignore_errors=True)
            local = LocalChaosCluster(self.work_dir / "cluster", 3 if "zookeeper" in self.kinds else 1)
            local.start()
            self.cluster = local
        cluster = self.cluster
        cluster.ensure_up()
        admin = AdminClient(cluster.bootstrap_servers, timeout_s=5)

        def ready() -> bool:
            described = admin.describe_cluster()
            return {b.id for b in described.brokers} == set(BROKERS) and described.controller_id >= 0

        wait_until(ready, 90, "every broker registered and a controller")
        return cluster

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        shutil.rmtree(self.work_dir / "cluster", ignore_errors=True)

    def run(self, seed: int, first: tuple[str, str] | None = None) -> RunReport:
        schedule = draw_schedule(seed, self.duration_s, self.kinds, PARTITIONS, first)
        run_dir = self.history_dir / f"run-{seed}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        try:
            cluster = self._ensure_cluster()
        except Exception as e:
            report = RunReport(seed, schedule, [], [], 0, 0, 0, 0, None, run_dir, setup_error=f"cluster: {e}")
        else:
            report = _Run(cluster, schedule, run_dir, self.duration_s).execute()
        if self._owns_cluster and (report.setup_error or report.converged_s is None):
            # What went wrong may still be wrong: the next run gets a cluster of its own.
            self.close()
        return report


@dataclass
class _Run:
    cluster: ChaosCluster
    schedule: Schedule
    run_dir: Path
    duration_s: float
    fired: list[dict[str, object]] = field(default_factory=list)
    not_converged: list[str] = field(default_factory=list)  # what the convergence wait still missed
    in_force: list[tuple[float, AppliedFault]] = field(default_factory=list)  # (mend at, fault)

    def execute(self) -> RunReport:
        seed = self.schedule.seed
        topic = group = f"chaos-{seed}-{int(time.time())}"
        cluster = self.cluster
        log_marks = cluster.log_marks()
        runner = HistoryWriter(self.run_dir / "runner.jsonl", "runner")
        reader_history = HistoryWriter(self.run_dir / "reader.jsonl", "reader")
        admin = AdminClient(cluster.bootstrap_servers, timeout_s=30)
        try:
            created = admin.create_topic(topic, PARTITIONS, 3, {"min.insync.replicas": "2"})
            error = None if created.error_code == Errors.NONE.code else Errors.for_code(created.error_code).name
        except AdminError as e:
            error = str(e)
        if error is not None:
            runner.close()
            reader_history.close()
            return RunReport(seed, self.schedule, [], [], 0, 0, 0, 0, None, self.run_dir,
                             setup_error=f"creating topic {topic}: {error}")
        monitor = Monitor(cluster.bootstrap_servers, cluster.zookeeper_connect, topic, group, runner)
        producer = Producer(cluster.bootstrap_servers, topic, runner)
        reader = StandaloneReader(cluster.bootstrap_servers, topic, PARTITIONS, reader_history)
        converged_s: float | None = None
        setup_error = None
        try:
            wait_until(monitor.partitions_whole, 30, f"the partitions of {topic} to have leaders")
            producer.start()
            cluster.start_members(list(MEMBERS), topic, group, self.run_dir)
            wait_until(lambda: monitor.group_stable(len(MEMBERS)), 60, f"group {group} Stable with its members")
            runner.record(h.PHASE, name="faults")
            self._faults(monitor, reader, topic, group, runner)
            runner.record(h.PHASE, name="heal")
            self._mend_all(runner)
            cluster.ensure_up()
            if not reader.started:
                reader.start()
            producer.stop(timeout_s=30)
            healed_at = time.monotonic()
            converged_s = self._converge(monitor, reader, healed_at, runner)
            runner.record(h.PHASE, name="converged" if converged_s is not None else "not-converged")
        except Exception as e:  # the run could not be set up or healed: a finding, reported
            log.exception("run %d did not complete", seed)
            setup_error = f"{type(e).__name__}: {e}"
        finally:
            self._mend_all(runner)
            reader.stop()
            cluster.stop_members()
            monitor.stop()
            producer.stop(timeout_s=1)
            runner.close()
            reader_history.close()
        events = read_history(self.run_dir.glob("*.jsonl"))
        state = self._final_state(admin, topic, log_marks, converged_s)
        verdicts = checker.check(events, state) if setup_error is None else []
        acked = checker.acked(events)
        lost = next((v.count for v in verdicts if v.invariant == "acked-not-lost"), 0)
        duplicated = next((v.count for v in verdicts if v.invariant == "no-duplicates"), 0)
        report = RunReport(seed, self.schedule, self.fired, verdicts, producer.sent, len(acked), lost, duplicated,
                           converged_s, self.run_dir, setup_error)
        (self.run_dir / "report.json").write_text(json.dumps(report.to_json(), indent=2))
        return report

    # -- the fault phase --------------------------------------------------------------------------

    def _faults(self, monitor: Monitor, reader: StandaloneReader, topic: str, group: str,
                runner: HistoryWriter) -> None:
        """Fire each fault when due and mend it when its hold ends, until the duration is over;
        what still holds then is in self.in_force."""
        start = time.monotonic()
        pending = list(self.schedule.faults)
        in_force = self.in_force
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= self.duration_s and not pending:
                break
            if not reader.started and elapsed >= self.schedule.reader_start_s:
                reader.start()
            while pending and pending[0].at_s <= elapsed:
                self._fire(pending.pop(0), monitor, topic, group, runner, in_force, start)
            for entry in [e for e in in_force if e[0] <= time.monotonic()]:
                in_force.remove(entry)
                self._mend(entry[1], runner)
            self._supervise(runner)
            time.sleep(0.05)

    def _mend_all(self, runner: HistoryWriter) -> None:
        while self.in_force:
            _, applied = self.in_force.pop(0)
            try:
                self._mend(applied, runner)
            except Exception:
                log.exception("mending %s failed", applied.target)

    def _fire(self, fault: PlannedFault, monitor: Monitor, topic: str, group: str, runner: HistoryWriter,
              in_force: list[tuple[float, AppliedFault]], start: float) -> None:
        targets = self.cluster.resolve(fault, monitor.latest, topic, group)
        applied = self.cluster.apply(fault, targets)
        entry: dict[str, object] = {"at_s": round(time.monotonic() - start, 2), "kind": fault.kind,
                                    "role": fault.role, "hold_s": fault.hold_s}
        if applied is None:
            why = "nobody holds the role" if not targets else f"{', '.join(targets)} already under a fault"
            entry.update(skipped=why)
            runner.record(h.FAULT, fault=fault.describe(), kind=fault.kind, role=fault.role, skipped=why)
        else:
            entry.update(target=applied.target)
            runner.record(h.FAULT, fault=fault.describe(), kind=fault.kind, role=fault.role, target=applied.target)
            in_force.append((time.monotonic() + fault.hold_s, applied))
        self.fired.append(entry)

    def _supervise(self, runner: HistoryWriter) -> None:
        for broker_id in self.cluster.supervise():
            runner.record(h.RESTART, target=f"broker {broker_id}", why="it had stopped by itself")

    def _mend(self, applied: AppliedFault, runner: HistoryWriter) -> None:
        applied.mend()
        runner.record(h.HEAL, fault=applied.fault.describe(), target=applied.target)

    # -- convergence and the final state -------------------------------------------------------------

    def _converge(self, monitor: Monitor, reader: StandaloneReader, healed_at: float,
                  runner: HistoryWriter) -> float | None:
        """Seconds from the heal until everything converged, None if not within the bound (what
        was still missing is kept for the verdict)."""
        deadline = healed_at + convergence_bound_s(self.cluster)
        while True:
            self._supervise(runner)
            self.not_converged = self._still_missing(monitor, reader)
            if not self.not_converged:
                return time.monotonic() - healed_at
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def _still_missing(self, monitor: Monitor, reader: StandaloneReader) -> list[str]:
        missing = monitor.not_whole()
        if not monitor.group_stable(len(MEMBERS)):
            missing.append(f"the group is {monitor.group_summary()}")
        events = read_history([self.run_dir / "runner.jsonl", *self.run_dir.glob("member-*.jsonl")])
        acked = set(checker.acked(events))
        for who, read in (("the group", checker.consumed_by(events, "member-")),
                          ("the standalone consumer", reader.read)):
            if not acked <= read:
                missing.append(f"{who} has not read {len(acked - read)} acknowledged record(s)")
        return missing

    def _final_state(self, admin: AdminClient, topic: str, log_marks: dict[int, int],
                     converged_s: float | None) -> FinalState:
        leaders: dict[int, int] = {}
        isr: dict[int, tuple[int, ...]] = {}
        high_watermarks: dict[int, int] = {}
        with contextlib.suppress(Exception):
            metadata = admin.metadata([topic])
            for t in metadata.topics:
                for p in t.partitions:
                    leaders[p.partition], isr[p.partition] = p.leader, tuple(p.isr)
            for (_, partition), replicas in admin.replica_states(metadata).items():
                high_watermarks[partition] = replicas.high_watermark
        logs = {p: {b: read_replica(self.cluster.replica_dir(b, topic, p)) for b in BROKERS}
                for p in range(PARTITIONS)}
        elections = []
        for broker_id, text in self.cluster.logged_since(log_marks).items():
            (self.run_dir / f"broker-{broker_id}.log").write_text(text)  # what each broker said during the run
            elections += [ControllerElection(m["at"], int(m["broker"]), int(m["epoch"]))
                          for m in ELECTED.finditer(text)]
        return FinalState(PARTITIONS, logs, high_watermarks, leaders, isr, elections, converged_s,
                          convergence_bound_s(self.cluster), self.not_converged)


def read_replica(directory: Path) -> list[LogRecord]:
    """Every record of a replica's log on disk, in offset order, up to a torn or empty tail."""
    out: list[LogRecord] = []
    for segment in sorted(directory.glob("*.log")):
        data = segment.read_bytes()
        try:
            for pos, header in batches(data):
                out.extend(LogRecord(r.offset, header.partition_leader_epoch, number(r.value))
                           for r in records(data, pos, header))
        except CorruptRecordError:
            continue
    return out
