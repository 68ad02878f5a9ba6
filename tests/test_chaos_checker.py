"""The chaos checker over planted histories: a clean one holds, and each kind of violation is
caught with its evidence."""

from __future__ import annotations

import json
from pathlib import Path

from client.chaos import history as h
from client.chaos.checker import ControllerElection, FinalState, LogRecord, Verdict, check
from client.chaos.history import Event, HistoryWriter, read_history

PARTITIONS = 2


def ev(t: float, kind: str, source: str = "runner", **fields: object) -> Event:
    return {"t": t, "type": kind, "source": source, **fields}


def clean_history() -> list[Event]:
    """Four records, two per partition, acknowledged and read by one member and the reader."""
    events = [
        ev(0.0, h.ASSIGNED, "member-1", consumer="member-1", member_id="m1", generation=1, leader=True,
           partitions=[0, 1]),
        ev(0.1, h.OBSERVED, controller=1, epoch=1, group_state="Stable", generation=1,
           assignment={"member-1": [0, 1]}),
    ]
    for n in range(4):
        partition, offset = n % 2, n // 2
        events += [ev(1 + n, h.SEND, n=n), ev(1.5 + n, h.ACK, n=n, partition=partition, offset=offset)]
    events += [
        ev(6.0, h.POLL, "member-1", consumer="member-1", records=[[0, 0, 0], [0, 1, 2], [1, 0, 1], [1, 1, 3]]),
        ev(6.1, h.POLL, "reader", records=[[0, 0, 0], [0, 1, 2], [1, 0, 1], [1, 1, 3]]),
        ev(6.2, h.OBSERVED, controller=1, epoch=1),
    ]
    return events


def clean_log(partition: int) -> list[LogRecord]:
    return [LogRecord(0, 0, partition), LogRecord(1, 0, partition + 2)]


def clean_state() -> FinalState:
    return FinalState(
        partitions=PARTITIONS,
        logs={p: {b: clean_log(p) for b in (1, 2, 3)} for p in range(PARTITIONS)},
        high_watermarks={0: 2, 1: 2}, leaders={0: 1, 1: 2}, isr={0: (1, 2, 3), 1: (2, 3, 1)},
        controller_elections=[ControllerElection("2026-12-07 10:00:00,000", 1, 1)],
        converged_s=1.5, bound_s=40,
    )


def verdicts(events: list[Event], state: FinalState) -> dict[str, Verdict]:
    return {v.invariant: v for v in check(events, state)}


def violated(events: list[Event], state: FinalState) -> dict[str, Verdict]:
    return {name: v for name, v in verdicts(events, state).items() if not v.held}


def test_a_clean_history_holds_every_invariant() -> None:
    found = verdicts(clean_history(), clean_state())
    assert len(found) == 9
    assert all(v.held for v in found.values()), [v for v in found.values() if not v.held]


def test_a_lost_acknowledged_record_is_caught_with_where_it_should_be() -> None:
    state = clean_state()
    for b in (1, 2, 3):
        state.logs[1][b] = state.logs[1][b][:1]  # record 3 at 1@1 truncated away
    state.high_watermarks[1] = 1
    bad = violated(clean_history(), state)
    assert set(bad) == {"acked-not-lost"}
    assert bad["acked-not-lost"].evidence == ("record 3 acknowledged at 1@1, the final log holds nothing there",)


def test_another_record_at_an_acknowledged_offset_is_a_loss() -> None:
    state = clean_state()
    for b in (1, 2, 3):
        state.logs[0][b] = [LogRecord(0, 0, 0), LogRecord(1, 1, 99)]
    bad = violated(clean_history(), state)
    assert "record 2 acknowledged at 0@1, the final log holds record 99 there" in bad["acked-not-lost"].evidence


def test_a_record_the_group_never_read_is_caught() -> None:
    events = [e for e in clean_history() if e["source"] != "member-1" or e["type"] != h.POLL]
    events.append(ev(6.0, h.POLL, "member-1", consumer="member-1", records=[[0, 0, 0], [1, 0, 1], [1, 1, 3]]))
    bad = violated(events, clean_state())
    assert set(bad) == {"acked-consumed"}
    assert bad["acked-consumed"].evidence == ("the group never read 1 acknowledged record(s): 2",)


def test_a_duplicate_in_the_log_is_caught() -> None:
    state = clean_state()
    for b in (1, 2, 3):
        state.logs[1][b] = [*clean_log(1), LogRecord(2, 0, 3)]
    state.high_watermarks[1] = 3
    bad = violated(clean_history(), state)
    assert set(bad) == {"no-duplicates"}
    assert bad["no-duplicates"].evidence == ("record 3 is in the log 2 times: 1@1, 1@2",)


def test_a_diverging_replica_below_the_high_watermark_is_caught() -> None:
    state = clean_state()
    state.logs[0][3] = [LogRecord(0, 0, 0), LogRecord(1, 0, 7)]
    bad = violated(clean_history(), state)
    assert set(bad) == {"replicas-identical"}
    assert bad["replicas-identical"].evidence[0].startswith("partition 0: replica 3 diverges at offset 1")


