"""Partition leader failover and controller failover at scale, on a 3-broker local cluster.
Both start once every broker has opened a log for every partition and gone idle.

1. Leader failover: topics totalling N partitions (replication 3); SIGKILL the broker leading a
   third of them; time from its session expiry (its registration vanishing from ZooKeeper) to
   every partition having a live leader in the third broker's metadata cache (the time that
   broker logs for the UpdateMetadata that made it so). Total and per partition re-elected.
   Then the broker starts again: time from its registration to every ISR being whole again in
   that cache (its followers caught up, and the leaders' ISR changes written and announced).
2. Controller failover: topics totalling N partitions; SIGKILL the controller; time from the new
   controller's election (its log line) to every live broker's cache naming it (sent before the
   new controller reads the cluster's state), and to "Ready to serve" (the whole state loaded
   from ZooKeeper, offline partitions elected, dead replicas out of the ISRs, and the whole
   state queued to every broker with the elections' results).

   Each leader failover size runs --trials times (3); the median is printed.

    python bench/partition_failover.py [--leader-sizes 1000,10000] [--controller-sizes 10000,50000] [--trials 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

import grpc
from kazoo.client import KazooClient

from broker.grpc_options import OPTIONS
from client.admin import AdminClient
from client.tooling.local_cluster import BrokerProcess
from client.tooling.processes import wait_until
from client.tooling.zookeeper import ZooKeeperServer
from minikafka_rpc import kafka_pb2, kafka_pb2_grpc

TOPIC_SIZE = 1000  # partitions per topic: a topic's assignment znode must stay under ZooKeeper's 1 MB
PER_PARTITION_GOAL_MS = 0.2
CONTROLLER_FAILOVER_GOAL_S = 5.0
IDLE_CPU_S = 0.1  # a broker using less CPU than this in a second is idle
METADATA_APPLIED = "from metadata cache in response to UpdateMetadata request"
LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})\]")


class Cluster:
    def __init__(self, work: Path, session_timeout_ms: int) -> None:
        self.zookeeper = ZooKeeperServer(work / "zookeeper")
        self.zookeeper.start()
        self.zk = KazooClient(hosts=self.zookeeper.connect)
        self.zk.start()
        overrides = {"zookeeper.session.timeout.ms": str(session_timeout_ms), "auto.leader.rebalance.enable": "false"}
        self.brokers = {b: BrokerProcess(b, self.zookeeper.connect, work / f"broker-{b}", overrides=overrides)
                        for b in (1, 2, 3)}
        for broker in self.brokers.values():
            broker.start()
        wait_until(lambda: len(self.zk.get_children("/brokers/ids")) == 3 and self.zk.exists("/controller"), 60,
                   "three brokers and a controller")
        self._channels: dict[int, grpc.Channel] = {}
        self.admin = AdminClient(",".join(b.address for b in self.brokers.values()), timeout_s=600)

    def controller(self) -> int:
        data, _ = self.zk.get("/controller")
        return int(data.split(b'"brokerid":')[1].split(b",")[0])

    def create_partitions(self, total: int) -> None:
        """Create the topics and wait until every broker has opened a log for each partition: a
        failover measured while brokers still create logs would measure the creation too."""
        for i in range((total + TOPIC_SIZE - 1) // TOPIC_SIZE):
            count = min(TOPIC_SIZE, total - i * TOPIC_SIZE)
            result = self.admin.create_topic(f"bench-{i}", count, 3, {}, timeout_ms=600_000)
            if result.error_code != 0:
                raise RuntimeError(f"cannot create bench-{i}: {result.error_code} {result.error_message}")
        wait_until(lambda: all(logs_on(broker) >= total for broker in self.brokers.values()), 1200,
                   "every broker to open a log for every partition", interval=0.5)
        # Then the brokers' checkpoints of the new logs (the leader epochs' files, written by the
        # scheduler) must be done too.
        wait_until(lambda: all(busy < IDLE_CPU_S for busy in cpu_seconds_in(1.0, self.brokers.values())), 1200,
                   "every broker to be idle")

    def stub(self, broker_id: int) -> kafka_pb2_grpc.AdminStub:
        """One channel per broker: polled every 10 ms, a new connection per poll would cost the
        brokers more than the answer."""
        if broker_id not in self._channels:
            self._channels[broker_id] = grpc.insecure_channel(self.brokers[broker_id].address, options=OPTIONS)
        return kafka_pb2_grpc.AdminStub(self._channels[broker_id])

    def leaders(self, broker_id: int) -> dict[tuple[str, int], int]:
        metadata = self.stub(broker_id).Metadata(kafka_pb2.MetadataRequest(), timeout=60)
        return {(t.name, p.partition): p.leader for t in metadata.topics for p in t.partitions}

    def controller_or_none(self) -> int | None:
        try:
            return self.controller()
        except Exception:
            return None

    def stop(self) -> None:
        for channel in self._channels.values():
            channel.close()
        for broker in self.brokers.values():
            broker.kill()
        self.zk.stop()
        self.zookeeper.stop()


def cpu_seconds_in(period_s: float, brokers: Iterable[BrokerProcess]) -> list[float]:
    """The CPU time each broker process used over the next `period_s`."""
    def used(pid: int | None) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    pids = [broker.pid for broker in brokers]
    before = [used(pid) for pid in pids]
    time.sleep(period_s)
    return [used(pid) - start for pid, start in zip(pids, before, strict=True)]


def logs_on(broker: BrokerProcess) -> int:
    data = Path(broker.properties["log.dirs"])
    return sum(1 for entry in data.iterdir() if entry.is_dir()) if data.is_dir() else 0


class LogTail:
    """A broker log from a given point on, read as it grows: at 50,000 partitions a log holds
    tens of megabytes, and reading it whole at every poll would take a core from the cluster
    being measured."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._file.seek(0, 2)
        self._partial = b""
        self._lines: list[str] = []
        # Per text looked for: the lines found so far, and how many lines have been searched.
        # Polled every 10 ms while a broker logs a line or more per partition, each new line is
        # searched once.
        self._found: dict[str, tuple[list[str], int]] = {}

    def find(self, text: str) -> str | None:
        """The first line since the start that contains `text`, or None yet."""
        return next(iter(self.matching(text)), None)

    def matching(self, text: str) -> list[str]:
        """Every complete line since the start that contains `text`."""
        data = self._partial + self._file.read()
        complete, _, self._partial = data.rpartition(b"\n")
        if complete:
            self._lines.extend(complete.decode(errors="replace").splitlines())
        found, searched = self._found.get(text, ([], 0))
        found.extend(line for line in self._lines[searched:] if text in line)
        self._found[text] = (found, len(self._lines))
        return list(found)


