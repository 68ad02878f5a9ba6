"""`minikafka chaos` on a real local cluster: a few short seeded runs, each of which must hold
every invariant. The seeds are ones that found bugs (see the README's chaos section):
- 3: a ZooKeeper leader killed: the controller reconnected on the same session and, its watches
  gone, never heard of new topics again;
- 67: two ZooKeeper servers killed at once (no quorum), then a leader cut off ZooKeeper while it
  wrote its ISR changes: the write sent again found its own first attempt applied, and the
  leader kept a stale zk version and an ISR of one (the same run also exercises the controller's
  multis failing on one moved partition, seed 101's bug);
- 103: the controller killed just before the heal: restarted before its old session expired, a
  broker stops at once (as Kafka's does) and must be started again.
The unit tests of the checker (test_chaos_checker.py) show it catches each kind of violation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.live

SEEDS = (3, 67, 103)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_seeded_chaos_run_holds_every_invariant(seed: int, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "client.cli", "chaos", "--runs", "1", "--seed", str(seed), "--duration", "12",
         "--output", "json", "--history", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert done.stdout, done.stderr[-3000:]
    report = json.loads(done.stdout)
    (run,) = report["runs"]
    violated = [v for v in run["invariants"] if not v["held"]]
    assert done.returncode == 0 and not violated and run["setup_error"] is None, json.dumps(
        {"violated": violated, "setup_error": run["setup_error"], "faults": run["faults"]}, indent=2)
    assert len(run["invariants"]) == 9
    assert run["acked"] > 0 and run["lost"] == 0 and run["duplicated"] == 0
    assert any("target" in f for f in run["faults"]), "no fault fired"
    # The run's history and the brokers' logs of its time stay for whoever reads the report.
    names = {p.name for p in (tmp_path / f"run-{seed}").iterdir()}
    assert {"runner.jsonl", "reader.jsonl", "member-1.jsonl", "report.json", "broker-1.log"} <= names


def test_bad_chaos_arguments_get_one_line_errors() -> None:
    for args, message in ((["--runs", "0"], "--runs must be at least 1"),
                          (["--faults", "kill,flood"], "--faults takes a comma-separated list"),
                          (["--duration", "-1"], "--duration must be positive")):
        done = subprocess.run([sys.executable, "-m", "client.cli", "chaos", *args], capture_output=True, text=True,
                              timeout=30)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, \
            done.stderr
