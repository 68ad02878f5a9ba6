"""The `minikafka` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from client.admin import AdminClient, AdminError, ClusterDescription, parse_bootstrap_servers
from client.cluster import ClusterMetadata, KafkaError
from client.consumer import ConsumerRecord, KafkaConsumer
from client.group.wire import Coordinator, DescribedMember, GroupClient, describe_members
from client.producer import FutureRecordMetadata, KafkaProducer
from client.tooling.local_cluster import LocalCluster
from client.tooling.processes import LocalClusterError, wait_until
from client.watch import collector as watch_collector
from client.watch import render as watch_render
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC
from minikafka_rpc import kafka_pb2

T = TypeVar("T")


class CliError(Exception):
    """Printed as one line, `minikafka: error: ...`, with exit status 1."""


class UsageError(CliError):
    """A bad argument: printed as CliError, with exit status 2 as argparse's own."""


def _console() -> Console:
    # Wide enough that a pipe or a file gets whole rows.
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def print_cluster(description: ClusterDescription, output: str) -> None:
    if output == "json":
        print(json.dumps(description.to_json(), indent=2))
        return
    console = _console()
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
    client = AdminClient(args.bootstrap_server, timeout_s=args.timeout)
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
                           base_port=args.base_port, overrides=overrides)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        cluster.start()
        print(f"ZooKeeper: {cluster.zookeeper.connect}")
        print(f"Bootstrap servers: {cluster.bootstrap_servers}")
        for broker in cluster.brokers:
            print(f"Broker {broker.broker_id}: pid {broker.pid}, {broker.address}, log {broker.log_path}")
        admin = AdminClient(cluster.bootstrap_servers, timeout_s=5)

        def converged() -> ClusterDescription | None:
            for broker in cluster.brokers:
                if not broker.running:
                    raise LocalClusterError(f"broker {broker.broker_id} exited; see {broker.log_path}")
            d = admin.describe_cluster()
            return d if d.controller_id >= 0 and len(d.brokers) == len(cluster.brokers) else None

        try:
            description = wait_until(converged, 60, "every broker to register and a controller to be elected")
        except AssertionError as e:
            raise CliError(str(e)) from None
        print(f"Controller: broker {description.controller_id} (epoch {description.controller_epoch})")
        print("Watch it with: minikafka cluster describe --bootstrap-server " + cluster.bootstrap_servers)
        print("Press Ctrl-C to stop.", flush=True)
        stop.wait()
        print("Stopping the local cluster...", flush=True)
    finally:
        cluster.stop()
    return 0


def _configs(items: list[str]) -> dict[str, str]:
    configs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--config '{item}' is not NAME=VALUE")
        configs[name] = value
    return configs


def _check(error_code: int, message: str, what: str) -> None:
    if error_code != Errors.NONE.code:
        name = Errors.for_code(error_code).name
        raise CliError(f"{what}: {name}" + (f": {message}" if message else ""))


def cmd_topics(args: argparse.Namespace) -> int:
    actions = [a for a in ("create", "delete", "describe") if getattr(args, a)]
    if len(actions) != 1:
        raise CliError("give exactly one of --create, --delete, --describe")
    client = AdminClient(args.bootstrap_server, timeout_s=args.timeout)
    if (args.create or args.delete) and not args.topic:
        raise CliError(f"--{actions[0]} needs --topic")
    if args.create:
        result = client.create_topic(args.topic, args.partitions, args.replication_factor, _configs(args.config))
        if args.if_not_exists and result.error_code == Errors.TOPIC_ALREADY_EXISTS.code:
            return 0
        _check(result.error_code, result.error_message, f"cannot create topic '{args.topic}'")
        print(f'Created topic {args.topic}.')
        return 0
    if args.delete:
        result = client.delete_topic(args.topic)
        _check(result.error_code, result.error_message, f"cannot delete topic '{args.topic}'")
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
    client = AdminClient(args.bootstrap_server, timeout_s=args.timeout)
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
    _check(response.error_code, "", "leader election failed")
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


