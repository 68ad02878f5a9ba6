"""The compose cluster in Docker, as the README's walkthrough uses it: `make up`, then kill, stop,
pause and cut off containers and check through minikafka's own admin API (the `minikafka`
command in a client container on the cluster's network) that the right new controller, leader,
coordinator or group leader appears within the session timeout plus 10 s, that the old holder
comes back as a follower, and that every record the producer had acknowledged reaches the
consumers.

The tests share one cluster, in order; each puts back what it took away."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

docker = pytest.importorskip("docker")

# The first test's fixture builds the images (`make up`): as long as `make up` may take, not pytest's 300 s.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "minikafka-test"
BOOTSTRAP = "broker1:9092,broker2:9092,broker3:9092"
ZK_SESSION_S = 6  # zookeeper.session.timeout.ms in docker-compose.yml
CONSUMER_SESSION_S = 10  # the consumers' session.timeout.ms
SLACK_S = 10
T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (AssertionError, KeyError, ValueError, IndexError, StopIteration) as e:
            last, value = e, None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s" + (f" (last: {last!r})" if last else ""))


def project(secure: bool) -> str:
    return PROJECT + ("-secure" if secure else "")


def make(*targets: str, secure: bool = False) -> subprocess.CompletedProcess[str]:
    """A make target for the plaintext cluster, or with SECURE=1 for the secured one."""
    env = {**os.environ, "PROJECT": project(secure)}
    secured = ["SECURE=1"] if secure else []
    return subprocess.run(["make", *targets, f"PROJECT={project(secure)}", *secured], cwd=ROOT, env=env,
                          capture_output=True,
                          text=True, timeout=1200)


class Cluster:
    """The compose project's containers, and a probe container on its network that runs the
    `minikafka` command line; on the secured cluster with the certificates at /certs and as
    `admin` (a super user)."""

    def __init__(self, secure: bool = False) -> None:
        self.secure = secure
        self.project = project(secure)
        self.docker = docker.from_env()
        self.network = f"{self.project}_default"
        self.probe = self.docker.containers.run(
            "minikafka-client", ["sleep", "infinity"], detach=True, network=self.network,
            name=f"{self.project}-probe", remove=True, labels={"minikafka-test": "probe"},
            volumes={f"{self.project}_certs": {"bind": "/certs", "mode": "ro"}} if secure else None,
        )
        self.security = ["--command-config", "/certs/admin.properties"] if secure else []

    def container(self, service: str) -> Any:
        found = self.docker.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]})
        assert len(found) == 1, f"{service}: {len(found)} containers"
        return found[0]

    def minikafka(self, *args: str) -> Any:
        """A `minikafka ... --output json` command's answer."""
        code, (out, err) = self.probe.exec_run(["minikafka", *args, *self.security, "--output", "json"], demux=True)
        assert code == 0, (err or b"").decode()
        return json.loads(out)

    def run(self, *command: str) -> tuple[int, str]:
        """Any command in the probe container: its exit status and stdout and stderr together."""
        code, out = self.probe.exec_run(list(command))
        return code, out.decode(errors="replace")

    def controller(self) -> dict[str, int]:
        return self.minikafka("cluster", "describe", "--bootstrap-server", BOOTSTRAP, "--timeout", "5")["controller"]

    def live_brokers(self) -> list[int]:
        described = self.minikafka("cluster", "describe", "--bootstrap-server", BOOTSTRAP, "--timeout", "5")
        return [b["id"] for b in described["brokers"]]

    def partitions(self, topic: str = "demo") -> list[dict[str, Any]]:
        return self.minikafka("topics", "--bootstrap-server", BOOTSTRAP, "--describe", "--topic", topic,
                              "--timeout", "5")[0]["partitions"]

    def group(self) -> dict[str, Any]:
        return self.minikafka("groups", "--bootstrap-server", BOOTSTRAP, "--describe", "--group", "demo-group",
                              "--state", "--timeout", "5")

    def members(self) -> dict[str, Any]:
        return self.minikafka("groups", "--bootstrap-server", BOOTSTRAP, "--describe", "--group", "demo-group",
                              "--members", "--timeout", "5")

    def healthy(self, service: str) -> bool:
        container = self.container(service)
        container.reload()
        health = container.attrs["State"].get("Health")
        return container.status == "running" and (health is None or health["Status"] == "healthy")

    def wait_healthy(self, *services: str, timeout: float = 120) -> None:
        for service in services:
            wait_for(lambda s=service: self.healthy(s), timeout, f"{service} to be healthy")

    def ip_of(self, service: str) -> str:
        container = self.container(service)
        container.reload()
        return container.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    def stable_group(self, members: int) -> dict[str, Any] | None:
        described = self.members()
        if described["state"] != "Stable" or len(described["members"]) != members:
            return None
        return described

    def consumer_of(self, member: dict[str, Any]) -> str:
        """The consumer container of a group member: by its client.id, and by its address too."""
        service = member["client_id"]
        assert service in ("consumer1", "consumer2", "consumer3") and member["host"] == f"/{self.ip_of(service)}"
        return service

    def stdout_lines(self, service: str) -> list[str]:
        return self.container(service).logs(stdout=True, stderr=False).decode(errors="replace").splitlines()

    def log_tails(self, lines: int = 60) -> list[tuple[str, str]]:
        """The last lines each broker, the producer and the consumers logged, for a failed test."""
        tails = []
        for service in ("broker1", "broker2", "broker3", "producer", "consumer1", "consumer2", "consumer3"):
            with contextlib.suppress(Exception):
                tails.append((service, self.container(service).logs(tail=lines).decode(errors="replace")))
        return tails

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.probe.remove(force=True)


