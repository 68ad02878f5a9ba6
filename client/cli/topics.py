"""`minikafka topics` (as kafka-topics: create, delete, describe) and `minikafka leader-election`
(the preferred leader election, as kafka-leader-election).
"""

from __future__ import annotations

import argparse
import json
import sys

from client.admin import AdminClient
from client.cli.common import CliError, Commands, add_connection_arguments, check, client_security
from minikafka_protocol.errors import Errors


def _configs(items: list[str]) -> dict[str, str]:
    configs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--config '{item}' is not NAME=VALUE")
        configs[name] = value
    return configs


def cmd_topics(args: argparse.Namespace) -> int:
    actions = [a for a in ("create", "delete", "describe") if getattr(args, a)]
    if len(actions) != 1:
        raise CliError("give exactly one of --create, --delete, --describe")
    client = AdminClient(args.bootstrap_server, timeout_s=args.timeout, security=client_security(args))
    if (args.create or args.delete) and not args.topic:
        raise CliError(f"--{actions[0]} needs --topic")
    if args.create:
        result = client.create_topic(args.topic, args.partitions, args.replication_factor, _configs(args.config))
        if args.if_not_exists and result.error_code == Errors.TOPIC_ALREADY_EXISTS.code:
            return 0
        check(result.error_code, result.error_message, f"cannot create topic '{args.topic}'")
        print(f'Created topic {args.topic}.')
        return 0
    if args.delete:
        result = client.delete_topic(args.topic)
        check(result.error_code, result.error_message, f"cannot delete topic '{args.topic}'")
        print(f"Deleted topic {args.topic}.")
        return 0
    # Topic configs come with a Metadata request that names its topics.
    names = [args.topic] if args.topic else [t.name for t in client.metadata().topics]
    metadata = client.metadata(names) if names else client.metadata()
    topics = []
    for topic in metadata.topics:
        if topic.error_code == Errors.UNKNOWN_TOPIC_OR_PARTITION.code:
            raise CliError(f"Topic '{topic.name}' does not exist as expected")
        partitions = [
            p for p in topic.partitions
            if (not args.under_replicated_partitions or len(p.isr) < len(p.replicas))
            and (not args.unavailable_partitions or p.leader < 0)
        ]
        topics.append((topic, partitions))
    replicas = client.replica_states(metadata)

    def offsets(topic: str, partition: int) -> tuple[int | None, dict[int, int]]:
        state = replicas.get((topic, partition))
        if state is None:
            return None, {}
        return state.high_watermark, {r.broker_id: r.log_end_offset for r in state.replicas}

    if args.output == "json":
        print(json.dumps([
            {
                "topic": t.name,
                "partition_count": len(t.partitions),
                "replication_factor": len(t.partitions[0].replicas) if t.partitions else 0,
                "configs": dict(t.configs),
                "partitions": [
                    {"partition": p.partition, "leader": p.leader if p.leader >= 0 else None,
                     "leader_epoch": p.leader_epoch, "replicas": list(p.replicas), "isr": list(p.isr),
                     "offline_replicas": list(p.offline_replicas),
                     "high_watermark": offsets(t.name, p.partition)[0],
                     "log_end_offsets": {str(b): o for b, o in offsets(t.name, p.partition)[1].items()}}
                    for p in partitions
                ],
            }
            for t, partitions in topics
        ], indent=2))
        return 0
    filtered = args.under_replicated_partitions or args.unavailable_partitions
    for topic, partitions in topics:
        if not filtered:
            configs = ",".join(f"{k}={v}" for k, v in sorted(topic.configs.items()))
            rf = len(topic.partitions[0].replicas) if topic.partitions else 0
            print(f"Topic: {topic.name}\tPartitionCount: {len(topic.partitions)}\tReplicationFactor: {rf}\t"
                  f"Configs: {configs}")
        for p in partitions:
            leader = str(p.leader) if p.leader >= 0 else "none"
            line = (f"\tTopic: {topic.name}\tPartition: {p.partition}\tLeader: {leader}\t"
                    f"Replicas: {_ids(p.replicas)}\tIsr: {_ids(p.isr)}\tLeaderEpoch: {p.leader_epoch}")
            if p.offline_replicas:
                line += f"\tOffline: {_ids(p.offline_replicas)}"
            high_watermark, log_ends = offsets(topic.name, p.partition)
            if high_watermark is not None:
                # Not in kafka-topics: what each replica holds, as its leader last saw it.
                ends = ",".join(f"{b}:{o if o >= 0 else '?'}" for b, o in sorted(log_ends.items()))
                line += f"\tHighWatermark: {high_watermark}\tLogEndOffsets: {ends}"
            print(line)
    return 0