def changed_at(zk: KazooClient, path: str) -> tuple[threading.Event, list[float]]:
    """Record when `path` is created or deleted, as seen by a watch."""
    seen, at = threading.Event(), []

    def watch(event: object) -> None:
        at.append(time.time())
        seen.set()

    zk.exists(path, watch=watch)
    return seen, at


def log_time(line: str) -> float:
    match = LOG_TIME.match(line)
    assert match is not None, line
    stamp = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S")
    return time.mktime(stamp.timetuple()) + int(match[2]) / 1000


def leader_failover(work: Path, partitions: int, session_timeout_ms: int) -> tuple[float, int, float]:
    cluster = Cluster(work, session_timeout_ms)
    try:
        cluster.create_partitions(partitions)
        controller = cluster.controller()
        wait_until(lambda: len(cluster.leaders(controller)) == partitions, 600, "every partition in the metadata")
        victim = next(b for b in (1, 2, 3) if b != controller)
        # Watch the third broker's cache: asking the controller's would slow the controller down.
        observer = next(b for b in (1, 2, 3) if b not in (controller, victim))
        led = sum(1 for leader in cluster.leaders(observer).values() if leader == victim)
        watch = CacheWatch(cluster, observer)
        seen, at = changed_at(cluster.zk, f"/brokers/ids/{victim}")
        cluster.brokers[victim].kill()
        assert seen.wait(session_timeout_ms / 1000 * 3 + 30)
        done = wait_until(lambda: watch.reached_at(lambda ps: all(p.leader not in (victim, -1) for p in ps)), 600,
                          "every partition to have a live leader", interval=0.01)
        failover = done - at[0]
        # The broker returns: its followers catch up and rejoin every ISR they left.
        back, back_at = changed_at(cluster.zk, f"/brokers/ids/{victim}")
        cluster.brokers[victim].start()
        assert back.wait(120)
        whole = wait_until(lambda: watch.reached_at(lambda ps: all(len(p.isr) == 3 for p in ps)), 1200,
                           "every ISR whole again", interval=0.01)
        return failover, led, whole - back_at[0]
    finally:
        cluster.stop()