# The walkthrough runs on both clusters: `make up`, and `make up SECURE=1` (mTLS, ACLs, ZooKeeper ACLs).
@pytest.fixture(scope="module", params=["plaintext", "secure"])
def compose(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if shutil.which("docker") is None:
        pytest.fail("docker is not installed")
    secure = request.param == "secure"
    make("down", secure=secure)
    started = make("up", secure=secure)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    probe = Cluster(secure)
    try:
        yield probe
    finally:
        probe.close()
        make("down", secure=secure)


plaintext_only = pytest.mark.parametrize("compose", ["plaintext"], indirect=True)
secure_only = pytest.mark.parametrize("compose", ["secure"], indirect=True)


def leaders(compose: Cluster) -> dict[int, int]:
    return {p["partition"]: p["leader"] for p in compose.partitions()}


def test_compose_up_from_nothing_every_service_healthy_one_controller_and_the_group_stable(compose: Cluster) -> None:
    compose.wait_healthy("zk1", "zk2", "zk3", "broker1", "broker2", "broker3")

    def modes() -> list[str]:
        found = []
        for zk in ("zk1", "zk2", "zk3"):
            _, out = compose.container(zk).exec_run(["sh", "-c", "echo srvr | nc -w 5 localhost 2181"])
            found += [line.split(": ")[1] for line in out.decode().splitlines() if line.startswith("Mode: ")]
        return sorted(found)

    # ZooKeeper's own election: one leader of three.
    wait_for(lambda: modes() == ["follower", "follower", "leader"], 60, "a ZooKeeper leader and two followers")
    controller = wait_for(lambda: (c := compose.controller())["id"] in (1, 2, 3) and c, 60, "a controller")
    assert controller["epoch"] >= 1
    assert sorted(compose.live_brokers()) == [1, 2, 3]
    group = wait_for(lambda: compose.stable_group(3), 90, "the demo group Stable with three members")
    assert group["leader"] in [m["consumer_id"] for m in group["members"]]
    assert sorted(tp[1] for m in group["members"] for tp in m["partitions"]) == list(range(6))


STRANGER_ON_ZOOKEEPER = """
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
zk = KazooClient(hosts="zk1:2181,zk2:2181,zk3:2181/minikafka")
zk.start()
refused = 0
for attempt in (lambda: zk.set("/controller_epoch", b"999"), lambda: zk.delete("/controller"),
                lambda: zk.create("/brokers/ids/99", b"{}", ephemeral=True),
                lambda: zk.set("/brokers/topics/demo/partitions/0/state", b"{}")):
    try:
        attempt()
    except NoAuthError:
        refused += 1
print("read", zk.get("/controller")[0].decode(), "refused", refused)
"""


@secure_only
def test_the_secured_cluster_refuses_plaintext_clients_wrong_principals_and_strangers_on_zookeeper(
        compose: Cluster) -> None:
    code, out = compose.run("minikafka", "cluster", "describe", "--bootstrap-server", BOOTSTRAP, "--timeout", "3")
    assert code == 1 and out.startswith("minikafka: error: ") and out.count("\n") == 1, out
    # The consumers' principal may read the demo topic, not create topics.
    code, out = compose.run("minikafka", "topics", "--bootstrap-server", BOOTSTRAP, "--command-config",
                            "/certs/consumer.properties", "--create", "--topic", "intruder")
    assert code == 1 and "TOPIC_AUTHORIZATION_FAILED" in out, out
    code, out = compose.run("python", "-c", STRANGER_ON_ZOOKEEPER)
    assert code == 0 and '"brokerid"' in out and out.strip().endswith("refused 4"), out


def test_killing_the_controllers_container_elects_another_and_it_returns_as_a_broker(compose: Cluster) -> None:
    old = compose.controller()
    service = f"broker{old['id']}"
    compose.container(service).kill()
    new = wait_for(lambda: (c := compose.controller())["id"] not in (-1, old["id"]) and c,
                   ZK_SESSION_S + SLACK_S, "a new controller")
    assert new["epoch"] > old["epoch"]
    compose.container(service).start()
    compose.wait_healthy(service)
    wait_for(lambda: old["id"] in compose.live_brokers(), 60, "the old controller registered again")
    assert compose.controller() == new, "the old controller comes back as a plain broker"


def test_killing_a_partition_leaders_container_elects_a_new_leader_and_it_returns_as_a_follower(
    compose: Cluster,
) -> None:
    before = compose.partitions()[0]
    old_leader = before["leader"]
    service = f"broker{old_leader}"
    compose.container(service).kill()
    after = wait_for(lambda: (p := compose.partitions()[0])["leader"] not in (-1, old_leader) and p,
                     ZK_SESSION_S + SLACK_S, "a new leader of demo-0")
    assert after["leader_epoch"] > before["leader_epoch"]
    assert after["leader"] in before["isr"]
    compose.container(service).start()
    compose.wait_healthy(service)
    back = wait_for(lambda: (p := compose.partitions()[0])["isr"] and old_leader in p["isr"] and p, 90,
                    "the old leader back in the ISR")
    assert back["leader"] == after["leader"], "the old leader returns as a follower"


def test_killing_the_group_coordinators_container_moves_the_group_to_a_new_coordinator(compose: Cluster) -> None:
    group = wait_for(lambda: compose.stable_group(3), 90, "the group Stable")
    old = compose.group()["coordinator"]["id"]
    service = f"broker{old}"
    compose.container(service).kill()
    moved = wait_for(lambda: (g := compose.group())["coordinator"]["id"] != old and g["state"] == "Stable" and g,
                     ZK_SESSION_S + SLACK_S, "a new coordinator with the group Stable")
    assert moved["members"] == 3
    # Loaded Stable in the same generation: the members heartbeat there, nobody rejoins.
    assert moved["generation"] == group["generation"] and moved["leader"] == group["leader"]
    compose.container(service).start()
    compose.wait_healthy(service)
    wait_for(lambda: old in compose.live_brokers(), 60, "the old coordinator registered again")
    assert compose.group()["coordinator"]["id"] == moved["coordinator"]["id"]


def test_killing_the_consumer_leaders_container_elects_a_new_group_leader(compose: Cluster) -> None:
    group = wait_for(lambda: compose.stable_group(3), 90, "the group Stable")
    leader = next(m for m in group["members"] if m["consumer_id"] == group["leader"])
    service = compose.consumer_of(leader)
    compose.container(service).kill()
    regrouped = wait_for(lambda: (g := compose.stable_group(2)) and g["leader"] != group["leader"] and g,
                         CONSUMER_SESSION_S + SLACK_S, "two members under a new leader")
    assert regrouped["generation"] > group["generation"]
    assert sorted(tp[1] for m in regrouped["members"] for tp in m["partitions"]) == list(range(6))
    compose.container(service).start()
    back = wait_for(lambda: compose.stable_group(3), 60, "the consumer back in the group")
    assert back["leader"] == regrouped["leader"], "the old leader rejoins as a follower"


def test_a_broker_stopped_cleanly_moves_its_leaderships_first(compose: Cluster) -> None:
    led = leaders(compose)
    broker = max(set(led.values()), key=lambda b: list(led.values()).count(b))
    service = f"broker{broker}"
    container = compose.container(service)
    stopping = subprocess.Popen(["docker", "stop", "-t", "40", container.id], stdout=subprocess.DEVNULL)
    samples = []
    while stopping.poll() is None:
        samples.append(leaders(compose))
    samples.append(leaders(compose))
    assert all(-1 not in sample.values() for sample in samples), f"a leaderless partition: {samples}"
    assert broker not in samples[-1].values()
    assert "controlled shutdown" in container.logs().decode().lower()
    container.start()
    compose.wait_healthy(service)
    wait_for(lambda: all(broker in p["isr"] for p in compose.partitions()), 90, "the broker back in every ISR")


def test_a_paused_controller_is_replaced_and_fenced_when_it_wakes(compose: Cluster) -> None:
    old = compose.controller()
    container = compose.container(f"broker{old['id']}")
    container.pause()
    try:
        new = wait_for(lambda: (c := compose.controller())["id"] not in (-1, old["id"]) and c,
                       ZK_SESSION_S + SLACK_S, "a new controller while the old one is paused")
    finally:
        container.unpause()
    assert new["epoch"] > old["epoch"]
    wait_for(lambda: "refused by the epoch check" in container.logs().decode(), 30,
             "the woken controller's fenced write refused")
    wait_for(lambda: old["id"] in compose.live_brokers(), 60, "the old controller registered again")
    assert compose.controller() == new


def test_a_broker_cut_off_the_network_is_replaced_and_comes_back(compose: Cluster) -> None:
    led = leaders(compose)
    controller = compose.controller()["id"]
    broker = next(b for b in (1, 2, 3) if b != controller and b in led.values())
    container = compose.container(f"broker{broker}")
    network = compose.docker.networks.get(compose.network)
    network.disconnect(container)
    try:
        wait_for(lambda: broker not in leaders(compose).values() and -1 not in leaders(compose).values(),
                 ZK_SESSION_S + SLACK_S, f"broker {broker}'s partitions led elsewhere")
    finally:
        network.connect(container, aliases=[f"broker{broker}"])
    wait_for(lambda: broker in compose.live_brokers(), 90, "the broker registered again")
    wait_for(lambda: all(broker in p["isr"] for p in compose.partitions()), 90, "the broker back in every ISR")


def acknowledged(compose: Cluster) -> set[str]:
    return {line.split("\t")[2] for line in compose.stdout_lines("producer") if line.count("\t") == 2}


def consumed(compose: Cluster) -> set[str]:
    return {line.split("\t")[2] for c in ("consumer1", "consumer2", "consumer3")
            for line in compose.stdout_lines(c) if line.count("\t") == 2}


def test_zookeeper_holds_with_one_server_down_and_the_brokers_serve_through_a_lost_quorum(compose: Cluster) -> None:
    try:
        compose.container("zk1").kill()
        before = len(acknowledged(compose))
        wait_for(lambda: len(acknowledged(compose)) > before + 20, 30, "writes going on with two ZooKeeper servers")
        old = compose.controller()
        assert old["id"] in (1, 2, 3)

        compose.container("zk2").kill()
        # No quorum: the brokers cannot change any state, but serve the partitions they lead.
        seen = len(consumed(compose))
        wait_for(lambda: len(consumed(compose)) > seen + 20, 30, "records still flowing without a ZooKeeper quorum")
    finally:  # the quorum back for the tests after this one, whatever happened
        compose.container("zk1").start()
        compose.container("zk2").start()
    compose.wait_healthy("zk1", "zk2", "zk3")
    wait_for(lambda: sorted(compose.live_brokers()) == [1, 2, 3] and compose.controller()["id"] in (1, 2, 3), 90,
             "every broker registered and a controller once the quorum is back")
    compose.wait_healthy("broker1", "broker2", "broker3")


def test_every_acknowledged_record_reaches_the_consumers(compose: Cluster) -> None:
    wait_for(lambda: compose.stable_group(3), 90, "the group Stable")
    compose.container("producer").stop(timeout=30)  # SIGTERM: it flushes and prints what was acknowledged
    acked = acknowledged(compose)
    assert len(acked) > 100
    wait_for(lambda: not (acked - consumed(compose)), 120, "every acknowledged record consumed")
    compose.container("producer").start()


@plaintext_only  # the chaos runner's clients speak plaintext
def test_a_chaos_run_against_the_compose_cluster_holds_every_invariant(compose: Cluster) -> None:
    """`make chaos-docker`: the chaos service drives this cluster's containers through the docker
    socket; one short seeded run must hold every invariant and leave the cluster whole."""
    done = make("chaos-docker", "CHAOS_DOCKER_RUNS=1", "CHAOS_SEED=3", "CHAOS_DURATION=12")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "seed 3: ok" in output and "VIOLATIONS" in output, output[-4000:]
    report = json.loads((ROOT / "chaos-history" / "docker" / "run-3" / "report.json").read_text())
    assert report["ok"] and report["acked"] > 0 and any("target" in f for f in report["faults"]), report
    wait_for(lambda: compose.stable_group(3), 120, "the demo group Stable again")


@plaintext_only
def test_make_up_twice_then_down_and_up_again(compose: Cluster) -> None:
    services = ("zk1", "zk2", "zk3", "broker1", "broker2", "broker3", "consumer1", "consumer2", "consumer3")
    before = {s: compose.container(s).id for s in services}
    again = make("up")
    assert again.returncode == 0, again.stderr[-2000:]
    assert {s: compose.container(s).id for s in services} == before, "a second make up changes nothing\n" + \
        again.stderr[-2000:]
    compose.close()
    down = make("down")
    assert down.returncode == 0, down.stderr[-2000:]
    assert not compose.docker.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})
    assert not compose.docker.volumes.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
    up = make("up")
    assert up.returncode == 0, up.stderr[-2000:]
    fresh = Cluster()
    try:
        wait_for(lambda: fresh.stable_group(3), 120, "the group Stable on a fresh cluster")
    finally:
        fresh.close()
