"""`minikafka chaos`: seeded runs one after another on one cluster, a line per run as it ends,
then the table (runs, faults by kind, records acknowledged, lost and duplicated, violations,
the slowest convergence) and, for every violated invariant, its evidence and the seed that
reproduces it."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from client.chaos.cluster import ChaosCluster
from client.chaos.runner import ChaosSuite, RunReport
from client.chaos.schedule import fault_combinations


def run_suite(runs: int, seed: int, duration_s: float, kinds: tuple[str, ...], history: Path | None,
              progress: Callable[[RunReport], None] = lambda _: None,
              cluster: ChaosCluster | None = None) -> list[RunReport]:
    """`runs` runs with seeds seed, seed + 1, ...; run i starts with the i-th (kind, role) in turn,
    so that a suite of at least that many runs covers every fault against every role. On
    `cluster`, or on a local cluster of its own."""
    combinations = fault_combinations(kinds)
    suite = ChaosSuite(kinds, duration_s, history, cluster)
    reports = []
    try:
        for i in range(runs):
            report = suite.run(seed + i, first=combinations[(seed + i) % len(combinations)])
            reports.append(report)
            progress(report)
    finally:
        suite.close()
    return reports


def summary(reports: list[RunReport]) -> dict[str, object]:
    fired: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    for r in reports:
        for f in r.faults:
            (skipped if "skipped" in f else fired)[str(f["kind"])] += 1
            if "skipped" not in f:
                roles[str(f["role"])] += 1
    held: Counter[str] = Counter()
    violated: Counter[str] = Counter()
    for r in reports:
        for v in r.verdicts:
            (held if v.held else violated)[v.invariant] += 1
    ownership = sum(v.count for r in reports for v in r.verdicts if v.invariant == "one-owner-per-generation")
    converged = [r.converged_s for r in reports if r.converged_s is not None]
    return {
        "runs": len(reports),
        "failed_runs": [r.seed for r in reports if not r.ok],
        "faults": dict(fired), "skipped_faults": dict(skipped), "roles": dict(roles),
        "sent": sum(r.sent for r in reports), "acked": sum(r.acked for r in reports),
        "lost": sum(r.lost for r in reports), "duplicated": sum(r.duplicated for r in reports),
        "ownership_violations": ownership,
        "violations": sum(r.violations for r in reports),
        "slowest_convergence_s": max(converged) if converged else None,
        "not_converged": sum(1 for r in reports if r.converged_s is None),
        "invariants": {name: {"held": held[name], "violated": violated[name]} for name in {*held, *violated}},
    }


def run_line(report: RunReport) -> str:
    faults = ", ".join(f"{f['kind']} {f['role']}" + (f" ({f['target']})" if "target" in f else " (skipped)")
                       for f in report.faults)
    took = "not converged" if report.converged_s is None else f"converged in {report.converged_s:.1f} s"
    verdict = "ok" if report.ok else "VIOLATED: " + ", ".join(
        [v.invariant for v in report.verdicts if not v.held] + ([report.setup_error] if report.setup_error else []))
    return (f"seed {report.seed}: {verdict}; {report.acked} acked of {report.sent} sent, {took}; faults: "
            f"{faults or 'none'}")


def print_report(reports: list[RunReport], output: str) -> None:
    totals = summary(reports)
    if output == "json":
        print(json.dumps({"summary": totals, "runs": [r.to_json() for r in reports]}, indent=2))
        return
    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("RUNS", "FAULTS", "ACKED", "LOST", "DUPLICATED", "OWNERSHIP VIOLATIONS", "VIOLATIONS",
                   "SLOWEST CONVERGENCE"):
        table.add_column(column)
    faults = totals["faults"]
    assert isinstance(faults, dict)
    slowest = totals["slowest_convergence_s"]
    table.add_row(
        str(totals["runs"]), ", ".join(f"{k} {v}" for k, v in sorted(faults.items())) or "none",
        str(totals["acked"]), str(totals["lost"]), str(totals["duplicated"]), str(totals["ownership_violations"]),
        str(totals["violations"]),
        "-" if slowest is None else f"{slowest:.1f} s" + (f" ({totals['not_converged']} not converged)"
                                                           if totals["not_converged"] else ""),
    )
    console.print(table)
    roles = totals["roles"]
    assert isinstance(roles, dict)
    console.print("Roles hit: " + ", ".join(f"{k} {v}" for k, v in sorted(roles.items())))
    invariants = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("INVARIANT", "HELD", "VIOLATED"):
        invariants.add_column(column)
    counts = totals["invariants"]
    assert isinstance(counts, dict)
    for name, c in sorted(counts.items()):
        invariants.add_row(name, str(c["held"]), str(c["violated"]))
    console.print(invariants)
    for r in reports:
        if r.ok:
            continue
        console.print(f"seed {r.seed} (history {r.history_dir}):")
        if r.setup_error:
            console.print(f"  the run did not complete: {r.setup_error}")
        for v in r.verdicts:
            if not v.held:
                console.print(f"  {v.invariant}: violated, {v.summary}")
                for line in v.evidence:
                    console.print(f"    {line}")
