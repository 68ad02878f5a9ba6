"""`minikafka produce` and `minikafka consume`: argument errors, and runs against the fake cluster."""

from __future__ import annotations

import io
import sys

import pytest
from fake_cluster import FakeCluster

from client import cli
from minikafka_protocol.errors import Errors


@pytest.fixture
def broker_ids() -> tuple[int, ...]:
    return (1, 2)


@pytest.fixture
def topics() -> dict[str, list[int]]:
    return {"t": [1, 2], "one": [2]}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def with_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


@pytest.mark.parametrize("argv, message", [
    (["produce", "--bootstrap-server", "h:1", "--topic", "t", "--generate", "0"], "--generate must be at least 1"),
    (["produce", "--bootstrap-server", "h:1", "--topic", "t", "--record-size", "10"], "--record-size needs --generate"),
    (["produce", "--bootstrap-server", "h:1", "--topic", "t", "--generate", "5", "--record-size", "0"],
     "--record-size must be at least 1"),
    (["produce", "--bootstrap-server", "h:1", "--topic", "t", "--batch-size", "0"], "--batch-size"),
    (["produce", "--bootstrap-server", "h:1", "--topic", "t", "--key-separator", ""], "--key-separator"),
    (["produce", "--bootstrap-server", "nonsense", "--topic", "t"], "is not HOST:PORT"),
    (["consume", "--bootstrap-server", "h:1", "--topic", "t", "--max-messages", "0"], "--max-messages"),
    (["consume", "--bootstrap-server", "h:1", "--topic", "t", "--timeout-ms", "-1"], "--timeout-ms"),
    (["consume", "--bootstrap-server", "h:1", "--topic", "t", "--partition", "-1"], "--partition"),
    (["consume", "--bootstrap-server", "h:", "--topic", "t"], "is not HOST:PORT"),
])
def test_bad_arguments_are_one_line_errors_with_exit_status_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("minikafka: error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["produce", "--topic", "t"],
    ["produce", "--bootstrap-server", "h:1", "--topic", "t", "--acks", "2"],
    ["produce", "--bootstrap-server", "h:1", "--topic", "t", "--generate", "many"],
    ["consume", "--bootstrap-server", "h:1"],
    ["consume", "--bootstrap-server", "h:1", "--topic", "t", "--max-messages", "x"],
])
def test_arguments_argparse_refuses_exit_with_status_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "usage: minikafka" in capsys.readouterr().err


def test_consume_help_says_it_reads_without_a_consumer_group(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["consume", "--help"])
    assert "no consumer group" in capsys.readouterr().out


def test_unknown_topic_is_a_one_line_error_with_exit_status_1(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("produce", "consume"):
        code, _, err = run(capsys, command, "--bootstrap-server", cluster.bootstrap, "--topic", "missing")
        assert (code, err) == (1, "minikafka: error: Topic 'missing' does not exist\n")
    code, _, err = run(capsys, "consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t", "--partition", "5")
    assert code == 1 and "has no partition 5" in err


def test_produce_generate_sends_numbered_records_of_the_asked_size(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "produce", "--bootstrap-server", cluster.bootstrap, "--topic", "one",
                       "--generate", "30", "--record-size", "20", "--linger-ms", "1")
    assert code == 0, err
    assert err.startswith("30 records acknowledged, 0 failed in ") and "records/s" in err
    assert [r.value for r in cluster.log_records(("one", 0))] == [b"%020d" % i for i in range(30)]
    assert {s.acks for s in cluster.produce_seen} == {-1}


def test_produce_reads_keys_and_values_from_stdin(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_stdin(monkeypatch, b"k1:v1\nk2:v:2\n\n")
    code, _, err = run(capsys, "produce", "--bootstrap-server", cluster.bootstrap, "--topic", "one",
                       "--key-separator", ":", "--acks", "1")
    assert code == 1 and "minikafka: error: 1 records failed: line 3 has no key separator" in err
    assert [(r.key, r.value) for r in cluster.log_records(("one", 0))] == [(b"k1", b"v1"), (b"k2", b"v:2")]
    with_stdin(monkeypatch, b"plain\r\nlines\n")
    assert run(capsys, "produce", "--bootstrap-server", cluster.bootstrap, "--topic", "one")[0] == 0
    assert [(r.key, r.value) for r in cluster.log_records(("one", 0))][2:] == [(None, b"plain"), (None, b"lines")]


def test_produce_exits_1_naming_the_error_when_records_fail(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.fail_every_produce = Errors.CORRUPT_MESSAGE
    code, _, err = run(capsys, "produce", "--bootstrap-server", cluster.bootstrap, "--topic", "t", "--generate", "5")
    assert code == 1
    summary, error = err.splitlines()
    assert summary.startswith("0 records acknowledged, 5 failed")
    assert error.startswith("minikafka: error: 5 records failed: CORRUPT_MESSAGE: ")


def test_consume_prints_offsets_keys_and_values_and_stops_after_max_messages(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.append(("t", 1), [b"a", b"b", b"c", b"d"], keys=[b"k", None, b"k", b"k"])
    code, out, err = run(capsys, "consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t",
                         "--from-beginning", "--max-messages", "3", "--print-offsets", "--print-keys")
    assert code == 0
    assert out == "1\t0\tk\ta\n1\t1\tnull\tb\n1\t2\tk\tc\n"
    assert err == "Processed a total of 3 messages\n"


def test_consume_stops_when_nothing_arrives_for_timeout_ms(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.append(("t", 0), [b"before"])
    code, out, err = run(capsys, "consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t",
                         "--partition", "0", "--timeout-ms", "200")
    assert (code, out, err) == (0, "", "Processed a total of 0 messages\n")
    code, out, _ = run(capsys, "consume", "--bootstrap-server", cluster.bootstrap, "--topic", "t",
                       "--from-beginning", "--timeout-ms", "200")
    assert (code, out) == (0, "before\n")
