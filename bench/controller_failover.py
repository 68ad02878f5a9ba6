"""Controller failover, against the floor ZooKeeper itself sets.

Ours: on a 3-broker local cluster, SIGKILL the controller and time until the new controller's
first successful fenced write. That write is seen from outside: right after the kill an ISR
change notification is planted (as a partition leader would write one); the dead controller
cannot remove it, and the new controller deletes it during failover with a multi fenced by
its /controller_epoch version. Its deletion is the fenced write committed.

The floor: a bare kazoo process holds an ephemeral znode and is SIGKILLed; a second one,
watching, races to create it. Same ZooKeeper server, same session timeout.

    python bench/controller_failover.py [--iterations 20] [--session-timeout-ms 4000]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from client.tooling.local_cluster import BrokerProcess
from client.tooling.processes import wait_until
from client.tooling.zookeeper import ZooKeeperServer

GOAL = 1.1


def settle(session_timeout_s: float) -> None:
    """Wait a random part of a ping interval before a kill. ZooKeeper expires a session a
    timeout after it last heard from the client, and kazoo pings every third of the timeout:
    killing at a random phase gives the floor and the brokers the same odds."""
    time.sleep(random.uniform(session_timeout_s / 3, 2 * session_timeout_s / 3))

# A bare kazoo client: hold /floor (holder) or wait for it to go and take it (racer).
FLOOR_CLIENT = """
import logging, sys, threading
from kazoo.client import KazooClient
logging.basicConfig(level=logging.CRITICAL)
role, hosts, timeout_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
zk = KazooClient(hosts=hosts, timeout=timeout_s)
zk.start()
if role == "holder":
    zk.create("/floor", ephemeral=True)
else:
    gone = threading.Event()
    while zk.exists("/floor", watch=lambda event: gone.set()) is not None:
        print("watching", flush=True)
        gone.wait()
        gone.clear()
    zk.create("/floor", ephemeral=True)
print("ready", flush=True)
threading.Event().wait()
"""


def watch_until(zk: KazooClient, path: str, want_exists: bool, timeout: float, not_owner: int = 0) -> float:
    """Block until `path` exists (owned by another session than `not_owner`) or is gone;
    returns the monotonic time the watch saw it."""
    seen = threading.Event()
    at: list[float] = []

    def check(_event: object = None) -> None:
        stat = zk.exists(path, watch=check)
        now_exists = stat is not None and (not not_owner or stat.ephemeralOwner != not_owner)
        if now_exists == want_exists and not seen.is_set():
            at.append(time.monotonic())
            seen.set()

    check()
    if not seen.wait(timeout):
        raise TimeoutError(f"{path} still {'missing' if want_exists else 'present'} after {timeout} s")
    return at[0]


def floor_once(zk: KazooClient, hosts: str, session_timeout_s: float) -> float:
    def spawn(role: str, expect: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", FLOOR_CLIENT, role, hosts, str(session_timeout_s)],
            stdout=subprocess.PIPE, text=True,
        )
        assert process.stdout is not None and process.stdout.readline().strip() == expect
        return process

    holder = spawn("holder", "ready")
    racer = spawn("racer", "watching")
    try:
        held = zk.exists("/floor")
        assert held is not None
        settle(session_timeout_s)
        holder.kill()
        killed_at = time.monotonic()
        created_at = watch_until(zk, "/floor", True, session_timeout_s * 3 + 10, not_owner=held.ephemeralOwner)
        return created_at - killed_at
    finally:
        for process in (holder, racer):
            process.kill()
            process.wait()
        # Both are dead: clear the racer's znode rather than wait for its session to expire.
        with contextlib.suppress(NoNodeError):
            zk.delete("/floor")


def controller_once(zk: KazooClient, brokers: dict[int, BrokerProcess], session_timeout_s: float) -> float:
    data, _ = zk.get("/controller")
    controller_id = int(data.split(b'"brokerid":')[1].split(b",")[0])
    settle(session_timeout_s)
    brokers[controller_id].kill()
    killed_at = time.monotonic()
    notification = zk.create("/isr_change_notification/isr_change_", b'{"version":1,"partitions":[]}',
                              sequence=True)
    deleted_at = watch_until(zk, notification, False, session_timeout_s * 3 + 10)
    brokers[controller_id].start()
    wait_until(lambda: zk.exists(f"/brokers/ids/{controller_id}") is not None, 30, "the killed broker to return")
    return deleted_at - killed_at


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--session-timeout-ms", type=int, default=4000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    session_timeout_s = args.session_timeout_ms / 1000

    with tempfile.TemporaryDirectory(prefix="minikafka-bench-") as work:
        zookeeper = ZooKeeperServer(Path(work) / "zookeeper")
        zookeeper.start()
        zk = KazooClient(hosts=zookeeper.connect)
        zk.start()
        brokers = {
            b: BrokerProcess(b, zookeeper.connect, Path(work) / f"broker-{b}",
                             overrides={"zookeeper.session.timeout.ms": str(args.session_timeout_ms)})
            for b in (1, 2, 3)
        }
        try:
            for broker in brokers.values():
                broker.start()
            wait_until(lambda: len(zk.get_children("/brokers/ids")) == 3 and zk.exists("/controller"), 60,
                       "three brokers and a controller")
            floor, ours = [], []
            for i in range(args.iterations):
                floor.append(floor_once(zk, zookeeper.connect, session_timeout_s))
                ours.append(controller_once(zk, brokers, session_timeout_s))
                print(f"  run {i + 1:2d}: floor {floor[-1] * 1000:7.0f} ms   controller {ours[-1] * 1000:7.0f} ms",
                      flush=True)
        finally:
            for broker in brokers.values():
                broker.kill()
            zk.stop()
            zookeeper.stop()

    floor_median, floor_p95 = summary(floor)
    our_median, our_p95 = summary(ours)
    ratio = our_median / floor_median
    print()
    print(f"Controller failover, {args.iterations} runs, zookeeper.session.timeout.ms={args.session_timeout_ms}")
    print(f"{'':34} {'median':>9} {'p95':>9}")
    print(f"{'floor (bare kazoo ephemeral race)':34} {floor_median * 1000:7.0f} ms {floor_p95 * 1000:6.0f} ms")
    print(f"{'SIGKILL -> first fenced write':34} {our_median * 1000:7.0f} ms {our_p95 * 1000:6.0f} ms")
    print(f"median ratio {ratio:.3f} (goal <= {GOAL}): {'met' if ratio <= GOAL else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