def _bootstrap(value: str) -> str:
    try:
        parse_bootstrap_servers(value)
    except AdminError as e:
        raise UsageError(str(e)) from None
    return value


def _client_warnings() -> None:
    """The clients' warnings (retries, metadata failures) to stderr, one line each."""
    logging.basicConfig(level=logging.WARNING, format="minikafka: warning: %(message)s")


class _GroupLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "minikafka: warning: " if record.levelno >= logging.WARNING else "minikafka: "
        return prefix + record.getMessage()


class _GroupLog:
    """The group coordinator's log (joins, roles, rebalances, coordinator changes) to stderr, one
    line each, while a group consumer runs."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("client.group")
        self.saved = (self.logger.level, self.logger.propagate)
        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(_GroupLogFormatter())
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.level, self.logger.propagate = self.saved


def _require_topic(bootstrap: str, topic: str) -> None:
    metadata = AdminClient(bootstrap).metadata([topic])
    if not metadata.topics or metadata.topics[0].error_code == Errors.UNKNOWN_TOPIC_OR_PARTITION.code:
        raise CliError(f"Topic '{topic}' does not exist")


def _lines(separator: bytes | None) -> Iterator[tuple[bytes | None, bytes | None, str | None]]:
    """(key, value, problem) for each line of stdin; a line without the separator is a problem."""
    for number, line in enumerate(sys.stdin.buffer, 1):
        line = line.rstrip(b"\n").removesuffix(b"\r")
        if separator is None:
            yield None, line, None
        else:
            key, found, value = line.partition(separator)
            yield (key, value, None) if found else (None, None, f"line {number} has no key separator {separator!r}")


def _generated(count: int, size: int) -> Iterator[tuple[bytes | None, bytes | None, str | None]]:
    for sequence in range(count):
        yield None, b"%0*d" % (size, sequence), None


def cmd_produce(args: argparse.Namespace) -> int:
    if args.generate is not None and args.generate < 1:
        raise UsageError("--generate must be at least 1")
    if args.record_size is not None and args.generate is None:
        raise UsageError("--record-size needs --generate")
    if args.record_size is not None and args.record_size < 1:
        raise UsageError("--record-size must be at least 1")
    if args.batch_size < 1 or args.linger_ms < 0:
        raise UsageError("--batch-size must be at least 1 and --linger-ms not negative")
    if args.key_separator == "":
        raise UsageError("--key-separator must not be empty")
    bootstrap = _bootstrap(args.bootstrap_server)
    _client_warnings()
    _require_topic(bootstrap, args.topic)
    producer = KafkaProducer(bootstrap, acks=args.acks, linger_ms=args.linger_ms, batch_size=args.batch_size)
    if args.throughput is not None and args.throughput <= 0:
        raise UsageError("--throughput must be positive")
    failures: list[str] = []
    failures_lock = threading.Lock()
    out = sys.stdout

    def on_done(future: FutureRecordMetadata, value: bytes | None) -> None:
        error = future.exception()
        if error is not None:
            with failures_lock:
                failures.append(str(error))
        elif args.print_acknowledged:
            metadata = future.result()
            with failures_lock:
                out.write(f"{metadata.partition}\t{metadata.offset}\t{(value or b'').decode(errors='replace')}\n")
                out.flush()

    records = (_generated(args.generate, args.record_size or 100) if args.generate is not None
               else _lines(None if args.key_separator is None else args.key_separator.encode()))
    sent, interrupted = 0, False
    started = time.monotonic()
    try:
        try:
            for key, value, problem in records:
                sent += 1
                if problem is not None:
                    failures.append(problem)
                    continue
                if args.throughput is not None:
                    ahead = started + sent / args.throughput - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                producer.send(args.topic, value, key=key).add_done_callback(lambda f, v=value: on_done(f, v))
        except KeyboardInterrupt:
            interrupted = True
        producer.flush()
    finally:
        producer.close()
    elapsed = max(time.monotonic() - started, 1e-9)
    acknowledged = sent - len(failures)
    print(f"{acknowledged} records acknowledged, {len(failures)} failed in {elapsed:.2f} s "
          f"({acknowledged / elapsed:.0f} records/s)", file=sys.stderr)
    if failures:
        kinds = len({failure.split(":", 1)[0] for failure in failures})
        raise CliError(f"{len(failures)} records failed: {failures[0]}"
                       + (f" (and {kinds - 1} other kinds of error)" if kinds > 1 else ""))
    return 130 if interrupted else 0


def _format(record: ConsumerRecord, offsets: bool, keys: bool) -> bytes:
    fields = [str(record.partition).encode(), str(record.offset).encode()] if offsets else []
    if keys:
        fields.append(b"null" if record.key is None else record.key)
    fields.append(b"null" if record.value is None else record.value)
    return b"\t".join(fields) + b"\n"


# The consumer settings --consumer-property takes: Kafka's name -> (KafkaConsumer argument, parser).
CONSUMER_PROPERTIES: dict[str, tuple[str, Callable[[str], object]]] = {
    "session.timeout.ms": ("session_timeout_ms", int),
    "heartbeat.interval.ms": ("heartbeat_interval_ms", int),
    "max.poll.interval.ms": ("max_poll_interval_ms", int),
    "max.poll.records": ("max_poll_records", int),
    "enable.auto.commit": ("enable_auto_commit", lambda v: {"true": True, "false": False}[v.lower()]),
    "auto.commit.interval.ms": ("auto_commit_interval_ms", int),
    "partition.assignment.strategy": ("partition_assignment_strategy",
                                      lambda v: tuple(x.strip() for x in v.split(",") if x.strip())),
    "client.id": ("client_id", str),
    "request.timeout.ms": ("request_timeout_ms", int),
    "stall.warning.ms": ("stall_warning_ms", int),
}


def _consumer_properties(items: list[str]) -> dict[str, object]:
    settings: dict[str, object] = {}
    for item in items:
        name, found, raw = item.partition("=")
        if not found or name.strip() not in CONSUMER_PROPERTIES:
            raise UsageError(f"--consumer-property takes NAME=VALUE with NAME one of "
                             f"{', '.join(sorted(CONSUMER_PROPERTIES))}: not {item!r}")
        argument, parse = CONSUMER_PROPERTIES[name.strip()]
        try:
            settings[argument] = parse(raw.strip())
        except (ValueError, KeyError):
            raise UsageError(f"Invalid value {raw.strip()!r} for consumer property {name.strip()}") from None
    return settings


def cmd_consume(args: argparse.Namespace) -> int:
    if args.max_messages is not None and args.max_messages < 1:
        raise UsageError("--max-messages must be at least 1")
    if args.timeout_ms is not None and args.timeout_ms < 0:
        raise UsageError("--timeout-ms must not be negative")
    if args.partition is not None and args.partition < 0:
        raise UsageError("--partition must not be negative")
    if args.group is not None and args.partition is not None:
        raise UsageError("--partition and --group cannot be used together: the group assigns the partitions")
    if args.group == "" or args.group_instance_id == "":
        raise UsageError("--group and --group-instance-id must not be empty")
    if args.group_instance_id is not None and args.group is None:
        raise UsageError("--group-instance-id needs --group")
    settings = _consumer_properties(args.consumer_property)
    bootstrap = _bootstrap(args.bootstrap_server)
    _client_warnings()
    reset = "earliest" if args.from_beginning else "latest"
    with _GroupLog() if args.group is not None else contextlib.nullcontext():
        try:
            if args.group is None:
                consumer = KafkaConsumer(bootstrap, auto_offset_reset=reset, **settings)  # type: ignore[arg-type]
            else:
                # auto.offset.reset applies only where the group has committed nothing, as in Kafka.
                consumer = KafkaConsumer(bootstrap, auto_offset_reset=reset, group_id=args.group,
                                         group_instance_id=args.group_instance_id, **settings)  # type: ignore[arg-type]
        except ValueError as e:
            raise UsageError(str(e)) from None
        return _consume(args, consumer)


def _consume(args: argparse.Namespace, consumer: KafkaConsumer) -> int:
    count = 0
    try:
        partitions = consumer.partitions_for(args.topic)
        if partitions is None:
            raise CliError(f"Topic '{args.topic}' does not exist")
        if args.group is not None:
            consumer.subscribe([args.topic])
        else:
            if args.partition is not None and args.partition not in partitions:
                raise CliError(f"Topic '{args.topic}' has no partition {args.partition} (it has {len(partitions)})")
            consumer.assign([(args.topic, p) for p in sorted(partitions) if args.partition in (None, p)])
            if args.from_beginning:
                consumer.seek_to_beginning()
            else:
                consumer.seek_to_end()
        out = sys.stdout.buffer
        last_record = time.monotonic()
        while args.max_messages is None or count < args.max_messages:
            wait_ms = 1000.0
            if args.timeout_ms is not None:
                wait_ms = min(wait_ms, max(0.0, args.timeout_ms - (time.monotonic() - last_record) * 1000))
            records = consumer.poll(wait_ms)
            if records:
                if args.max_messages is not None and len(records) > args.max_messages - count:
                    records = _keep_first(consumer, records, args.max_messages - count, args.group is not None)
                out.write(b"".join(_format(r, args.print_offsets, args.print_keys) for r in records))
                out.flush()
                count += len(records)
                last_record = time.monotonic()
            elif args.timeout_ms is not None and (time.monotonic() - last_record) * 1000 >= args.timeout_ms:
                break
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader went away (| head): nothing left to print to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        # A group consumer commits its position here, so a restart resumes after it; bounded, for Ctrl-C.
        consumer.close(timeout_ms=10000)
    print(f"Processed a total of {count} messages", file=sys.stderr)
    return 0


def _keep_first(consumer: KafkaConsumer, records: list[ConsumerRecord], n: int, in_group: bool) -> list[ConsumerRecord]:
    """The first `n` records; in a group, each partition's position goes back to its first record
    left unprinted, so the commit on close does not skip it."""
    if in_group:
        for record in reversed(records[n:]):
            consumer.seek((record.topic, record.partition), record.offset)
    return records[:n]


# -- groups (as kafka-consumer-groups) ---------------------------------------------------------------


def _retrying(what: str, deadline: float, call: Callable[[], T]) -> T:
    """`call` again after a retriable KafkaError (a coordinator loading or moving) until `deadline`."""
    while True:
        try:
            return call()
        except KafkaError as e:
            if not e.retriable or time.monotonic() >= deadline:
                raise CliError(f"{what}: {e}") from None
        time.sleep(0.1)


def _describe_group(client: GroupClient, group_id: str, deadline: float
                    ) -> tuple[Coordinator, kafka_pb2.DescribedGroup]:
    def attempt() -> tuple[Coordinator, kafka_pb2.DescribedGroup]:
        coordinator = client.find_coordinator(group_id)
        response = client.call(coordinator, "DescribeGroups", kafka_pb2.DescribeGroupsRequest(groups=[group_id]),
                               max(0.1, deadline - time.monotonic()))
        _check(response.error_code, "", f"cannot describe group '{group_id}'")
        (group,) = response.groups
        error = Errors.for_code(group.error_code)
        if error is not Errors.NONE:
            raise KafkaError(error, f"DescribeGroups of '{group_id}' at {coordinator}")
        return coordinator, group

    return _retrying(f"cannot describe group '{group_id}'", deadline, attempt)


def _committed_offsets(client: GroupClient, coordinator: Coordinator, group_id: str, deadline: float
                       ) -> dict[TopicPartition, int]:
    response = _retrying(f"cannot fetch the committed offsets of group '{group_id}'", deadline, lambda: client.call(
        coordinator, "OffsetFetch", kafka_pb2.OffsetFetchRequest(group_id=group_id),
        max(0.1, deadline - time.monotonic())))
    _check(response.error_code, "", f"cannot fetch the committed offsets of group '{group_id}'")
    return {TopicPartition(t.name, p.partition): p.committed_offset
            for t in response.topics for p in t.partitions if p.committed_offset >= 0}


def _log_end_offsets(bootstrap: str, partitions: list[TopicPartition], timeout_s: float
                     ) -> dict[TopicPartition, int | None]:
    """Each partition's log end offset as consumers see it (ListOffsets latest: the high
    watermark); None for a topic that is gone."""
    found: dict[TopicPartition, int | None] = dict.fromkeys(partitions)
    consumer = KafkaConsumer(bootstrap, request_timeout_ms=int(timeout_s * 1000),
                             default_api_timeout_ms=int(timeout_s * 1000))
    try:
        for topic in dict.fromkeys(tp.topic for tp in partitions):
            try:
                found.update(consumer.end_offsets([tp for tp in partitions if tp.topic == topic]))
            except KafkaError as e:
                if e.error is not Errors.UNKNOWN_TOPIC_OR_PARTITION:
                    raise
    finally:
        consumer.close()
    return found


def _dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _print_table(columns: list[str], rows: list[list[str]]) -> None:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def cmd_groups(args: argparse.Namespace) -> int:
    if args.list == args.describe:
        raise UsageError("give exactly one of --list, --describe")
    views = [v for v in ("members", "state", "offsets") if getattr(args, v)]
    if views and not args.describe:
        raise UsageError(f"--{views[0]} needs --describe")
    if len(views) > 1:
        raise UsageError("give at most one of --members, --state, --offsets")
    if args.describe and not args.group:
        raise UsageError("--describe needs --group")
    if args.list and args.group:
        raise UsageError("--group is for --describe; --list shows every group")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    bootstrap = _bootstrap(args.bootstrap_server)
    _client_warnings()
    deadline = time.monotonic() + args.timeout
    cluster = ClusterMetadata(bootstrap, request_timeout_ms=int(args.timeout * 1000))
    try:
        client = GroupClient(cluster)
        if args.list:
            return _list_groups(cluster, client, args.output, deadline)
        coordinator, group = _describe_group(client, args.group, deadline)
        if group.group_state == "Dead":
            raise CliError(f"Consumer group '{args.group}' does not exist.")
        members = describe_members(group)
        if args.state:
            return _print_group_state(args.group, coordinator, group, members, args.output)
        if args.members:
            return _print_group_members(args.group, group, members, args.output)
        committed = _committed_offsets(client, coordinator, args.group, deadline)
        return _print_group_offsets(bootstrap, args.group, group, members, committed, args.output,
                                    max(1.0, deadline - time.monotonic()))
    finally:
        cluster.close()


def _list_groups(cluster: ClusterMetadata, client: GroupClient, output: str, deadline: float) -> int:
    """ListGroups to every broker (each lists the groups it coordinates), as Kafka's admin does."""
    cluster.refresh([OFFSETS_TOPIC])  # for the broker list, whatever the topic's state
    groups: dict[str, kafka_pb2.ListedGroup] = {}
    failures = []
    for broker_id, address in sorted(cluster.brokers.items()):
        try:
            response = client.call(address, "ListGroups", kafka_pb2.ListGroupsRequest(),
                                   max(0.1, deadline - time.monotonic()))
        except KafkaError as e:
            failures.append(f"broker {broker_id}: {e}")
            continue
        if response.error_code != Errors.NONE.code:
            failures.append(f"broker {broker_id}: {Errors.for_code(response.error_code).name}")
            continue
        for g in response.groups:
            groups[g.group_id] = g
    if failures and not groups and len(failures) == len(cluster.brokers):
        raise CliError("no broker listed its groups: " + "; ".join(failures))
    for failure in failures:
        print(f"minikafka: warning: some groups may be missing: {failure}", file=sys.stderr)
    if output == "json":
        print(json.dumps([{"group": g.group_id, "state": g.group_state, "protocol_type": g.protocol_type}
                          for _, g in sorted(groups.items())], indent=2))
    else:
        for group_id in sorted(groups):
            print(group_id)
    return 0


