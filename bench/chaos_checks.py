"""After the faults: did the system lose, double or leave anything behind?

- lost: an acknowledged command whose event is not in its service's log;
- applied twice: an idempotency key with more than one event of its command's type, a training job
  registered as more than one model version (registry-svc reacting twice to one JobCompleted), or a
  read model that `yard audit replay` rebuilds differently from the live one (a projection that applied
  an event twice, or missed one, is not equal to its replay);
- chains: `yard audit verify` over every service's log;
- stuck: a job or deployment not finished once the system had `settle_s` to recover.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from chaos_workload import FINISHED_JOBS, ORG, Ack, Ledger

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, events_pb2, events_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from modelyard_devstack.platform import Platform

FINISHED_DEPLOYMENTS = frozenset(
    {
        deploy_pb2.DEPLOYMENT_STATUS_COMPLETED,
        deploy_pb2.DEPLOYMENT_STATUS_FAILED,
        deploy_pb2.DEPLOYMENT_STATUS_CANCELLED,
    }
)
FINISHED_ROLLOUTS = frozenset(
    {
        deploy_pb2.ROLLOUT_STATE_COMPLETED,
        deploy_pb2.ROLLOUT_STATE_HALTED,
        deploy_pb2.ROLLOUT_STATE_ROLLED_BACK,
        deploy_pb2.ROLLOUT_STATE_CANCELLED,
    }
)
LogEvents = list[events_pb2.EventEnvelope]


@dataclass
class Findings:
    """What the checks found; `ok` only when every list is empty."""

    lost: list[str] = field(default_factory=list)
    applied_twice: list[str] = field(default_factory=list)
    replay_differences: list[str] = field(default_factory=list)
    chains_broken: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # events per service log
    read_models_compared: int = 0

    @property
    def ok(self) -> bool:
        """Nothing lost, doubled, differing, broken or stuck."""
        return not (
            self.lost or self.applied_twice or self.replay_differences or self.chains_broken or self.stuck
        )


async def unfinished(running: Platform, ledger: Ledger) -> list[str]:
    """The workload's jobs, rollouts and deployments that have not reached a final state."""
    left: list[str] = []
    async with running.channel(running.job_target, running.token(("auditor",))) as ch:
        stub = jobs_pb2_grpc.JobServiceStub(ch)
        listed = await stub.ListJobs(jobs_pb2.ListJobsRequest(org_id=ORG, page_size=500), timeout=10)
        left += [
            f"job {j.job_id} ({j.kind}) {jobs_pb2.JobState.Name(j.state)}"
            for j in listed.jobs
            if j.state not in FINISHED_JOBS
        ]
    async with running.channel(running.deploy_target, running.token(org_id=ORG)) as ch:
        deploy = deploy_pb2_grpc.DeployServiceStub(ch)
        for rollout_id in ledger.rollout_ids:
            rollout = await deploy.GetRollout(deploy_pb2.RolloutRef(rollout_id=rollout_id), timeout=10)
            if rollout.state not in FINISHED_ROLLOUTS:
                left.append(f"rollout {rollout_id} {deploy_pb2.RolloutState.Name(rollout.state)}")
            reply = await deploy.ListDeployments(
                deploy_pb2.ListDeploymentsRequest(rollout_id=rollout_id, page_size=200), timeout=10
            )
            left += [
                f"deployment {d.deployment_id} {deploy_pb2.DeploymentStatus.Name(d.status)}"
                for d in reply.deployments
                if d.status not in FINISHED_DEPLOYMENTS
            ]
    return left


async def settle(running: Platform, ledger: Ledger, settle_s: float) -> tuple[float, list[str]]:
    """Wait until nothing is unfinished or `settle_s` passed: (seconds waited, what is left)."""
    started = time.monotonic()
    left = ["not asked yet"]
    while time.monotonic() - started < settle_s:
        try:
            left = await unfinished(running, ledger)
        except grpc.aio.AioRpcError as error:
            left = [f"could not ask: {error.code().name}: {error.details()}"]
        if not left:
            break
        await asyncio.sleep(2.0)
    return round(time.monotonic() - started, 1), left


async def read_log(running: Platform, target: str) -> LogEvents:
    """A service's whole log through its ReadEvents (as an auditor)."""
    found: LogEvents = []
    async with running.channel(target, running.token(("auditor",))) as ch:
        stub = events_pb2_grpc.EventLogStub(ch)
        while True:
            page = await stub.ReadEvents(
                events_pb2.ReadEventsRequest(after_position=found[-1].position if found else 0, limit=1000),
                timeout=30,
            )
            if not page.events:
                return found
            found.extend(page.events)


def targets(running: Platform) -> dict[str, str]:
    """Every service that keeps a log, and where it listens."""
    return {
        "dataset-svc": running.dataset_target,
        "job-svc": running.job_target,
        "trainer-svc": running.trainer_target,
        "registry-svc": running.registry_target,
        "deploy-svc": running.deploy_target,
    }


