"""`minikafka-broker server.properties [--override name=value ...]`, as Kafka's kafka-server-start."""

from __future__ import annotations

import argparse
import logging
import resource
import signal
import sys
import threading

from broker import heap
from broker.config import ConfigError, KafkaConfig
from broker.server import FatalBrokerError, KafkaServer
from broker.zk.kafka_zk_client import BrokerIdInUseError, ZooKeeperClientTimeoutError

LOG_FORMAT = "[%(asctime)s,%(msecs)03d] %(levelname)s %(message)s (%(name)s)"


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S", stream=sys.stderr)
    # A controller failover logs a line per partition, tens of thousands at once: skip gathering
    # what the format never shows (the logging HOWTO's "Optimization").
    logging._srcfile = None  # no caller lookup
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # kazoo's own INFO lines repeat what the broker logs in Kafka's words.
    logging.getLogger("kazoo").setLevel(logging.WARNING)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="minikafka-broker",
        description="Run one minikafka broker. Properties use Kafka's names; each may also come from "
        "MINIKAFKA_<NAME> (dots as underscores), and --override wins over both.",
    )
    parser.add_argument("properties", nargs="?", help="server.properties file (optional in containers)")
    parser.add_argument(
        "--override", action="append", default=[], metavar="NAME=VALUE", help="override a property"
    )
    return parser.parse_args(argv)


def raise_open_file_limit() -> str:
    """Log files are opened through a bounded cache sized from this limit (broker/log/file_cache.py),
    and sockets need descriptors too: raise the soft limit to the hard one, and the hard one too
    where allowed (root with CAP_SYS_RESOURCE, up to fs.nr_open), as Kafka's documentation asks
    operators to."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            wanted = max(hard, min(int(f.read()), 1 << 20))
    except (OSError, ValueError):
        pass
    for limit in (wanted, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return f"open file limit {limit} (was {soft})"
        except (ValueError, OSError):
            continue
    return f"open file limit {soft}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, warnings = KafkaConfig.load(args.properties, args.override)
    except ConfigError as e:
        print(f"minikafka-broker: error: {e}", file=sys.stderr)
        return 2
    configure_logging()
    log = logging.getLogger("broker")
    for warning in warnings:
        log.warning(warning)
    log.info("%s", raise_open_file_limit())

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    heap.configure()
    server = KafkaServer(config)
    try:
        server.startup()
    except (ZooKeeperClientTimeoutError, BrokerIdInUseError, FatalBrokerError) as e:
        log.error("Fatal error during KafkaServer startup: %s", e)
        print(f"minikafka-broker: error: {e}", file=sys.stderr)
        server.shutdown()
        return 1
    # Wake on a signal or a fatal error reported from another thread.
    threading.Thread(target=lambda: (server.fatal.wait(), stop.set()), daemon=True).start()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    if server.fatal.is_set():
        print(f"minikafka-broker: error: {server.fatal_reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
