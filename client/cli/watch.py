"""`minikafka watch`: the live view of the four elections (client/watch)."""

from __future__ import annotations

import argparse
import os
import sys

from client.admin import AdminClient
from client.cli.common import (
    Commands,
    UsageError,
    add_connection_arguments,
    checked_bootstrap,
    client_security,
    rich_console,
)
from client.watch import collector as watch_collector
from client.watch import render as watch_render


def cmd_watch(args: argparse.Namespace) -> int:
    if args.interval <= 0 or args.timeout <= 0:
        raise UsageError("--interval and --timeout must be positive")
    bootstrap = checked_bootstrap(args.bootstrap_server)
    try:
        zookeeper = watch_collector.parse_zookeeper_connect(args.zookeeper) if args.zookeeper is not None else []
    except ValueError as e:
        raise UsageError(str(e)) from None
    # A cluster out of reach is the one-line error every command gives; once it answered, the view
    # shows whatever it can.
    security = client_security(args)
    AdminClient(bootstrap, timeout_s=args.timeout, security=security).metadata()
    # One refresh's calls all go at once: each may take up to the interval (longer with --once).
    timeout_s = min(args.timeout, 5.0) if args.once else min(max(args.interval, 0.5), 3.0)
    collector = watch_collector.SnapshotCollector(bootstrap, zookeeper, timeout_s=timeout_s, security=security)
    try:
        if args.once:
            watch_render.print_snapshot(collector.collect(), args.output, args.internal, rich_console())
        else:
            watch_render.run(collector, args.interval, args.output, args.internal, rich_console())
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader went away (| head): nothing left to print to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        collector.close()
    return 0


def add_commands(commands: Commands) -> None:
    """`minikafka watch`."""
    watcher = commands.add_parser(
        "watch", help="a live view of the four elections: controller, partition leaders, group coordinators, "
                      "group leaders",
        description="Refresh a view of the cluster every --interval seconds: the controller and its epoch, the "
                    "brokers, every partition's leader, ISR and leader epoch, every consumer group's coordinator, "
                    "generation, leader and assignments, the ZooKeeper servers' modes (with --zookeeper), and a "
                    "log of the elections seen between refreshes, each with its cause. --once prints one "
                    "snapshot and exits; --output json with the live view prints one JSON object a line per "
                    "refresh.",
    )
    add_connection_arguments(watcher)
    watcher.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="between refreshes (1)")
    watcher.add_argument("--zookeeper", metavar="HOST:PORT[,HOST:PORT]",
                         help="also show each ZooKeeper server's mode (the srvr four-letter word)")
    watcher.add_argument("--internal", action="store_true",
                         help="show every __consumer_offsets partition, not only those coordinating a group")
    watcher.add_argument("--once", action="store_true", help="print one snapshot and exit")
    watcher.add_argument("--output", choices=("text", "json"), default="text")
    watcher.add_argument("--timeout", type=float, default=10.0,
                         help="seconds to wait for a first answer from the bootstrap servers")
    watcher.set_defaults(func=cmd_watch)