def lost_commands(acks: list[Ack], logs: dict[str, LogEvents]) -> list[str]:
    """Acknowledged commands with an id that no event of their type names."""
    texts: dict[tuple[str, str], list[str]] = defaultdict(list)
    for service, events in logs.items():
        for event in events:
            texts[service, event.type].append(f"{event.stream_id} {event.data_json}")
    lost = []
    for ack in acks:
        found = texts[ack.service, ack.event_type]
        missing = [i for i in ack.ids if not any(i in text for text in found)]
        if missing:
            lost.append(f"{ack.service} {ack.command}: no {ack.event_type} for {', '.join(missing[:5])}")
    return lost


def doubled_effects(acks: list[Ack], logs: dict[str, LogEvents]) -> list[str]:
    """Idempotency keys that made more than one event, and jobs registered more than once."""
    doubled = []
    for ack in (a for a in acks if a.key):
        count = sum(1 for e in logs[ack.service] if e.type == ack.event_type and ack.key in e.data_json)
        if count > 1:
            doubled.append(f"{ack.service} {ack.command} key {ack.key}: {count} {ack.event_type} events")
    registered = Counter(
        json.loads(e.data_json).get("training_job_id")
        for e in logs["registry-svc"]
        if e.type == "ModelVersionRegistered"
    )
    doubled += [f"job {job} registered {n} model versions" for job, n in registered.items() if job and n > 1]
    return doubled


def yard(running: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    """`yard` as an auditor of this platform (an auditor's token and the pinned event keys)."""
    env = {
        **os.environ,
        "MODELYARD_JOB_SVC_TARGET": running.job_target,
        "MODELYARD_DATASET_SVC_TARGET": running.dataset_target,
        "MODELYARD_REGISTRY_SVC_TARGET": running.registry_target,
        "MODELYARD_DEPLOY_TARGET": running.deploy_target,
        "MODELYARD_TRAINER_SVC_TARGET": running.trainer_target,
        "MODELYARD_EVENT_PUBLIC_KEYS": running.base_env["MODELYARD_EVENT_PUBLIC_KEYS"],
        "MODELYARD_TOKEN": running.token(("auditor",), subject="chaos-auditor"),
    }
    program = shutil.which("yard", path=str(Path(sys.executable).parent)) or "yard"
    return subprocess.run([program, *args], env=env, capture_output=True, text=True, timeout=600)


def replay_differences(running: Platform) -> tuple[list[str], int]:
    """`yard audit replay --json`: every read model that differs from its replay (or was not compared),
    and how many read models it compared."""
    done = yard(running, "audit", "replay", "--json")
    found, compared = [], 0
    for line in done.stdout.splitlines():
        result: dict[str, Any] = json.loads(line) if line.startswith("{") else {}
        compared += bool(result)
        if result and (not result.get("identical") or result.get("problem")):
            tables = [line for table in result.get("tables", []) for line in _table_differences(table)]
            found.append(
                f"{result['service']} {result['projection']}: {result.get('problem') or ' | '.join(tables)}"
            )
    if done.returncode != 0 and not found:
        found.append(f"yard audit replay exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return found, compared


def _table_differences(table: dict[str, Any]) -> list[str]:
    """A differing table's counts and its example rows (JSON's int64 are strings)."""
    only_live, only_replayed = int(table.get("only_live", 0)), int(table.get("only_replayed", 0))
    if not (only_live or only_replayed):
        return []
    return [
        f"{table['table']}: {only_live} rows only live, {only_replayed} only in the replay",
        *(f"live: {row}" for row in table.get("only_live_examples", [])),
        *(f"replay: {row}" for row in table.get("only_replayed_examples", [])),
    ]


def broken_chains(running: Platform) -> tuple[list[str], str]:
    """`yard audit verify`: the services whose chain or signed heads do not verify, and its output."""
    done = yard(running, "audit", "verify")
    broken = [line for line in done.stdout.splitlines() if "BROKEN" in line]
    if done.returncode != 0 and not broken:
        broken.append(f"yard audit verify exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return broken, done.stdout


async def check(running: Platform, ledger: Ledger, stuck: list[str]) -> tuple[Findings, str]:
    """Every check above; the findings and `yard audit verify`'s output."""
    logs = {name: await read_log(running, target) for name, target in targets(running).items()}
    differences, compared = await asyncio.to_thread(replay_differences, running)
    findings = Findings(
        lost=lost_commands(ledger.acks, logs),
        applied_twice=doubled_effects(ledger.acks, logs),
        replay_differences=differences,
        stuck=stuck,
        events={name: len(events) for name, events in logs.items()},
        read_models_compared=compared,
    )
    findings.chains_broken, verified = await asyncio.to_thread(broken_chains, running)
    return findings, verified