def test_a_replica_past_the_high_watermark_or_out_of_sync_may_differ_but_an_in_sync_one_may_not_lag() -> None:
    state = clean_state()
    state.logs[0][2] = [*clean_log(0), LogRecord(2, 0, 50)]  # above the high watermark: not compared
    assert "replicas-identical" not in violated(clean_history(), state)
    state.isr[1] = (2, 3)
    state.logs[1][1] = [LogRecord(0, 0, 1), LogRecord(1, 1, 3)]  # out of the ISR: truncates when it fetches
    assert "replicas-identical" not in violated(clean_history(), state)
    state.isr[1] = (2, 3, 1)
    state.logs[0][3] = clean_log(0)[:1]
    bad = violated(clean_history(), state)
    assert "in-sync replica 3 holds 1 records below the high watermark 2" in bad["replicas-identical"].evidence[0]


def test_two_controllers_in_one_epoch_and_an_epoch_going_back_are_caught() -> None:
    state = clean_state()
    state.controller_elections = [
        ControllerElection("2026-12-07 10:00:00,000", 1, 1),
        ControllerElection("2026-12-07 10:00:05,000", 2, 2),
        ControllerElection("2026-12-07 10:00:06,000", 3, 2),
        ControllerElection("2026-12-07 10:00:07,000", 1, 1),
    ]
    bad = violated(clean_history(), state)
    assert set(bad) == {"one-controller-per-epoch"}
    evidence = bad["one-controller-per-epoch"].evidence
    assert "epoch 1 was won by brokers 1" not in evidence
    assert "epoch 2 was won by brokers 2, 3" in evidence
    assert any("elected with epoch 1 at 2026-12-07 10:00:07,000, after broker 3 with epoch 2" in e for e in evidence)


def test_zookeeper_naming_two_controllers_in_one_epoch_is_caught() -> None:
    events = [*clean_history(), ev(7.0, h.OBSERVED, controller=2, epoch=1)]
    bad = violated(events, clean_state())
    assert bad["one-controller-per-epoch"].evidence == ("ZooKeeper named controllers 1 and 2 in epoch 1",)


def test_a_decreasing_leader_epoch_along_a_log_is_caught() -> None:
    state = clean_state()
    for b in (1, 2, 3):
        state.logs[1][b] = [LogRecord(0, 2, 1), LogRecord(1, 1, 3)]  # a fenced leader's write after its successor's
    bad = violated(clean_history(), state)
    assert set(bad) == {"leader-epochs-grow"}
    assert bad["leader-epochs-grow"].count == 3
    assert bad["leader-epochs-grow"].evidence[0] == \
        "partition 1 on broker 1: leader epoch 1 at offset 1 after 2 at offset 0"


def test_two_owners_of_a_partition_in_one_generation_are_caught() -> None:
    events = clean_history()
    events.insert(1, ev(0.05, h.ASSIGNED, "member-2", consumer="member-2", member_id="m2", generation=1,
                        leader=False, partitions=[1]))
    bad = violated(events, clean_state())
    assert set(bad) == {"one-owner-per-generation"}
    assert bad["one-owner-per-generation"].evidence == (
        "partition 1 assigned to member-1 (m1) and member-2 (m2) in generation 1",)


def test_records_of_a_revoked_partition_returned_are_caught() -> None:
    events = clean_history()
    events.insert(2, ev(0.5, h.REVOKED, "member-1", consumer="member-1", generation=1, partitions=[1]))
    bad = violated(events, clean_state())
    assert bad["one-owner-per-generation"].evidence == ("member-1 returned records of partition(s) [1] it did not own",)


def test_a_stable_generation_leaving_a_partition_unassigned_is_caught() -> None:
    events = [*clean_history(), ev(8.0, h.OBSERVED, controller=1, epoch=1, group_state="Stable", generation=2,
                                   assignment={"member-1": [0]})]
    bad = violated(events, clean_state())
    assert set(bad) == {"assignment-covers-partitions"}
    assert "generation 2 leaves partition(s) [1] unassigned" in bad["assignment-covers-partitions"].evidence[0]


def test_no_convergence_after_the_heal_is_caught_with_what_was_missing() -> None:
    state = clean_state()
    assert verdicts(clean_history(), state)["converged"].summary == "converged in 1.5 s (bound 40 s)"
    state.converged_s = None
    state.not_converged = ["partition 1: ISR [1] of replicas [1, 2, 3]", "the group is PreparingRebalance with 2 "
                           "member(s) in generation 4"]
    bad = violated(clean_history(), state)
    assert set(bad) == {"converged"}
    assert bad["converged"].evidence == (
        "partition 1: ISR [1] of replicas [1, 2, 3] 40 s after the heal",
        "the group is PreparingRebalance with 2 member(s) in generation 4 40 s after the heal",
    )


def test_history_files_merge_in_time_order_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    a, b = HistoryWriter(tmp_path / "a.jsonl", "a"), HistoryWriter(tmp_path / "b.jsonl", "b")
    a.record(h.SEND, n=0)
    b.record(h.POLL, records=[])
    a.record(h.ACK, n=0, partition=0, offset=0)
    a.close()
    b.close()
    with open(tmp_path / "b.jsonl", "a") as f:
        f.write('{"t": 1, "type": "po')  # a member killed mid-line
    events = read_history([tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "missing.jsonl"])
    assert [(e["source"], e["type"]) for e in events] == [("a", "send"), ("b", "poll"), ("a", "ack")]
    assert json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["n"] == 0
