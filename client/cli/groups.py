"""`minikafka groups` (as kafka-consumer-groups): list the groups, describe one's offsets, members
or state, with the generation and the group leader.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from rich.table import Table

from client.cli.common import (
    CliError,
    Commands,
    UsageError,
    add_connection_arguments,
    check,
    checked_bootstrap,
    client_security,
    client_warnings,
    rich_console,
)
from client.cluster import ClusterMetadata, KafkaError
from client.consumer import KafkaConsumer
from client.group.wire import Coordinator, DescribedMember, GroupClient, describe_members
from client.security import ClientSecurity
from minikafka_protocol.common import TopicPartition
from minikafka_protocol.errors import Errors
from minikafka_protocol.group import OFFSETS_TOPIC
from minikafka_rpc import kafka_pb2

T = TypeVar("T")


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
        check(response.error_code, "", f"cannot describe group '{group_id}'")
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
    check(response.error_code, "", f"cannot fetch the committed offsets of group '{group_id}'")
    return {TopicPartition(t.name, p.partition): p.committed_offset
            for t in response.topics for p in t.partitions if p.committed_offset >= 0}


def _log_end_offsets(bootstrap: str, security: ClientSecurity, partitions: list[TopicPartition], timeout_s: float
                     ) -> dict[TopicPartition, int | None]:
    """Each partition's log end offset as consumers see it (ListOffsets latest: the high
    watermark); None for a topic that is gone."""
    found: dict[TopicPartition, int | None] = dict.fromkeys(partitions)
    consumer = KafkaConsumer(bootstrap, request_timeout_ms=int(timeout_s * 1000),
                             default_api_timeout_ms=int(timeout_s * 1000), security=security)
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
    rich_console().print(table)


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
    bootstrap = checked_bootstrap(args.bootstrap_server)
    client_warnings()
    deadline = time.monotonic() + args.timeout
    cluster = ClusterMetadata(bootstrap, request_timeout_ms=int(args.timeout * 1000), security=client_security(args))
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
        return _print_group_offsets(bootstrap, cluster.security, args.group, group, members, committed, args.output,
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


def _print_group_offsets(bootstrap: str, security: ClientSecurity, group_id: str, group: kafka_pb2.DescribedGroup,
                         members: list[DescribedMember], committed: dict[TopicPartition, int], output: str,
                         timeout_s: float) -> int:
    owner = {tp: m for m in members for tp in m.assignment}
    partitions = sorted(set(owner) | set(committed))
    log_end = _log_end_offsets(bootstrap, security, partitions, timeout_s) if partitions else {}
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


def add_commands(commands: Commands) -> None:
    """`minikafka groups`."""
    groups = commands.add_parser(
        "groups", help="list and describe consumer groups (as kafka-consumer-groups)",
        description="--list: every group. --describe --group G: the group's partitions with their committed "
                    "offset, log end offset, lag and owner (default, or --offsets); its members (--members); "
                    "or its coordinator, assignor, state and size (--state). Unlike Kafka's tool, each view "
                    "shows the generation and the group leader (LEADER: * marks the leader's rows; --state "
                    "names the leader's member id).",
    )
    add_connection_arguments(groups)
    groups.add_argument("--list", action="store_true")
    groups.add_argument("--describe", action="store_true")
    groups.add_argument("--group", metavar="GROUP")
    groups.add_argument("--members", action="store_true", help="with --describe: the members")
    groups.add_argument("--state", action="store_true", help="with --describe: coordinator, assignor, state")
    groups.add_argument("--offsets", action="store_true", help="with --describe: the partitions (the default)")
    groups.add_argument("--output", choices=("text", "json"), default="text")
    groups.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for answers")
    groups.set_defaults(func=cmd_groups)
