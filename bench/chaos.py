"""A fault campaign (issue 16, item 4): faults of every kind while a workload runs, then the checks.

The embedded stack (PostgreSQL and Tansu of our own, so that they can be restarted), every service,
trainer workers and edge agents (`modelyard_devstack.platform`). While datasets are created, uploaded,
labeled, reviewed and published, one-epoch training jobs run, and each trained version is evaluated,
approved, released and rolled out to the edge agents (`chaos_workload`), a seeded schedule
(`chaos_plan`) SIGKILLs each service (its relay runs inside it), a trainer worker, an edge agent, the
broker (it comes back empty) and PostgreSQL (it comes back through crash recovery), one fault at a
time, each started again at once and timed until it answers again (`chaos_faults`). Then the system
gets time to finish what it was doing and `chaos_checks` asks: is every acknowledged command's event
in its service's log, did anything take effect twice (replay equals live), does every chain verify,
is any job or deployment stuck? Results: bench/results/chaos.{md,json}; exit 1 when anything was
lost, doubled, broken or stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench_host import machine
from chaos_checks import Findings, check, settle
from chaos_faults import Chaos, InjectedFault
from chaos_plan import KINDS, markdown, plan_faults, recovery_rows
from chaos_releases import Releases
from chaos_workload import MODULE, ORG, Ledger, Workload, digit_files

from modelyard_devstack.broker import EmbeddedBroker
from modelyard_devstack.platform import Platform, platform
from modelyard_devstack.postgres import EmbeddedPostgres
from modelyard_devstack.stack import Infra
from modelyard_trainer.datasets.digits import export_digits

FORK_SUPPORT = "GRPC_ENABLE_FORK_SUPPORT"
RESULTS = Path(__file__).resolve().parent / "results"
PLATFORM_ENV = {
    # The workload trains and releases more than a month of Enterprise allows; limits are not under test.
    "MODELYARD_PLAN_LIMITS": json.dumps(
        {"enterprise": {"training_jobs_per_month": 100_000, "active_models_per_module": None}}
    ),
    "MODELYARD_REGISTRY_GATES": json.dumps({MODULE: [{"metric": "f1", "min": 0.0}]}),
    "MODELYARD_MIN_SAMPLES_PER_CLASS": "1",
}


def arguments() -> argparse.Namespace:
    """The campaign's knobs; the defaults take 4–6 minutes on 2 cores."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=16, help="seeds the faults' schedule and victims")
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of workload under faults")
    parser.add_argument("--gap", type=float, default=14.0, help="seconds between two faults' slots")
    parser.add_argument("--settle", type=float, default=240.0, help="seconds allowed to finish afterwards")
    parser.add_argument("--trainers", type=int, default=1, help="trainer workers (one slot each)")
    parser.add_argument("--agents", type=int, default=2, help="edge agents")
    parser.add_argument("--lease-ttl", type=float, default=6.0, help="job-svc's trainer lease, seconds")
    parser.add_argument("--kinds", default=",".join(KINDS), help="fault kinds, comma-separated")
    parser.add_argument(
        "--logs", type=Path, default=Path(".modelyard/chaos-logs"), help="where logs are kept"
    )
    return parser.parse_args()


def repeat_command(args: argparse.Namespace) -> str:
    """The command line that runs this campaign again with the same schedule."""
    return (
        f'make chaos CHAOS_ARGS="--seed {args.seed} --duration {args.duration:g} --gap {args.gap:g} '
        f'--trainers {args.trainers} --agents {args.agents} --kinds {args.kinds}"'
    )