def _group_notes(group_id: str, group: kafka_pb2.DescribedGroup) -> None:
    """Kafka's remarks before a description (to stderr here, so stdout stays the table)."""
    if group.group_state == "Empty":
        print(f"Consumer group '{group_id}' has no active members.", file=sys.stderr)
    elif group.group_state in ("PreparingRebalance", "CompletingRebalance"):
        print(f"Warning: Consumer group '{group_id}' is rebalancing.", file=sys.stderr)


def _print_group_state(group_id: str, coordinator: Coordinator, group: kafka_pb2.DescribedGroup,
                       members: list[DescribedMember], output: str) -> int:
    if output == "json":
        print(json.dumps({
            "group": group_id,
            "coordinator": {"id": coordinator.node_id, "host": coordinator.host, "port": coordinator.port},
            "assignment_strategy": group.protocol_data or None, "state": group.group_state,
            "members": len(members), "generation": group.generation_id, "leader": group.leader or None,
        }, indent=2))
        return 0
    _print_table(
        ["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS", "GENERATION", "LEADER"],
        [[group_id, f"{coordinator.address} ({coordinator.node_id})", _dash(group.protocol_data), group.group_state,
          str(len(members)), str(group.generation_id), _dash(group.leader)]],
    )
    return 0


def _print_group_members(group_id: str, group: kafka_pb2.DescribedGroup, members: list[DescribedMember],
                         output: str) -> int:
    if output == "json":
        print(json.dumps({
            "group": group_id, "state": group.group_state, "generation": group.generation_id,
            "leader": group.leader or None,
            "members": [{"consumer_id": m.member_id, "group_instance_id": m.group_instance_id, "host": m.host,
                         "client_id": m.client_id, "partitions": [[tp.topic, tp.partition] for tp in m.assignment],
                         "leader": m.member_id == group.leader} for m in members],
        }, indent=2))
        return 0
    _group_notes(group_id, group)
    _print_table(
        ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "GENERATION", "LEADER"],
        [[group_id, m.member_id, _dash(m.host), _dash(m.client_id), str(len(m.assignment)),
          str(group.generation_id), "*" if m.member_id == group.leader else ""] for m in members],
    )
    return 0


