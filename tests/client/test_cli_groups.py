"""`minikafka consume --group` and `minikafka groups`: argument errors, output formats and the group
log, against the fake cluster."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator

import pytest
from fake_cluster import FakeCluster, wait_for

from client import cli
from client.cli import produce_consume
from client.consumer import KafkaConsumer
from client.group.member import MemberState


@pytest.fixture
def broker_ids() -> tuple[int, ...]:
    return (1, 2)


@pytest.fixture
def topics() -> dict[str, list[int]]:
    return {"t": [1, 2]}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def members(cluster: FakeCluster) -> Iterator[list[KafkaConsumer]]:
    """Two members of group G, stable in generation 2: the first leads with t-0, the second has t-1."""
    consumers = [KafkaConsumer(cluster.bootstrap, group_id="G", client_id=f"client-{i}", heartbeat_interval_ms=20,
                               session_timeout_ms=3000, fetch_max_wait_ms=50, retry_backoff_ms=10,
                               enable_auto_commit=False, auto_offset_reset="earliest") for i in (1, 2)]

    def stable(joined: list[KafkaConsumer], generation: int) -> bool:
        for consumer in joined:
            consumer.poll(20)
        states = [c.group_state() for c in joined]
        return all(s.state is MemberState.STABLE and s.generation_id == generation and s.rejoin_reason is None
                   for s in states)

    consumers[0].subscribe(["t"])  # alone first, so that it leads
    wait_for(lambda: stable(consumers[:1], 1), 5, "the first member in generation 1")
    consumers[1].subscribe(["t"])
    wait_for(lambda: stable(consumers, 2), 5, "two members in generation 2")
    yield consumers
    for consumer in consumers:
        consumer.close(timeout_ms=1000)


@pytest.mark.parametrize("argv, message", [
    (["groups", "--bootstrap-server", "h:1"], "exactly one of --list, --describe"),
    (["groups", "--bootstrap-server", "h:1", "--list", "--describe", "--group", "G"], "exactly one of"),
    (["groups", "--bootstrap-server", "h:1", "--describe"], "--describe needs --group"),
    (["groups", "--bootstrap-server", "h:1", "--list", "--members"], "--members needs --describe"),
    (["groups", "--bootstrap-server", "h:1", "--describe", "--group", "G", "--members", "--state"], "at most one"),
    (["groups", "--bootstrap-server", "h:1", "--list", "--group", "G"], "--group is for --describe"),
    (["groups", "--bootstrap-server", "h:1", "--list", "--timeout", "0"], "--timeout must be positive"),
    (["groups", "--bootstrap-server", "nonsense", "--list"], "is not HOST:PORT"),
    (["consume", "--bootstrap-server", "h:1", "--topic", "t", "--group", "G", "--partition", "0"],
     "--partition and --group"),
    (["consume", "--bootstrap-server", "h:1", "--topic", "t", "--group-instance-id", "i"], "needs --group"),
    (["consume", "--bootstrap-server", "h:1", "--topic", "t", "--group", ""], "must not be empty"),
])
def test_bad_arguments_are_one_line_errors_with_exit_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("minikafka: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["groups", "--list"],
    ["groups", "--bootstrap-server", "h:1", "--list", "--output", "xml"],
    ["groups", "--bootstrap-server", "h:1", "--list", "--timeout", "soon"],
])
def test_arguments_argparse_refuses_exit_with_status_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "usage: minikafka" in capsys.readouterr().err


def test_a_group_consumer_logs_its_role_and_commits_so_a_restart_resumes(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.append(("t", 0), [b"a", b"b", b"c"])
    cluster.append(("t", 1), [b"d"])
    code, out, err = run(capsys, "consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t", "--group", "G",
                         "--from-beginning", "--max-messages", "2", "--print-offsets")
    first = out.splitlines()
    assert code == 0 and len(first) == 2
    lines = err.splitlines()
    assert any(line.startswith("minikafka: Discovered group coordinator broker 1 (127.0.0.1:") for line in lines)
    joined = [line for line in lines if line.startswith("minikafka: joined group G generation 1 as leader")]
    assert len(joined) == 1 and joined[0].endswith("), assignment: t-0,t-1") and "(member id consumer-G-" in joined[0]
    assert lines[-1] == "Processed a total of 2 messages"
    # Exactly what was printed is committed, though more may have been fetched.
    printed = [tuple(int(x) for x in line.split("\t")[:2]) for line in first]
    assert cluster.committed("G") == {("t", p): 1 + max([o for q, o in printed if q == p], default=-1) for p in (0, 1)}
    code, out, err = run(capsys, "consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t", "--group", "G",
                         "--timeout-ms", "300", "--print-offsets")
    assert code == 0 and "generation 3 as leader" in err  # the first one left generation 2 empty
    assert sorted(first + out.splitlines()) == ["0\t0\ta", "0\t1\tb", "0\t2\tc", "1\t0\td"]  # each once


def test_a_group_consumer_logs_its_coordinator_and_every_rebalance(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quick heartbeats, so that the command hears of the rebalance at once.
    monkeypatch.setattr(produce_consume, "KafkaConsumer", functools.partial(KafkaConsumer, heartbeat_interval_ms=20))
    cluster.move_coordinator("G", 2)
    result: list[int] = []
    command = threading.Thread(target=lambda: result.append(cli.main([
        "consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t", "--group", "G", "--max-messages", "1",
        "--timeout-ms", "4000"])))  # ends by itself even if the test fails
    command.start()
    second = KafkaConsumer(cluster.bootstrap, group_id="G", heartbeat_interval_ms=20, fetch_max_wait_ms=50)
    try:
        wait_for(lambda: cluster.group_state("G") == "Stable", 5, "the command's join")
        second.subscribe(["t"])
        wait_for(lambda: second.poll(20) == [] and second.group_state().generation_id == 2
                 and second.group_state().state is MemberState.STABLE and cluster.group_state("G") == "Stable",
                 5, "the second member's join")
        (kept,) = {("t", 0), ("t", 1)} - second.assignment()  # range orders members by member id
        cluster.append(kept, [b"after the rebalance"])
        command.join(5)
    finally:
        second.close()
    out, err = capsys.readouterr()
    assert (result, out) == ([0], "after the rebalance\n")
    lines = err.splitlines()
    assert any(line.startswith("minikafka: Discovered group coordinator broker 2 (127.0.0.1:") for line in lines)
    assert any(line.startswith("minikafka: joined group G generation 1 as leader") for line in lines)
    assert "minikafka: Request joining group G due to: Heartbeat answered REBALANCE_IN_PROGRESS" in lines
    assert "minikafka: Revoking previously assigned partitions t-0,t-1 of group G" in lines
    assert any(line.startswith("minikafka: joined group G generation 2 as leader")
               and line.endswith(f"assignment: t-{kept[1]}") for line in lines)


def test_describe_shows_each_partition_with_offsets_lag_owner_generation_and_leader(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], members: list[KafkaConsumer]
) -> None:
    cluster.append(("t", 0), [b"a", b"b", b"c"])
    cluster.append(("t", 1), [b"d", b"e"])
    leader, follower = members
    leader.commit({("t", 0): 1})
    leader_id, follower_id = leader.group_state().member_id, follower.group_state().member_id
    code, out, err = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "G")
    assert code == 0 and err == ""
    header, *rows = out.splitlines()
    assert header.split() == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                              "CONSUMER-ID", "HOST", "CLIENT-ID", "GENERATION", "LEADER"]
    assert [row.split() for row in rows] == [
        ["G", "t", "0", "1", "3", "2", leader_id, "/127.0.0.1", "client-1", "2", "*"],
        ["G", "t", "1", "-", "2", "-", follower_id, "/127.0.0.1", "client-2", "2"],
    ]
    code, out, _ = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "G",
                       "--offsets", "--output", "json")
    described = json.loads(out)
    assert (described["group"], described["state"], described["generation"], described["leader"]) == (
        "G", "Stable", 2, leader_id)
    assert described["partitions"][0] == {
        "group": "G", "topic": "t", "partition": 0, "current_offset": 1, "log_end_offset": 3, "lag": 2,
        "consumer_id": leader_id, "host": "/127.0.0.1", "client_id": "client-1", "leader": True}
    assert (described["partitions"][1]["current_offset"], described["partitions"][1]["lag"]) == (None, None)


def test_describe_members_marks_the_leader(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], members: list[KafkaConsumer]
) -> None:
    leader_id, follower_id = (m.group_state().member_id for m in members)
    code, out, _ = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "G",
                       "--members")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "GENERATION", "LEADER"]
    assert sorted(row.split() for row in rows) == sorted([
        ["G", leader_id, "/127.0.0.1", "client-1", "1", "2", "*"],
        ["G", follower_id, "/127.0.0.1", "client-2", "1", "2"],
    ])
    code, out, _ = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "G",
                       "--members", "--output", "json")
    assert code == 0
    by_id = {m["consumer_id"]: m for m in json.loads(out)["members"]}
    assert by_id[leader_id]["leader"] is True and by_id[follower_id]["leader"] is False
    assert by_id[follower_id]["partitions"] == [["t", 1]]


def test_describe_state_names_coordinator_assignor_generation_and_leader(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], members: list[KafkaConsumer]
) -> None:
    leader_id = members[0].group_state().member_id
    code, out, _ = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "G",
                       "--state")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS",
                              "GENERATION", "LEADER"]
    assert row.split() == ["G", f"{cluster.address(1)}", "(1)", "range", "Stable", "2", "2", leader_id]
    code, out, _ = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "G",
                       "--state", "--output", "json")
    assert code == 0
    assert json.loads(out) == {
        "group": "G", "coordinator": {"id": 1, "host": "127.0.0.1", "port": int(cluster.address(1).split(":")[1])},
        "assignment_strategy": "range", "state": "Stable", "members": 2, "generation": 2, "leader": leader_id}


def test_an_empty_group_is_said_so_and_a_missing_one_is_an_error(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.set_committed("E", {("t", 1): 0})
    code, out, err = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "E")
    assert code == 0 and err == "Consumer group 'E' has no active members.\n"
    assert out.splitlines()[1].split() == ["E", "t", "1", "0", "0", "0", "-", "-", "-", "0"]
    code, out, err = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--describe", "--group", "nope")
    assert (code, out, err) == (1, "", "minikafka: error: Consumer group 'nope' does not exist.\n")


def test_list_asks_every_broker(cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.set_committed("b-group", {("t", 0): 0})
    cluster.set_committed("a-group", {("t", 0): 0})
    cluster.move_coordinator("b-group", 2)
    code, out, _ = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--list")
    assert (code, out) == (0, "a-group\nb-group\n")
    assert {r.broker_id for r in cluster.group_seen if r.api == "ListGroups"} == {1, 2}
    code, out, _ = run(capsys, "groups", "--bootstrap-server", cluster.bootstrap, "--list", "--output", "json")
    # Groups that only ever had offsets committed from outside have no protocol type (Kafka's "").
    assert json.loads(out) == [{"group": "a-group", "state": "Empty", "protocol_type": ""},
                               {"group": "b-group", "state": "Empty", "protocol_type": ""}]


def test_an_unreachable_cluster_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "groups", "--bootstrap-server", "127.0.0.1:1", "--describe", "--group", "G",
                         "--timeout", "0.5")
    assert code == 1 and out == ""
    assert err.startswith("minikafka: error: ") and err.count("\n") == 1