def _ids(ids: object) -> str:
    return ",".join(str(i) for i in ids)  # type: ignore[attr-defined]


def cmd_leader_election(args: argparse.Namespace) -> int:
    if args.election_type.lower() != "preferred":
        raise CliError(f"election type '{args.election_type}' is not supported; use preferred")
    if args.all_topic_partitions == bool(args.topic):
        raise CliError("give either --all-topic-partitions or --topic (with --partition)")
    if args.partition is not None and not args.topic:
        raise CliError("--partition needs --topic")
    client = AdminClient(args.bootstrap_server, timeout_s=args.timeout, security=client_security(args))
    partitions = None
    if args.topic:
        if args.partition is not None:
            partitions = [(args.topic, args.partition)]
        else:
            metadata = client.metadata([args.topic])
            topic = metadata.topics[0]
            if topic.error_code != Errors.NONE.code:
                raise CliError(f"Topic '{args.topic}' does not exist")
            partitions = [(args.topic, p.partition) for p in topic.partitions]
    response = client.elect_preferred_leaders(partitions)
    check(response.error_code, "", "leader election failed")
    elected = [r for r in response.results if r.error_code == Errors.NONE.code]
    not_needed = [r for r in response.results if r.error_code == Errors.ELECTION_NOT_NEEDED.code]
    failed = [r for r in response.results if r.error_code not in (Errors.NONE.code, Errors.ELECTION_NOT_NEEDED.code)]
    if elected:
        print("Successfully completed leader election (PREFERRED) for partitions "
              + ", ".join(f"{r.topic}-{r.partition}" for r in elected))
    if not_needed:
        print("Valid replica already elected for partitions "
              + ", ".join(f"{r.topic}-{r.partition}" for r in not_needed))
    for r in failed:
        print(f"Election for partition {r.topic}-{r.partition} failed: {Errors.for_code(r.error_code).name}",
              file=sys.stderr)
    return 1 if failed else 0


def add_commands(commands: Commands) -> None:
    """`minikafka topics` and `minikafka leader-election`."""
    topics = commands.add_parser("topics", help="create, delete and describe topics (as kafka-topics)")
    add_connection_arguments(topics)
    topics.add_argument("--create", action="store_true")
    topics.add_argument("--delete", action="store_true")
    topics.add_argument("--describe", action="store_true")
    topics.add_argument("--topic")
    topics.add_argument("--partitions", type=int, default=-1, help="default: the broker's num.partitions")
    topics.add_argument("--replication-factor", type=int, default=-1,
                        help="default: the broker's default.replication.factor")
    topics.add_argument("--config", action="append", default=[], metavar="NAME=VALUE")
    topics.add_argument("--if-not-exists", action="store_true", help="with --create: an existing topic is fine")
    topics.add_argument("--under-replicated-partitions", action="store_true")
    topics.add_argument("--unavailable-partitions", action="store_true")
    topics.add_argument("--output", choices=("text", "json"), default="text")
    topics.add_argument("--timeout", type=float, default=30.0)
    topics.set_defaults(func=cmd_topics)

    election = commands.add_parser("leader-election", help="run the preferred leader election")
    add_connection_arguments(election)
    election.add_argument("--election-type", default="preferred", help="preferred (the only type)")
    election.add_argument("--preferred", action="store_const", dest="election_type", const="preferred")
    election.add_argument("--topic")
    election.add_argument("--partition", type=int)
    election.add_argument("--all-topic-partitions", action="store_true")
    election.add_argument("--timeout", type=float, default=30.0)
    election.set_defaults(func=cmd_leader_election)
