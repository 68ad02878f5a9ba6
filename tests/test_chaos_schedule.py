"""The chaos fault schedule: drawn from the seed alone, within the duration, and covering every
kind against every role over a suite."""

from __future__ import annotations

import pytest

from client.chaos.schedule import (
    FAULT_KINDS,
    ROLES_BY_KIND,
    draw_schedule,
    fault_combinations,
    overlapping,
    validate_kinds,
)


def test_the_same_seed_draws_the_same_schedule_and_another_seed_another() -> None:
    assert draw_schedule(7, 30, FAULT_KINDS, 3) == draw_schedule(7, 30, FAULT_KINDS, 3)
    assert draw_schedule(7, 30, FAULT_KINDS, 3) != draw_schedule(8, 30, FAULT_KINDS, 3)


@pytest.mark.parametrize("seed", range(50))
def test_faults_start_within_the_duration_in_order_with_kinds_and_roles_that_fit(seed: int) -> None:
    schedule = draw_schedule(seed, 20, FAULT_KINDS, 3)
    assert schedule.faults
    starts = [f.at_s for f in schedule.faults]
    assert starts == sorted(starts) and starts[-1] < 20
    for fault in schedule.faults:
        assert fault.role in ROLES_BY_KIND[fault.kind]
        assert 0 <= fault.partition < 3 and fault.hold_s > 0
    first = schedule.faults[0]
    assert first.at_s <= schedule.reader_start_s <= first.at_s + first.hold_s + 3.0  # a reader during a failover


def test_only_the_kinds_asked_for_are_drawn() -> None:
    for seed in range(30):
        assert draw_schedule(seed, 30, ("pause", "zookeeper"), 3).kinds() <= {"pause", "zookeeper"}


def test_a_suite_names_each_kind_and_role_first_in_turn_and_some_faults_overlap() -> None:
    combinations = fault_combinations(FAULT_KINDS)
    assert len(combinations) == sum(len(r) for r in ROLES_BY_KIND.values())
    firsts = {(s.faults[0].kind, s.faults[0].role)
              for s in (draw_schedule(i, 20, FAULT_KINDS, 3, first=combinations[i % len(combinations)])
                        for i in range(len(combinations)))}
    assert firsts == set(combinations)
    assert sum(overlapping(draw_schedule(i, 20, FAULT_KINDS, 3).faults) for i in range(40)) > 0


def test_a_duration_shorter_than_the_first_start_still_has_one_fault() -> None:
    assert len(draw_schedule(3, 0.5, ("kill",), 3).faults) == 1


def test_unknown_fault_kinds_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="--faults takes a comma-separated list of kill, pause"):
        validate_kinds(("kill", "flood"))
    with pytest.raises(ValueError):
        validate_kinds(())
    assert validate_kinds(("kill", "kill", "pause")) == ("kill", "pause")