def _print_group_offsets(bootstrap: str, group_id: str, group: kafka_pb2.DescribedGroup,
                         members: list[DescribedMember], committed: dict[TopicPartition, int], output: str,
                         timeout_s: float) -> int:
    owner = {tp: m for m in members for tp in m.assignment}
    partitions = sorted(set(owner) | set(committed))
    log_end = _log_end_offsets(bootstrap, partitions, timeout_s) if partitions else {}
    rows = []
    for tp in partitions:
        member = owner.get(tp)
        current, end = committed.get(tp), log_end.get(tp)
        rows.append({
            "group": group_id, "topic": tp.topic, "partition": tp.partition, "current_offset": current,
            "log_end_offset": end, "lag": end - current if end is not None and current is not None else None,
            "consumer_id": member.member_id if member else None, "host": member.host if member else None,
            "client_id": member.client_id if member else None,
            "leader": member is not None and member.member_id == group.leader,
        })
    if output == "json":
        print(json.dumps({"group": group_id, "state": group.group_state, "generation": group.generation_id,
                          "leader": group.leader or None, "partitions": rows}, indent=2))
        return 0
    _group_notes(group_id, group)
    _print_table(
        ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID",
         "GENERATION", "LEADER"],
        [[group_id, r["topic"], str(r["partition"]), _dash(r["current_offset"]), _dash(r["log_end_offset"]),
          _dash(r["lag"]), _dash(r["consumer_id"]), _dash(r["host"]), _dash(r["client_id"]),
          str(group.generation_id), "*" if r["leader"] else ""] for r in rows],
    )
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    if args.interval <= 0 or args.timeout <= 0:
        raise UsageError("--interval and --timeout must be positive")
    bootstrap = _bootstrap(args.bootstrap_server)
    try:
        zookeeper = watch_collector.parse_zookeeper_connect(args.zookeeper) if args.zookeeper is not None else []
    except ValueError as e:
        raise UsageError(str(e)) from None
    # A cluster out of reach is the one-line error every command gives; once it answered, the view
    # shows whatever it can.
    AdminClient(bootstrap, timeout_s=args.timeout).metadata()
    # One refresh's calls all go at once: each may take up to the interval (longer with --once).
    timeout_s = min(args.timeout, 5.0) if args.once else min(max(args.interval, 0.5), 3.0)
    collector = watch_collector.SnapshotCollector(bootstrap, zookeeper, timeout_s=timeout_s)
    try:
        if args.once:
            watch_render.print_snapshot(collector.collect(), args.output, args.internal, _console())
        else:
            watch_render.run(collector, args.interval, args.output, args.internal, _console())
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader went away (| head): nothing left to print to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        collector.close()
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minikafka", description="Run and inspect a minikafka cluster.")
    commands = parser.add_subparsers(dest="command", required=True)

    cluster = commands.add_parser("cluster", help="the cluster as a whole")
    cluster_commands = cluster.add_subparsers(dest="action", required=True)
    describe = cluster_commands.add_parser("describe", help="cluster id, controller and live brokers")
    describe.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
    describe.add_argument("--output", choices=("text", "json"), default="text")
    describe.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    describe.set_defaults(func=cmd_cluster_describe)

    topics = commands.add_parser("topics", help="create, delete and describe topics (as kafka-topics)")
    topics.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
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
    election.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
    election.add_argument("--election-type", default="preferred", help="preferred (the only type)")
    election.add_argument("--preferred", action="store_const", dest="election_type", const="preferred")
    election.add_argument("--topic")
    election.add_argument("--partition", type=int)
    election.add_argument("--all-topic-partitions", action="store_true")
    election.add_argument("--timeout", type=float, default=30.0)
    election.set_defaults(func=cmd_leader_election)

    produce = commands.add_parser(
        "produce", help="send lines of stdin, or generated records, to a topic (as kafka-console-producer)",
        description="Send each line of stdin as a record (or --generate N records), wait for every "
                    "acknowledgement and print a summary to stderr. Exit status 1 if any record failed.",
    )
    produce.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
    produce.add_argument("--topic", required=True)
    produce.add_argument("--acks", choices=("all", "-1", "1", "0"), default="all",
                         help="all (default; idempotent), 1 (the leader only) or 0 (no answer awaited)")
    produce.add_argument("--key-separator", metavar="SEP", help="lines are KEY<SEP>VALUE (default: no key)")
    produce.add_argument("--generate", type=int, metavar="N", help="send N generated records instead of stdin")
    produce.add_argument("--record-size", type=int, metavar="BYTES",
                         help="bytes of each generated value: its sequence number, zero-padded (default 100)")
    produce.add_argument("--throughput", type=float, metavar="N",
                         help="send at most N records per second (a steady stream; default: as fast as possible)")
    produce.add_argument("--print-acknowledged", action="store_true",
                         help="print PARTITION<TAB>OFFSET<TAB>VALUE of each acknowledged record to stdout")
    produce.add_argument("--linger-ms", type=float, default=5, help="linger.ms (default 5)")
    produce.add_argument("--batch-size", type=int, default=16384, help="batch.size in bytes (default 16384)")
    produce.set_defaults(func=cmd_produce)

    consume = commands.add_parser(
        "consume", help="print a topic's records (no consumer group, or as a member of --group)",
        description="With no consumer group (the default), print the records of a topic, one per line: "
                    "read every partition (or --partition), commit nothing, and start at the end of each "
                    "partition (at the beginning with --from-beginning). With --group it "
                    "joins that consumer group, reads the partitions the group assigns it, logs its role and "
                    "every rebalance to stderr, and commits its position (automatically, and on exit) so that "
                    "a restarted consumer resumes after it; --from-beginning then applies only to partitions "
                    "without a committed offset.",
    )
    consume.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
    consume.add_argument("--topic", required=True)
    consume.add_argument("--partition", type=int, help="only this partition")
    consume.add_argument("--from-beginning", action="store_true", help="start at the log start, not the end")
    consume.add_argument("--max-messages", type=int, metavar="N", help="stop after N records")
    consume.add_argument("--timeout-ms", type=float, metavar="MS",
                         help="stop when nothing arrived for MS (default: run until Ctrl-C)")
    consume.add_argument("--print-offsets", action="store_true", help="print PARTITION<TAB>OFFSET<TAB> first")
    consume.add_argument("--print-keys", action="store_true", help="print KEY<TAB> before each value")
    consume.add_argument("--group", metavar="GROUP", help="consume as a member of this consumer group (group.id)")
    consume.add_argument("--group-instance-id", metavar="ID",
                         help="a static member's group.instance.id: no LeaveGroup on exit (KIP-345)")
    consume.add_argument("--consumer-property", action="append", default=[], metavar="NAME=VALUE",
                         help=f"a consumer setting, by Kafka's name: {', '.join(sorted(CONSUMER_PROPERTIES))}")
    consume.set_defaults(func=cmd_consume)

    groups = commands.add_parser(
        "groups", help="list and describe consumer groups (as kafka-consumer-groups)",
        description="--list: every group. --describe --group G: the group's partitions with their committed "
                    "offset, log end offset, lag and owner (default, or --offsets); its members (--members); "
                    "or its coordinator, assignor, state and size (--state). Unlike Kafka's tool, each view "
                    "shows the generation and the group leader (LEADER: * marks the leader's rows; --state "
                    "names the leader's member id).",
    )
    groups.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
    groups.add_argument("--list", action="store_true")
    groups.add_argument("--describe", action="store_true")
    groups.add_argument("--group", metavar="GROUP")
    groups.add_argument("--members", action="store_true", help="with --describe: the members")
    groups.add_argument("--state", action="store_true", help="with --describe: coordinator, assignor, state")
    groups.add_argument("--offsets", action="store_true", help="with --describe: the partitions (the default)")
    groups.add_argument("--output", choices=("text", "json"), default="text")
    groups.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for answers")
    groups.set_defaults(func=cmd_groups)

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
    watcher.add_argument("--bootstrap-server", required=True, metavar="HOST:PORT[,HOST:PORT]")
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

    local = commands.add_parser("local-cluster", help="ZooKeeper and N brokers on 127.0.0.1, no Docker")
    local.add_argument("--brokers", type=int, default=3)
    local.add_argument("--zookeeper-port", type=int, default=2181)
    local.add_argument("--base-port", type=int, default=9092, help="broker N listens on base-port + N - 1")
    local.add_argument("--dir", help="where data and logs go (default: a new temporary directory)")
    local.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                       help="a broker property for every broker")
    local.set_defaults(func=cmd_local_cluster)

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


if __name__ == "__main__":
    sys.exit(main())