class CacheWatch:
    """When a broker's cache came to satisfy a condition. Its cache changes only with an
    UpdateMetadata, each logged as applied, so the cache is asked once after each new one: a full
    Metadata of 10,000 partitions costs a broker 40 ms of CPU, and asking every 10 ms would take a
    core from the failover being measured."""

    def __init__(self, cluster: Cluster, observer: int) -> None:
        self._cluster, self._observer = cluster, observer
        self._updates = LogTail(cluster.brokers[observer].log_path)
        self._checked = 0

    def reached_at(self, condition: Callable[[list[kafka_pb2.PartitionMetadata]], bool]) -> float | None:
        """The time of the UpdateMetadata after which `condition` held, or None yet."""
        applied = self._updates.matching(METADATA_APPLIED)
        if len(applied) == self._checked:
            return None
        metadata = self._cluster.stub(self._observer).Metadata(kafka_pb2.MetadataRequest(), timeout=60)
        if len(self._updates.matching(METADATA_APPLIED)) != len(applied):
            return None  # another arrived meanwhile: which one the answer shows is unknown, so ask again
        self._checked = len(applied)
        return log_time(applied[-1]) if condition([p for t in metadata.topics for p in t.partitions]) else None


def controller_failover(work: Path, partitions: int, session_timeout_ms: int) -> tuple[float, float]:
    cluster = Cluster(work, session_timeout_ms)
    try:
        cluster.create_partitions(partitions)
        old = cluster.controller()
        wait_until(lambda: len(cluster.leaders(old)) == partitions, 600, "every partition in the metadata")
        tails = {b: LogTail(broker.log_path) for b, broker in cluster.brokers.items() if b != old}
        cluster.brokers[old].kill()
        new = wait_until(lambda: (c := cluster.controller_or_none()) not in (None, old) and c, 120, "a new controller")
        survivors = [b for b in (1, 2, 3) if b != old]
        informed: list[float] = []

        def watch_survivors() -> None:
            wait_until(lambda: all(controller_of(cluster, b) == new for b in survivors), 600,
                       "every live broker to learn the new controller", interval=0.01)
            informed.append(time.time())

        watcher = threading.Thread(target=watch_survivors)
        watcher.start()
        log = tails[new]
        elected = log_time(wait_until(lambda: log.find("Epoch incremented to 2 "), 60, "the election line"))
        ready = log_time(wait_until(lambda: log.find("Ready to serve as the new controller with epoch 2"), 600,
                                    "the ready line"))
        watcher.join()
        return ready - elected, informed[0] - elected
    finally:
        cluster.stop()


def controller_of(cluster: Cluster, broker_id: int) -> int:
    return cluster.stub(broker_id).Metadata(kafka_pb2.MetadataRequest(topics=["-"]), timeout=10).controller_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leader-sizes", default="1000,10000")
    parser.add_argument("--controller-sizes", default="10000,50000")
    parser.add_argument("--session-timeout-ms", type=int, default=4000)
    parser.add_argument("--trials", type=int, default=3, help="leader failover runs per size")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    sizes = [int(s) for s in args.leader_sizes.split(",") if s]
    controller_sizes = [int(s) for s in args.controller_sizes.split(",") if s]

    print(f"Partition leader failover (SIGKILL the leader of a third; replication 3; session "
          f"{args.session_timeout_ms} ms, not counted)")
    for n in sizes:
        # A few hundred partitions move in tens of milliseconds, where one scheduling hiccup on a
        # busy machine shows: the median of several runs is the figure.
        runs = []
        for _ in range(args.trials):
            with tempfile.TemporaryDirectory(prefix="minikafka-bench-") as work:
                runs.append(leader_failover(Path(work), n, args.session_timeout_ms))
        runs.sort(key=lambda run: run[0] / max(run[1], 1))
        per_runs = [total * 1000 / max(led, 1) for total, led, _ in runs]
        total, led, _ = runs[len(runs) // 2]
        per = per_runs[len(runs) // 2]
        print(f"  {n:6d} partitions: {led:5d} re-elected in {total * 1000:8.0f} ms = {per:.3f} ms per partition, "
              f"median of {len(runs)} (runs {per_runs[0]:.3f}-{per_runs[-1]:.3f}; goal < {PER_PARTITION_GOAL_MS} ms: "
              f"{'met' if per < PER_PARTITION_GOAL_MS else 'MISSED'})", flush=True)
        rejoined = sorted(run[2] for run in runs)
        print(f"  {n:6d} partitions: the broker restarted, every ISR whole again in "
              f"{rejoined[len(rejoined) // 2] * 1000:8.0f} ms after it registered, median of {len(runs)}", flush=True)
    print("Controller failover (from the new controller's election)")
    for n in controller_sizes:
        with tempfile.TemporaryDirectory(prefix="minikafka-bench-") as work:
            loaded, sent = controller_failover(Path(work), n, args.session_timeout_ms)
        total = max(loaded, sent)
        print(f"  {n:6d} partitions: every broker knows the new controller in {sent * 1000:8.0f} ms, state loaded, "
              f"elected and sent in {loaded * 1000:8.0f} ms (goal < {CONTROLLER_FAILOVER_GOAL_S:.0f} s: "
              f"{'met' if total < CONTROLLER_FAILOVER_GOAL_S else 'MISSED'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
