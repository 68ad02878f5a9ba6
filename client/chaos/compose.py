"""The chaos cluster in Docker: the compose cluster of `make up`, driven through the docker SDK
from a container on its network (`make chaos-docker` runs `minikafka chaos --docker` in the
compose file's `chaos` service, with the docker socket and the brokers' volumes mounted).

Faults are the containers': `docker kill` and start, `docker pause` and unpause (the cgroup
freezer: a zombie), `docker stop` (SIGTERM, a controlled shutdown) and start, and
`docker network disconnect` and connect again under the service's name (a broker cut off from
everyone). The group's members are processes in the chaos container itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
from pathlib import Path
from typing import Any

from client.chaos.cluster import BROKERS, ZOOKEEPER_SERVERS, ChaosCluster, Mend, ProcessHandles, hurt_process
from client.tooling.processes import wait_until
from client.tooling.zookeeper import four_letter_word
from client.watch.collector import parse_srvr

# The compose file's settings (docker-compose.yml).
ZOOKEEPER_SESSION_TIMEOUT_MS = 6000
BROKER_PORT = 9092
ZOOKEEPER_PORT = 2181
# Where the chaos service mounts each broker's volume.
DATA_ROOT = Path("/chaos")


class DockerChaosCluster(ChaosCluster):
    zookeeper_session_timeout_ms = ZOOKEEPER_SESSION_TIMEOUT_MS

    def __init__(self, project: str | None = None, data_root: Path = DATA_ROOT) -> None:
        import docker  # only here: the local cluster needs no docker SDK

        super().__init__()
        self.client = docker.from_env()
        self.project = project or self._own_project()
        self.network = self.client.networks.get(f"{self.project}_default")
        self.data_root = data_root
        self.bootstrap_servers = ",".join(f"broker{b}:{BROKER_PORT}" for b in BROKERS)
        self.zookeeper_connect = ",".join(f"zk{z}:{ZOOKEEPER_PORT}" for z in ZOOKEEPER_SERVERS)

    def _own_project(self) -> str:
        """The compose project of the container this runs in."""
        try:
            me = self.client.containers.get(socket.gethostname())
        except Exception as e:
            raise RuntimeError("--docker runs in a container of the compose project (make chaos-docker): "
                               f"this one is not known to docker ({e})") from None
        return me.labels["com.docker.compose.project"]

    def container(self, service: str) -> Any:
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]})
        if len(found) != 1:
            raise RuntimeError(f"compose project {self.project}: {len(found)} containers for service {service}")
        return found[0]

    def stop(self) -> None:
        """The compose cluster stays as it is; only the run's members end."""
        for member in self.members.values():
            member.kill()

    def zookeeper_modes(self) -> dict[int, str | None]:
        modes: dict[int, str | None] = {}
        for z in ZOOKEEPER_SERVERS:
            try:
                modes[z] = parse_srvr(four_letter_word(f"zk{z}", ZOOKEEPER_PORT, "srvr", timeout=1.0))[0]
            except OSError:
                modes[z] = None
        return modes

    def hurt_broker(self, kind: str, broker_id: int) -> Mend:
        service = f"broker{broker_id}"
        container = self.container(service)
        if kind == "partition":
            self.network.disconnect(container)
            return lambda: self._connect(service)
        return hurt_process(kind, ProcessHandles(container.kill, container.start, container.pause, container.unpause,
                                                 lambda: container.stop(timeout=40)))

    def _connect(self, service: str) -> None:
        container = self.container(service)
        container.reload()
        if self.network.name not in container.attrs["NetworkSettings"]["Networks"]:
            self.network.connect(container, aliases=[service])

    def hurt_zookeeper(self, server_id: int) -> Mend:
        container = self.container(f"zk{server_id}")
        container.kill()
        return container.start

    def ensure_up(self) -> None:
        services = [f"zk{z}" for z in ZOOKEEPER_SERVERS] + [f"broker{b}" for b in BROKERS]
        for service in services:
            container = self.container(service)
            container.reload()
            if container.status == "paused":
                container.unpause()
            elif container.status != "running":
                container.start()
            self._connect(service)
        self.ensure_members_up()
        wait_until(lambda: any(m in ("leader", "standalone") for m in self.zookeeper_modes().values()), 90,
                   "the ZooKeeper ensemble to elect a leader")

    def exited_brokers(self) -> list[int]:
        exited = []
        for b in BROKERS:
            container = self.container(f"broker{b}")
            if container.status == "exited":
                exited.append(b)
        return exited

    def start_broker(self, broker_id: int) -> None:
        self.container(f"broker{broker_id}").start()

    def log_marks(self) -> dict[int, object]:
        now = dt.datetime.now(dt.UTC)
        return dict.fromkeys(BROKERS, now)

    def logged_since(self, marks: dict[int, object]) -> dict[int, str]:
        logged = {}
        for b in BROKERS:
            with contextlib.suppress(Exception):
                since = marks[b]
                assert isinstance(since, dt.datetime)
                logged[b] = self.container(f"broker{b}").logs(since=since).decode(errors="replace")
        return logged

    def replica_dir(self, broker_id: int, topic: str, partition: int) -> Path:
        return self.data_root / f"broker{broker_id}" / f"{topic}-{partition}"
