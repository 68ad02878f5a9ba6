"""`minikafka chaos`: seeded faults against a cluster, a recorded history, and a check of every
invariant (client/chaos).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from client.cli.common import CliError, Commands, UsageError


def cmd_chaos(args: argparse.Namespace) -> int:
    from client.chaos import suite
    from client.chaos.schedule import validate_kinds

    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    if args.duration <= 0:
        raise UsageError("--duration must be positive")
    try:
        kinds = validate_kinds(tuple(k.strip() for k in args.faults.split(",") if k.strip()))
    except ValueError as e:
        raise UsageError(str(e)) from None
    history = Path(args.history) if args.history else Path(tempfile.mkdtemp(prefix="minikafka-chaos-"))
    history.mkdir(parents=True, exist_ok=True)
    # The clients' own logs (retries, rebalances) go to a file beside the histories, not the terminal.
    handler = logging.FileHandler(history / "chaos.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(message)s (%(name)s)"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    print(f"Histories and reports: {history}", file=sys.stderr, flush=True)

    def progress(report: object) -> None:
        print(suite.run_line(report), file=sys.stderr, flush=True)  # type: ignore[arg-type]

    cluster = None
    if args.docker:
        from client.chaos.compose import DockerChaosCluster
        try:
            cluster = DockerChaosCluster(args.project)
        except Exception as e:  # no docker socket, not in a container of the project, ...
            raise CliError(f"--docker: {e}") from None
    try:
        reports = suite.run_suite(args.runs, args.seed, args.duration, kinds, history, progress, cluster)
    except KeyboardInterrupt:
        return 130
    suite.print_report(reports, args.output)
    return 0 if all(r.ok for r in reports) else 1


def add_commands(commands: Commands) -> None:
    """`minikafka chaos`."""
    chaos = commands.add_parser(
        "chaos", help="seeded faults against a local cluster, a recorded history and a check of every invariant")
    chaos.add_argument("--docker", action="store_true",
                       help="drive the compose cluster (from its chaos service: make chaos-docker) instead of "
                            "starting a local one")
    chaos.add_argument("--project", help="with --docker: the compose project (default: this container's)")
    chaos.add_argument("--runs", type=int, default=1)
    chaos.add_argument("--seed", type=int, default=1, help="the first run's seed; run i has seed + i")
    chaos.add_argument("--duration", type=float, default=20.0, metavar="SECONDS", help="of each run's fault phase")
    chaos.add_argument("--faults", default="kill,pause,stop,partition,zookeeper",
                       help="comma-separated: kill, pause, stop, partition, zookeeper")
    chaos.add_argument("--output", choices=("text", "json"), default="text")
    chaos.add_argument("--history", metavar="DIR", help="keep each run's history and report here (run-SEED/)")
    chaos.set_defaults(func=cmd_chaos)
