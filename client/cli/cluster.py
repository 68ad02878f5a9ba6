"""`minikafka cluster describe` (the cluster id, controller and live brokers) and `minikafka
local-cluster` (ZooKeeper and N brokers as processes on this machine).
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import threading
from pathlib import Path

from rich.table import Table

from client.admin import AdminClient, ClusterDescription
from client.cli.common import CliError, Commands, add_connection_arguments, client_security, rich_console
from client.security import PLAINTEXT, read_command_config
from client.tooling.local_cluster import LocalCluster
from client.tooling.processes import LocalClusterError, wait_until


def print_cluster(description: ClusterDescription, output: str) -> None:
    if output == "json":
        print(json.dumps(description.to_json(), indent=2))
        return
    console = rich_console()
    controller = (
        f"{description.controller_id} (epoch {description.controller_epoch})"
        if description.controller_id >= 0
        else f"none (last epoch {description.controller_epoch})"
    )
    console.print(f"Cluster ID: {description.cluster_id}")
    console.print(f"Controller: {controller}")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("BROKER", "HOST", "PORT", "RACK", "BROKER EPOCH", "CONTROLLER"):
        table.add_column(column)
    for b in description.brokers:
        table.add_row(
            str(b.id), b.host, str(b.port), b.rack or "-", str(b.broker_epoch),
            "*" if b.id == description.controller_id else "",
        )
    console.print(table)


def cmd_cluster_describe(args: argparse.Namespace) -> int:
    client = AdminClient(args.bootstrap_server, timeout_s=args.timeout, security=client_security(args))
    print_cluster(client.describe_cluster(), args.output)
    return 0


def cmd_local_cluster(args: argparse.Namespace) -> int:
    if args.brokers < 1:
        raise CliError("--brokers must be at least 1")
    overrides = {}
    for item in args.override:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--override '{item}' is not NAME=VALUE")
        overrides[name] = value
    work_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="minikafka-"))
    cluster = LocalCluster(work_dir, args.brokers, zookeeper_port=args.zookeeper_port,
                           base_port=args.base_port, overrides=overrides, secure=args.secure,
                           kafka_base_port=args.kafka_base_port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        cluster.start()
        print(f"ZooKeeper: {cluster.zookeeper_connect}")
        print(f"Bootstrap servers: {cluster.bootstrap_servers}")
        if cluster.kafka_bootstrap_servers:
            print(f"Kafka protocol bootstrap servers: {cluster.kafka_bootstrap_servers}")
        for broker in cluster.brokers:
            print(f"Broker {broker.broker_id}: pid {broker.pid}, {broker.address}, log {broker.log_path}")
        security, config_flag = PLAINTEXT, ""
        if cluster.certs is not None:
            admin_config = cluster.certs / "admin.properties"
            security, config_flag = read_command_config(str(admin_config)), f" --command-config {admin_config}"
            print(f"SSL with client certificates; certificates and client properties in {cluster.certs}")
            zookeeper = " ".join(f"{k}={v}" for k, v in {"zookeeper.connect": cluster.zookeeper_connect,
                                                         **cluster.zookeeper_auth}.items())
            print(f"ACLs: minikafka acls --authorizer-properties {zookeeper} --list")
        admin = AdminClient(cluster.bootstrap_servers, timeout_s=5, security=security)

        def converged() -> ClusterDescription | None:
            for broker in cluster.brokers:
                if not broker.running:
                    raise LocalClusterError(f"broker {broker.broker_id} exited: {broker.exit_reason()}")
            d = admin.describe_cluster()
            return d if d.controller_id >= 0 and len(d.brokers) == len(cluster.brokers) else None

        try:
            description = wait_until(converged, 60, "every broker to register and a controller to be elected")
        except AssertionError as e:
            raise CliError(str(e)) from None
        print(f"Controller: broker {description.controller_id} (epoch {description.controller_epoch})")
        print(f"Watch it with: minikafka cluster describe --bootstrap-server {cluster.bootstrap_servers}{config_flag}")
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
        print("Stopping the local cluster...", flush=True)
    finally:
        cluster.stop()
    return 0


def add_cluster_command(commands: Commands) -> None:
    """`minikafka cluster describe`."""
    cluster = commands.add_parser("cluster", help="the cluster as a whole")
    cluster_commands = cluster.add_subparsers(dest="action", required=True)
    describe = cluster_commands.add_parser("describe", help="cluster id, controller and live brokers")
    add_connection_arguments(describe)
    describe.add_argument("--output", choices=("text", "json"), default="text")
    describe.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    describe.set_defaults(func=cmd_cluster_describe)


def add_local_cluster_command(commands: Commands) -> None:
    """`minikafka local-cluster`."""
    local = commands.add_parser("local-cluster", help="ZooKeeper and N brokers on 127.0.0.1, no Docker")
    local.add_argument("--brokers", type=int, default=3)
    local.add_argument("--zookeeper-port", type=int, default=2181)
    local.add_argument("--base-port", type=int, default=9092, help="broker N listens on base-port + N - 1")
    local.add_argument("--kafka-base-port", type=int, default=19092,
                       help="broker N speaks Kafka's protocol on kafka-base-port + N - 1 (for Kafka's own clients)")
    local.add_argument("--dir", help="where data and logs go (default: a new temporary directory)")
    local.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                       help="a broker property for every broker")
    local.add_argument("--secure", action="store_true",
                       help="SSL listeners requiring client certificates, between the brokers too "
                            "(a CA and certificates are made in DIR/certs)")
    local.set_defaults(func=cmd_local_cluster)
