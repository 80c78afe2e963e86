"""The fault campaign's pure parts: the seeded schedule of faults, and the summary it reports."""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SERVICES = ("dataset-svc", "job-svc", "trainer-svc", "registry-svc", "deploy-svc")
TRAINER_WORKER, EDGE_AGENT, BROKER, POSTGRES = "trainer-worker", "edge-agent", "broker", "postgres"
KINDS = (*SERVICES, TRAINER_WORKER, EDGE_AGENT, BROKER, POSTGRES)


@dataclass(frozen=True)
class PlannedFault:
    """One fault: when (seconds after the workload started) and of which kind."""

    at_s: float
    kind: str


def plan_faults(
    seed: int, duration_s: float, gap_s: float, kinds: Sequence[str] = KINDS, warmup_s: float = 5.0
) -> list[PlannedFault]:
    """The faults of one run, a pure function of its arguments (so a seed repeats a run).

    Every kind comes at least once when the window has room for it; the rest are drawn at random.
    Faults are at least `gap_s` apart, so each one's recovery is measured on its own, and each
    moment is jittered within its slot, so a kill lands at a random point of the workload.
    """
    rng = random.Random(seed)
    slots = max(0, int((duration_s - warmup_s) // gap_s))
    chosen = list(kinds)[:slots]
    rng.shuffle(chosen)
    chosen += [rng.choice(list(kinds)) for _ in range(slots - len(chosen))]
    rng.shuffle(chosen)
    return [
        PlannedFault(round(warmup_s + index * gap_s + rng.uniform(0, gap_s / 2), 2), kind)
        for index, kind in enumerate(chosen)
    ]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(sorted(values), n=100, method="inclusive")[round(q * 100) - 1])


def recovery_rows(recoveries: Mapping[str, Sequence[float]]) -> list[dict[str, object]]:
    """One row per fault kind in KINDS order: how many were injected, recovery p50 and max in seconds."""
    return [
        {
            "kind": kind,
            "injected": len(recoveries.get(kind, ())),
            "recovery_p50_s": round(percentile(recoveries[kind], 0.5), 2) if recoveries.get(kind) else None,
            "recovery_max_s": round(max(recoveries[kind]), 2) if recoveries.get(kind) else None,
        }
        for kind in KINDS
    ]


def markdown(summary: Mapping[str, object], rows: Sequence[Mapping[str, object]]) -> str:
    """The campaign's tables: faults by kind with their recovery, then the commands' outcome."""

    def cell(value: object) -> str:
        return "—" if value is None else f"{value}"

    lines = [
        "| fault | injected | recovery p50 (s) | recovery max (s) |",
        "|---|---:|---:|---:|",
        *(
            f"| {r['kind']} | {r['injected']} | {cell(r['recovery_p50_s'])} | {cell(r['recovery_max_s'])} |"
            for r in rows
        ),
        "",
        "| commands acknowledged | lost | applied twice | read models differing | chains broken | stuck |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {summary['acknowledged']} | {summary['lost']} | {summary['applied_twice']} "
        f"| {summary['replay_differences']} | {summary['chains_broken']} | {summary['stuck']} |",
    ]
    return "\n".join(lines)