async def campaign(
    running: Platform,
    postgres: EmbeddedPostgres,
    broker: EmbeddedBroker,
    work: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Start the workers, run the workload under the faults, let it settle, check; the results."""
    trainer_ids = [f"chaos-{n}" for n in range(1, args.trainers + 1)]
    for trainer_id in trainer_ids:
        running.spawn_trainer(trainer_id)
    agents = [running.start_edge_agent(f"edge-{n}", ORG) for n in range(1, args.agents + 1)]
    for trainer_id in trainer_ids:
        await running.trainer_alive(trainer_id)
    for agent in agents:
        await running.edge_agent_online(agent)
    ledger = Ledger()
    workload = Workload(
        running, ledger, export_digits(work / "digits.npz").as_uri(), digit_files(work / "digits-png"),
        [agent.server_id for agent in agents], random.Random(f"{args.seed}/workload"),
    )  # fmt: skip
    chaos = Chaos(
        running, postgres, broker, workload, trainer_ids, agents, random.Random(f"{args.seed}/victims")
    )
    faults = await under_faults(workload, chaos, args)
    settled_s, stuck = await settle(running, ledger, args.settle)
    log(f"settled after {settled_s} s; checking the logs, replaying and verifying")
    findings, verified = await check(running, ledger, stuck)
    return results(args, ledger, faults, findings, settled_s, verified)


async def under_faults(workload: Workload, chaos: Chaos, args: argparse.Namespace) -> list[InjectedFault]:
    """The workload for `args.duration` seconds with the planned faults; then it stops issuing commands."""
    plan = plan_faults(args.seed, args.duration, args.gap, args.kinds.split(","))
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(workload.datasets(stop)),
        asyncio.create_task(workload.jobs(stop)),
        asyncio.create_task(Releases(workload).run(stop)),
    ]
    began, faults = time.monotonic(), []
    for planned in plan:
        await asyncio.sleep(max(0.0, began + planned.at_s - time.monotonic()))
        fault = await chaos.inject(planned.kind, round(time.monotonic() - began, 2))
        faults.append(fault)
        outcome = f"recovered in {fault.recovery_s:.2f} s" if fault.recovery_s is not None else fault.error
        if fault.server_back_s is not None:
            outcome += f" (the server itself took {fault.server_back_s:.2f} s)"
        log(f"{fault.at_s:7.1f} s  {fault.kind:<14} {fault.victim:<18} {outcome}")
    await asyncio.sleep(max(0.0, began + args.duration - time.monotonic()))
    stop.set()
    # What was under way (an evaluation, a rollout) may finish its step; then the workload is cut off.
    _, pending = await asyncio.wait(tasks, timeout=120)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return faults


def results(
    args: argparse.Namespace,
    ledger: Ledger,
    faults: list[InjectedFault],
    findings: Findings,
    settled_s: float,
    verified: str,
) -> dict[str, Any]:
    """Everything the run measured, as written to chaos.json."""
    recoveries: dict[str, list[float]] = {}
    for fault in faults:
        if fault.recovery_s is not None:
            recoveries.setdefault(fault.kind, []).append(fault.recovery_s)
    by_command: dict[str, int] = {}
    for ack in ledger.acks:
        by_command[ack.command] = by_command.get(ack.command, 0) + 1
    return {
        "seed": args.seed,
        "repeat": repeat_command(args),
        "duration_s": args.duration,
        "gap_s": args.gap,
        "settled_s": settled_s,
        "rows": recovery_rows(recoveries),
        "faults": [asdict(f) for f in faults],
        "not_recovered": [asdict(f) for f in faults if f.recovery_s is None],
        "summary": {
            "acknowledged": len(ledger.acks),
            "lost": len(findings.lost),
            "applied_twice": len(findings.applied_twice),
            "replay_differences": len(findings.replay_differences),
            "chains_broken": len(findings.chains_broken),
            "stuck": len(findings.stuck),
        },
        "acknowledged_by_command": by_command,
        "unacknowledged_attempts": dict(ledger.unacknowledged),
        "refusals": ledger.refusals,
        "retried_attempts": dict(ledger.retried),
        "jobs_created": len(ledger.job_ids),
        "rollouts_started": len(ledger.rollout_ids),
        "findings": asdict(findings),
        "verify_output": verified.splitlines(),
    }


def write(result: dict[str, Any]) -> str:
    """bench/results/chaos.json and chaos.md; the markdown."""
    summary, ok = result["summary"], result["ok"]
    lines = [
        "# Fault campaign",
        "",
        f"Seed {result['seed']}, {result['duration_s']:g} s of workload under faults, then "
        f"{result['settled_s']:g} s to settle. Repeat with `{result['repeat']}`.",
        f"Machine: {result['machine']['cpus']} CPUs, load (1 min) {result['machine']['load_1min_start']} at "
        f"the start, {result['machine']['load_1min_end']} at the end; {result['machine']['date']}.",
        "",
        markdown(summary, result["rows"]),
        "",
        f"Acknowledged by command: {json.dumps(result['acknowledged_by_command'])}.",
        f"Not acknowledged (retries exhausted or refused): {json.dumps(result['unacknowledged_attempts'])}.",
        f"Events in the logs: {json.dumps(result['findings']['events'])}; "
        f"read models replayed and compared: {result['findings']['read_models_compared']}.",
        f"Verdict: {'PASS' if ok else 'FAIL'}.",
    ]
    for name, found in result["findings"].items():
        if isinstance(found, list) and found:
            lines += ["", f"{name}:", *(f"- {line}" for line in found[:20])]
    for fault in result["not_recovered"]:
        lines.append(
            f"- not recovered: {fault['kind']} {fault['victim']} at {fault['at_s']} s: {fault['error']}"
        )
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "chaos.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (RESULTS / "chaos.md").write_text(text)
    return text


def log(line: str) -> None:
    """Progress, on stderr."""
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    """Run the campaign; exit 1 when anything was lost, doubled, broken, stuck or did not recover."""
    if os.environ.get(FORK_SUPPORT) != "false":
        # gRPC's fork handlers, with its threads busy, crash some children forked to be services
        # (SIGSEGV before exec: a restart that silently never happens); without them, none did.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, FORK_SUPPORT: "false"})
    args = arguments()
    load_at_start = os.getloadavg()
    log(f"fault campaign, seed {args.seed}; to repeat it: {repeat_command(args)}")
    with tempfile.TemporaryDirectory(prefix="modelyard-chaos-") as tmp:
        work = Path(tmp)
        # PostgreSQL's own durable defaults, not FAST_SETTINGS: with synchronous_commit off, a killed
        # server loses commits it had acknowledged (WAL not yet written), so the stores would forget
        # events their services, and the consumers that applied them, were told are there.
        postgres = EmbeddedPostgres(work / "pg" / "data")
        broker = EmbeddedBroker(work / "broker")
        try:
            servers = Infra(postgres.start(), broker.start(), "embedded, restartable")
            with platform(
                servers, work / "platform", lease_ttl_s=args.lease_ttl, env=PLATFORM_ENV
            ) as running:
                try:
                    result = asyncio.run(campaign(running, postgres, broker, work, args))
                finally:
                    shutil.rmtree(args.logs, ignore_errors=True)
                    shutil.copytree(work / "platform" / "logs", args.logs)
                    shutil.copy(work / "pg" / "postgres.log", args.logs)
                    shutil.copy(work / "broker" / "tansu.log", args.logs)
        finally:
            broker.stop()
            postgres.stop()
    result["machine"] = machine(load_at_start, "grpcio", "torch")
    result["ok"] = Findings(**result["findings"]).ok and not result["not_recovered"]
    print(write(result))
    log(f"logs of every process: {args.logs}")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
