"""The chaos cluster as processes on this machine: a ZooKeeper ensemble (three servers, or one
without zookeeper faults) and three brokers that reach each ZooKeeper server through a TCP proxy
of their own, so that a broker can be cut off the network while its process runs on.
"""

from __future__ import annotations

from pathlib import Path

from client.chaos.cluster import BROKERS, ChaosCluster, Mend, ProcessHandles, hurt_process
from client.tooling.local_cluster import BrokerProcess
from client.tooling.zookeeper import ZkProxy, ZooKeeperEnsemble

ZOOKEEPER_SESSION_TIMEOUT_MS = 4000
BROKER_OVERRIDES = {
    "zookeeper.session.timeout.ms": str(ZOOKEEPER_SESSION_TIMEOUT_MS),
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "10",  # Kafka's 50 take longer to create, to no purpose here
    "controlled.shutdown.retry.backoff.ms": "1000",
}


class LocalChaosCluster(ChaosCluster):
    zookeeper_session_timeout_ms = ZOOKEEPER_SESSION_TIMEOUT_MS

    def __init__(self, work_dir: Path, zookeeper_servers: int = 3) -> None:
        super().__init__()
        self.work_dir = Path(work_dir)
        self.ensemble = ZooKeeperEnsemble(self.work_dir, zookeeper_servers)
        self.proxies = {b: [ZkProxy(s.host, s.port) for s in self.ensemble.servers] for b in BROKERS}
        self.brokers = {
            b: BrokerProcess(b, ",".join(f"127.0.0.1:{p.port}" for p in self.proxies[b]),
                             self.work_dir / f"broker-{b}", overrides=BROKER_OVERRIDES)
            for b in BROKERS
        }
        self.bootstrap_servers = ",".join(b.address for b in self.brokers.values())
        self.zookeeper_connect = self.ensemble.connect

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

    def zookeeper_modes(self) -> dict[int, str | None]:
        return {i: s.mode() if s.running else None for i, s in enumerate(self.ensemble.servers, start=1)}

    def hurt_broker(self, kind: str, broker_id: int) -> Mend:
        broker = self.brokers[broker_id]
        if kind == "partition":
            for proxy in self.proxies[broker_id]:
                proxy.cut()

            def heal() -> None:
                for proxy in self.proxies[broker_id]:
                    proxy.heal()
            return heal
        return hurt_process(kind, ProcessHandles(broker.kill, broker.start, broker.pause, broker.resume,
                                                 lambda: broker.terminate(60)))

    def hurt_zookeeper(self, server_id: int) -> Mend:
        server = self.ensemble.servers[server_id - 1]
        server.kill()
        return server.start

    def ensure_up(self) -> None:
        down = [server for server in self.ensemble.servers if not server.running]
        for server in down:
            server.start(wait=False)
        for server in down:
            server.wait_answering()
        for broker in self.brokers.values():
            broker.resume()
            if not broker.running:
                broker.start()
        for proxies in self.proxies.values():
            for proxy in proxies:
                proxy.heal()
        self.ensure_members_up()
        self.ensemble.wait_for_quorum()

    def exited_brokers(self) -> list[int]:
        return [b for b, broker in self.brokers.items() if not broker.running]

    def start_broker(self, broker_id: int) -> None:
        self.brokers[broker_id].start()

    def log_marks(self) -> dict[int, object]:
        return {b: len(broker.log_text()) for b, broker in self.brokers.items()}

    def logged_since(self, marks: dict[int, object]) -> dict[int, str]:
        return {b: broker.log_text()[int(marks.get(b, 0)):] for b, broker in self.brokers.items()}  # type: ignore[call-overload]

    def replica_dir(self, broker_id: int, topic: str, partition: int) -> Path:
        return self.work_dir / f"broker-{broker_id}" / "data" / f"{topic}-{partition}"
