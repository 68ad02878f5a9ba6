"""`minikafka produce` (as kafka-console-producer: lines of stdin or generated records, every
acknowledgement awaited) and `minikafka consume` (as kafka-console-consumer: without a group, or
as a member of one, its group log on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

from client.admin import AdminClient
from client.cli.common import (
    CliError,
    Commands,
    UsageError,
    add_connection_arguments,
    checked_bootstrap,
    client_security,
    client_warnings,
)
from client.consumer import ConsumerRecord, KafkaConsumer
from client.producer import FutureRecordMetadata, KafkaProducer
from client.security import ClientSecurity
from minikafka_protocol.errors import Errors


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


def _require_topic(bootstrap: str, security: ClientSecurity, topic: str) -> None:
    metadata = AdminClient(bootstrap, security=security).metadata([topic])
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
    bootstrap = checked_bootstrap(args.bootstrap_server)
    client_warnings()
    _require_topic(bootstrap, client_security(args), args.topic)
    producer = KafkaProducer(bootstrap, acks=args.acks, linger_ms=args.linger_ms, batch_size=args.batch_size,
                             security=client_security(args))
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
    bootstrap = checked_bootstrap(args.bootstrap_server)
    client_warnings()
    reset = "earliest" if args.from_beginning else "latest"
    security = client_security(args)
    with _GroupLog() if args.group is not None else contextlib.nullcontext():
        try:
            if args.group is None:
                consumer = KafkaConsumer(bootstrap, auto_offset_reset=reset, security=security,
                                         **settings)  # type: ignore[arg-type]
            else:
                # auto.offset.reset applies only where the group has committed nothing, as in Kafka.
                consumer = KafkaConsumer(bootstrap, auto_offset_reset=reset, group_id=args.group, security=security,
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


def add_commands(commands: Commands) -> None:
    """`minikafka produce` and `minikafka consume`."""
    produce = commands.add_parser(
        "produce", help="send lines of stdin, or generated records, to a topic (as kafka-console-producer)",
        description="Send each line of stdin as a record (or --generate N records), wait for every "
                    "acknowledgement and print a summary to stderr. Exit status 1 if any record failed.",
    )
    add_connection_arguments(produce)
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
    add_connection_arguments(consume)
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
