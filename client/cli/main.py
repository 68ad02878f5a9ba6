"""The `minikafka` command line: the parser of every command, in the order `--help` lists them,
and `main`, which runs one and turns its errors into one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from client.admin import AdminError
from client.cli import acls, certs, chaos, cluster, groups, produce_consume, topics, watch
from client.cli.common import CliError, UsageError
from client.cluster import KafkaError
from client.tooling.processes import LocalClusterError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minikafka", description="Run and inspect a minikafka cluster.")
    commands = parser.add_subparsers(dest="command", required=True)
    cluster.add_cluster_command(commands)
    topics.add_commands(commands)
    produce_consume.add_commands(commands)
    groups.add_commands(commands)
    watch.add_commands(commands)
    cluster.add_local_cluster_command(commands)
    certs.add_commands(commands)
    acls.add_commands(commands)
    chaos.add_commands(commands)
    return parser


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (docker stop) ends a command as Ctrl-C does: a producer flushes, a group consumer
    # commits and leaves its group.
    if threading.current_thread() is threading.main_thread():  # Python allows handlers only there
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"minikafka: error: {e}", file=sys.stderr)
        return 2
    except (CliError, AdminError, LocalClusterError, KafkaError) as e:
        print(f"minikafka: error: {e}", file=sys.stderr)
        return 1
