"""Rollout to a fleet of real edge agents (issue 13, item 9): convergence time and deploy-svc's CPU.

The dev platform (modelyard_devstack.platform) starts every service on the embedded stack; one trainer
worker trains three one-epoch digits versions of one module (seeds 1, 2, 3: three artifacts), which
are evaluated and approved by a second admin through the real registry (deploy_release.py); each is
released to production just before its rollout (an environment has one current release). Then
`--agents` (1,000; `--quick`: 100) real edge agents (modelyard_edge.EdgeAgent, each with its own
edge token, home and channels) run as coroutines in `--processes` (4) processes (deploy_agents.py),
and the benchmark measures, one phase after another:

1. idle: deploy-svc with no agents, `--idle-s` seconds (its background cost per second);
2. registration: the agents start (spread over a few seconds) until every one has registered;
3. steady: the fleet idle for `--steady-s` seconds, heartbeating every `--heartbeat-s` seconds
   (MODELYARD_EDGE_HEARTBEAT_INTERVAL_S; 10 s, deploy-svc's default, or 2 s with --quick):
   deploy-svc CPU per heartbeat served;
4. three rollouts to every server of the environment, each a real install on every agent (signed
   URL, download, SHA-256, signed manifest, unpack, PyTorch load, health gate on probe inputs,
   atomic switch): v1 as a first install in staged waves (a canary of `--canary`, then waves of
   `--wave-size`); v2 in one wave; v3 as a canary, then the rest (v2 and v3 replace a running model,
   so their health gates load both). A rollout not finished after `--rollout-timeout-s` is measured
   as it stands and cancelled, so that the next one starts clean.
   The gate measures and reports, but its limits are set out of reach: latencies measured while
   hundreds of agents share two CPUs are noise, and the bench measures the rollout's machinery.

For each rollout: the time from StartRollout to the last deployment completed (deploy-svc's own
timestamps: rollout created_at → the last completed_at), p50 / p95 of each server's completion, the
client's wall clock to the rollout's end state, and the CPU seconds of deploy-svc (per server
deployed), registry-svc, PostgreSQL, the broker and the agent processes, read from /proc before and
after (deploy_cpu.py). Results: bench/results/deploy.{md,json}; `--keep DIR` copies the services'
and the agents' logs there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import grpc
from bench_host import machine
from deploy_agents import AgentSpec, WorkerPlan, run_worker
from deploy_cpu import CpuSnapshot, snapshot
from deploy_release import ENVIRONMENT, approved_version, describe, release

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, registry_pb2
from modelyard_devstack.platform import Platform, platform
from modelyard_devstack.stack import infra
from modelyard_grpc import mint_token
from modelyard_trainer.datasets.digits import export_digits

RESULTS = Path(__file__).resolve().parent / "results"
ORG = "bench-fleet"
EDGE_AUDIENCE = ("deploy-svc", "registry-svc")
ROLLOUT_DONE = {
    deploy_pb2.ROLLOUT_STATE_COMPLETED,
    deploy_pb2.ROLLOUT_STATE_HALTED,
    deploy_pb2.ROLLOUT_STATE_ROLLED_BACK,
    deploy_pb2.ROLLOUT_STATE_CANCELLED,
}
COMPLETED = deploy_pb2.DEPLOYMENT_STATUS_COMPLETED
FAILED = deploy_pb2.DEPLOYMENT_STATUS_FAILED
AGENTS_ROLE = "edge agents"
POLL_S = 0.5
RELEASE_SETTLE_S = 3.0  # for deploy-svc to read the release from the registry's events (StartRollout retries)


@dataclass
class Worker:
    """One agent process and its end of the pipe."""

    process: BaseProcess
    conn: Connection
    agents: int

    def receive(self, kind: str, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while not self.conn.poll(0.2):
            if not self.process.is_alive():
                raise RuntimeError(f"agent process {self.process.pid} exited ({self.process.exitcode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"agent process {self.process.pid} sent no {kind!r} in {timeout_s:.0f} s")
        got, payload = self.conn.recv()
        if got != kind:
            raise RuntimeError(f"agent process {self.process.pid} sent {got!r}, not {kind!r}")
        return payload


@dataclass
class Fleet:
    """The agent processes, and the pids whose CPU the phases report by role."""

    workers: list[Worker]
    roles: dict[int, str] = field(default_factory=dict)

    async def snapshot(self) -> dict[str, Any]:
        """Every process's call counts (summed) and CPU, as the agents see them."""
        replies = await asyncio.gather(*(asyncio.to_thread(_ask, w, "snapshot") for w in self.workers))
        return _summed(replies)

    async def stop(self) -> dict[str, Any]:
        replies = await asyncio.gather(*(asyncio.to_thread(_ask, w, "stop") for w in self.workers))
        for worker in self.workers:
            worker.process.join(30)
        return _summed(replies)


def _ask(worker: Worker, command: str) -> Any:
    worker.conn.send(command)
    return worker.receive("snapshot" if command == "snapshot" else "stopped", 300)


def _summed(replies: list[dict[str, Any]]) -> dict[str, Any]:
    calls: Counter[str] = Counter()
    logs: Counter[str] = Counter()
    for reply in replies:
        calls.update(reply["calls"])
        logs.update(reply["logs"])
    return {
        "calls": dict(calls),
        "logs": dict(logs),
        "reconnects": sum(r["reconnects"] for r in replies),
        "max_rss_mb": [round(r["max_rss_mb"]) for r in replies],
    }


class Phase:
    """CPU by role and agent calls between `begin` and `end`."""

    def __init__(self, name: str, running: Platform, fleet: Fleet | None, count_calls: bool = True) -> None:
        self.name, self.running, self.fleet, self.count_calls = name, running, fleet, count_calls
        self.result: dict[str, Any] = {"phase": name}

    async def begin(self) -> None:
        self._calls = await self.fleet.snapshot() if self.fleet and self.count_calls else None
        self._cpu = self._read()
        self._wall = time.perf_counter()

    async def end(self) -> dict[str, Any]:
        wall = time.perf_counter() - self._wall
        cpu = self._read().by_role(self._cpu)
        self.result["wall_s"] = round(wall, 3)
        self.result["cpu_s"] = {role: round(s, 3) for role, s in sorted(cpu.items())}
        if self.fleet and self._calls:
            after = await self.fleet.snapshot()
            self.result["agent_calls"] = _delta(after["calls"], self._calls["calls"])
            self.result["agent_logs"] = _delta(after["logs"], self._calls["logs"])
            self.result["agent_reconnects"] = after["reconnects"] - self._calls["reconnects"]
        return self.result

    def _read(self) -> CpuSnapshot:
        return snapshot(os.getpid(), _roles(self.running, self.fleet))


def _roles(running: Platform, fleet: Fleet | None) -> dict[int, str]:
    roles = {process.pid: name for name, process in running.processes.items()}
    if fleet:
        roles.update(fleet.roles)
    return roles


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: after.get(key, 0) - before.get(key, 0) for key in sorted(set(after) | set(before))}


async def run(
    running: Platform, args: argparse.Namespace, dataset_uri: str, tmp: Path, document: dict[str, Any]
) -> None:
    """Every phase, each added to `document["phases"]` and saved (write_results) as soon as measured,
    so a run stopped halfway keeps what it measured."""
    _progress("training, evaluating and approving three versions")
    trainer = "bench-trainer"
    running.spawn_trainer(trainer)
    await running.trainer_alive(trainer)
    versions = [await approved_version(running, ORG, dataset_uri, seed) for seed in (1, 2, 3)]
    running.stop(f"trainer-{trainer}")
    _progress(f"approved {', '.join(v.semantic_version for v in versions)}")
    document["versions"] = [describe(v) for v in versions]
    phases: list[dict[str, Any]] = document["phases"]

    def measured(phase: dict[str, Any]) -> None:
        phases.append(phase)
        write_results(document)

    admin_token = running.token(org_id=None)
    async with running.channel(running.deploy_target, admin_token) as ch:
        deploy = deploy_pb2_grpc.DeployServiceStub(ch)
        measured(await _idle(running, args.idle_s))
        fleet, registration = await _start_fleet(running, args, tmp)
        measured(registration)
        try:
            measured(await _steady(running, fleet, args.steady_s))
            for name, version_, waves in _plans(versions, args):
                try:
                    measured(
                        await _rollout(
                            running, fleet, deploy, name, version_, waves, args.agents, args.rollout_timeout_s
                        )
                    )
                except (grpc.aio.AioRpcError, TimeoutError, RuntimeError) as error:  # keep what was measured
                    _progress(f"rollout {name} broke: {error!r}")
                    measured({"phase": f"rollout: {name}", "error": repr(error)[:2000]})
        finally:
            document["agents_final"] = await fleet.stop()


def _plans(
    versions: list[registry_pb2.ModelVersion], args: argparse.Namespace
) -> list[tuple[str, registry_pb2.ModelVersion, list[int]]]:
    """v1 a first install in staged waves (a canary, then waves of --wave-size), v2 an upgrade in one
    wave, v3 an upgrade as a canary then all the rest."""
    rest = args.agents - args.canary
    staged = [args.canary] + [min(args.wave_size, rest - i) for i in range(0, rest, args.wave_size)]
    return [
        (f"v1, first install, canary then waves of {args.wave_size}", versions[0], staged),
        ("v2, upgrade, one wave", versions[1], [args.agents]),
        ("v3, upgrade, canary then the rest", versions[2], [args.canary, rest]),
    ]


async def _idle(running: Platform, seconds: float) -> dict[str, Any]:
    _progress(f"idle: deploy-svc with no agents for {seconds:.0f} s")
    phase = Phase("idle (no agents)", running, None)
    await phase.begin()
    await asyncio.sleep(seconds)
    return await phase.end()


async def _start_fleet(
    running: Platform, args: argparse.Namespace, tmp: Path
) -> tuple[Fleet, dict[str, Any]]:
    assert running.registry_key is not None
    keys = (running.registry_key.public_text(),)
    servers = [f"edge-{i:04d}" for i in range(1, args.agents + 1)]
    context = multiprocessing.get_context("spawn")
    fleet = Fleet([])
    for index in range(args.processes):
        mine = servers[index :: args.processes]
        specs = tuple(
            AgentSpec(
                server,
                mint_token(running.issuer, server, ORG, ["edge"], 4 * 3600, EDGE_AUDIENCE),
                tmp / "edges" / server,
            )
            for server in mine
        )
        plan = WorkerPlan(
            running.deploy_target,
            running.registry_target,
            keys,
            specs,
            args.start_spread_s,
            tmp / "logs" / f"agents-{index}.log",
        )
        plan.log_file.parent.mkdir(parents=True, exist_ok=True)
        ours, theirs = context.Pipe()
        process = context.Process(target=run_worker, args=(plan, theirs), daemon=True)
        process.start()
        fleet.workers.append(Worker(process, ours, len(specs)))
        assert process.pid is not None
        fleet.roles[process.pid] = AGENTS_ROLE
    _progress(f"{args.processes} agent processes starting")
    await asyncio.gather(*(asyncio.to_thread(w.receive, "ready", 600) for w in fleet.workers))
    _progress(f"{args.agents} agents starting in {args.processes} processes")
    phase = Phase("registration", running, fleet, count_calls=False)  # the agents answer once registered
    await phase.begin()
    for worker in fleet.workers:
        worker.conn.send("go")
    seconds = await asyncio.gather(*(asyncio.to_thread(w.receive, "registered", 600) for w in fleet.workers))
    result = await phase.end()
    result["agents"] = args.agents
    result["processes"] = args.processes
    result["slowest_process_registered_s"] = round(max(seconds), 2)
    _progress(f"all {args.agents} agents registered in {result['wall_s']:.1f} s")
    return fleet, result


async def _steady(running: Platform, fleet: Fleet, seconds: float) -> dict[str, Any]:
    _progress(f"steady: the fleet idle for {seconds:.0f} s")
    await asyncio.sleep(min(seconds, 10))  # registrations' after-effects (views, relay) settle first
    phase = Phase("steady (heartbeats only)", running, fleet)
    await phase.begin()
    await asyncio.sleep(seconds)
    result = await phase.end()
    result["heartbeats"] = result["agent_calls"].get("Heartbeat", 0)
    return result


async def _rollout(
    running: Platform,
    fleet: Fleet,
    deploy: deploy_pb2_grpc.DeployServiceStub,
    name: str,
    version_: registry_pb2.ModelVersion,
    waves: list[int],
    agents: int,
    timeout_s: float,
) -> dict[str, Any]:
    _progress(f"rollout {name}: releasing {version_.semantic_version}, then waves {waves}")
    await release(running, version_.version_id)
    await asyncio.sleep(RELEASE_SETTLE_S)
    request = deploy_pb2.StartRolloutRequest(
        version_id=version_.version_id,
        all_servers=True,
        environment=ENVIRONMENT,
        wave_sizes=waves,
        failure_threshold=0.02,  # a flake or two on a loaded 2-core machine must not halt 1,000 servers
        max_retries=3,
        backoff_base_s=2.0,
        reason=f"deploy benchmark: {name}",
        # The gate compares latencies measured while hundreds of agents share two CPUs: noise, not a
        # regression. The bench measures the rollout's machinery, so the gate measures but never fails.
        health=deploy_pb2.HealthLimits(max_load_time_ratio=1e6, max_p95_latency_ratio=1e6, min_agreement=0.0),
        org_id=ORG,
    )
    phase = Phase(f"rollout: {name}", running, fleet)
    await phase.begin()
    started = time.perf_counter()
    rollout, attempts = await _start(deploy, request)
    ref = deploy_pb2.RolloutRef(rollout_id=rollout.rollout_id)
    timed_out = False
    while rollout.state not in ROLLOUT_DONE:
        if time.perf_counter() - started > timeout_s:
            timed_out = True
            break
        await asyncio.sleep(POLL_S)
        try:
            rollout = await deploy.GetRollout(ref, timeout=30)
        except grpc.aio.AioRpcError as error:  # an overloaded deploy-svc: ask again
            _progress(f"GetRollout: {error.code().name}")
    client_s = time.perf_counter() - started
    result = await phase.end()
    if timed_out:  # measured as it stands, then cancelled so that the next rollout starts clean
        _progress(f"rollout {name}: not finished after {timeout_s:.0f} s; cancelling it")
        await _cancel(deploy, rollout.rollout_id)
    deployments = await _deployments(deploy, rollout.rollout_id)
    result.update(_converged(rollout, deployments, waves, agents, client_s))
    result["start_attempts"] = attempts
    result["timed_out_after_s"] = timeout_s if timed_out else None
    _progress(
        f"rollout {name}: {deploy_pb2.RolloutState.Name(rollout.state)}, converged in "
        f"{result.get('converged_s')} s, deploy-svc {result['cpu_s'].get('deploy-svc', 0):.1f} CPU s"
    )
    return result


async def _start(
    deploy: deploy_pb2_grpc.DeployServiceStub, request: deploy_pb2.StartRolloutRequest
) -> tuple[deploy_pb2.Rollout, int]:
    """StartRollout, again each second while deploy-svc has not yet read the release from the
    registry's events (it refuses a version it does not know as released); the rollout and the tries."""
    for attempt in range(1, 121):
        try:
            return await deploy.StartRollout(request), attempt
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                raise
            _progress(
                f"StartRollout refused ({error.code().name}: {(error.details() or '')[:200]}); again in 1 s"
            )
        await asyncio.sleep(1)
    raise TimeoutError(f"deploy-svc refused StartRollout of {request.version_id} for 2 minutes")


async def _cancel(deploy: deploy_pb2_grpc.DeployServiceStub, rollout_id: str) -> None:
    for _ in range(10):
        try:
            await deploy.CancelRollout(
                deploy_pb2.RolloutCommand(rollout_id=rollout_id, reason="deploy benchmark: timed out"),
                timeout=60,
            )
            return
        except grpc.aio.AioRpcError as error:
            _progress(f"CancelRollout: {error.code().name}: {(error.details() or '')[:200]}")
            if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                return
        await asyncio.sleep(5)


async def _deployments(
    deploy: deploy_pb2_grpc.DeployServiceStub, rollout_id: str
) -> list[deploy_pb2.Deployment]:
    found: list[deploy_pb2.Deployment] = []
    token = ""
    while True:
        page = await deploy.ListDeployments(
            deploy_pb2.ListDeploymentsRequest(rollout_id=rollout_id, page_size=200, page_token=token),
            timeout=120,
        )
        found.extend(page.deployments)
        token = page.next_page_token
        if not token:
            return found


def _converged(
    rollout: deploy_pb2.Rollout,
    deployments: list[deploy_pb2.Deployment],
    waves: list[int],
    agents: int,
    client_s: float,
) -> dict[str, Any]:
    created = rollout.created_at.ToDatetime()
    done = [d for d in deployments if d.status == COMPLETED and d.HasField("completed_at")]
    per_server = sorted((d.completed_at.ToDatetime() - created).total_seconds() for d in done)
    result: dict[str, Any] = {
        "state": deploy_pb2.RolloutState.Name(rollout.state),
        "halt_reason": rollout.halt_reason,
        "waves": waves,
        "servers": rollout.server_count,
        "deployments": len(deployments),
        "completed": len(done),
        "failed": sum(d.status == FAILED for d in deployments),
        "statuses": dict(Counter(deploy_pb2.DeploymentStatus.Name(d.status) for d in deployments)),
        "errors": dict(Counter(d.error_message[:120] for d in deployments if d.error_message).most_common(5)),
        "retries": sum(d.retry_count for d in deployments),
        "client_wall_s": round(client_s, 2),
        "all_converged": len(done) == agents,
    }
    if rollout.HasField("finished_at"):  # the conductor saw every wave through (after the views caught up)
        result["rollout_finished_s"] = round((rollout.finished_at.ToDatetime() - created).total_seconds(), 2)
    if per_server:
        result["converged_s"] = round(per_server[-1], 2)
        result["server_completion_s"] = {
            "p50": round(percentile(per_server, 50), 2),
            "p95": round(percentile(per_server, 95), 2),
            "max": round(per_server[-1], 2),
            "mean": round(statistics.fmean(per_server), 2),
        }
        result["completed_by_s"] = {  # how the fleet filled up: servers completed by each time
            str(t): sum(x <= t for x in per_server) for t in (30, 60, 120, 180, 300, 450, 600, 900)
        }
        result["per_wave"] = [_wave(w, created, deployments) for w in range(len(waves))]
    return result


def _wave(wave: int, created: datetime, deployments: list[deploy_pb2.Deployment]) -> dict[str, Any]:
    mine = [d for d in deployments if d.HasField("wave") and d.wave == wave]
    started = [
        (d.started_at.ToDatetime() - created).total_seconds() for d in mine if d.HasField("started_at")
    ]
    ended = [
        (d.completed_at.ToDatetime() - created).total_seconds() for d in mine if d.HasField("completed_at")
    ]
    return {
        "wave": wave,
        "deployments": len(mine),
        "first_started_s": round(min(started), 2) if started else None,
        "last_completed_s": round(max(ended), 2) if ended else None,
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of sorted or unsorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100 agents in 2 processes, shorter phases")
    parser.add_argument("--canary", type=int, default=10, help="the first wave of the staged rollout")
    parser.add_argument(
        "--heartbeat-s",
        type=float,
        help="MODELYARD_EDGE_HEARTBEAT_INTERVAL_S (default 10, deploy-svc's own; --quick: 2)",
    )
    parser.add_argument("--steady-s", type=float, default=30.0)
    parser.add_argument("--idle-s", type=float, default=15.0)
    parser.add_argument("--start-spread-s", type=float, default=10.0)
    parser.add_argument("--wave-size", type=int, default=200, help="v1's waves after its canary")
    parser.add_argument(
        "--rollout-timeout-s", type=float, default=480.0, help="measure a rollout as it stands after this"
    )
    parser.add_argument("--keep", type=Path, help="copy the platform's and agents' logs here")
    args = parser.parse_args()
    if args.quick:
        args.agents, args.processes, args.steady_s, args.idle_s, args.wave_size = 100, 2, 15.0, 10.0, 30
    if args.heartbeat_s is None:
        args.heartbeat_s = 2.0 if args.quick else 10.0
    load_at_start = os.getloadavg()
    document: dict[str, Any] = {
        "parameters": {
            "agents": args.agents,
            "processes": args.processes,
            "canary": args.canary,
            "wave_size": args.wave_size,
            "heartbeat_interval_s": args.heartbeat_s,
            "steady_s": args.steady_s,
            "idle_s": args.idle_s,
            "start_spread_s": args.start_spread_s,
            "rollout_timeout_s": args.rollout_timeout_s,
            "quick": args.quick,
        },
        "machine": machine(load_at_start, "grpcio", "torch"),
        "versions": [],
        "phases": [],
    }
    env = {"MODELYARD_EDGE_HEARTBEAT_INTERVAL_S": str(args.heartbeat_s)}
    with tempfile.TemporaryDirectory(prefix="modelyard-deploy-bench-") as tmp_name, infra() as servers:
        tmp = Path(tmp_name)
        dataset_uri = export_digits(tmp / "digits.npz").as_uri()
        try:
            with platform(servers, tmp / "platform", lease_ttl_s=10.0, env=env) as running:
                if not running.deploy_target:
                    raise SystemExit("deploy-svc is not installed (modelyard_deploy has no __main__)")
                asyncio.run(run(running, args, dataset_uri, tmp, document))
        finally:
            if args.keep:
                shutil.copytree(tmp / "platform" / "logs", args.keep / "platform", dirs_exist_ok=True)
                shutil.copytree(tmp / "logs", args.keep / "agents", dirs_exist_ok=True)
    print(write_results(document))


def write_results(document: dict[str, Any]) -> str:
    """bench/results/deploy.json and deploy.md; the markdown."""
    from deploy_report import markdown

    RESULTS.mkdir(exist_ok=True)
    document["machine"]["load_1min_end"] = round(os.getloadavg()[0], 2)
    document["machine"]["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (RESULTS / "deploy.json").write_text(json.dumps(document, indent=2) + "\n")
    text = markdown(document)
    (RESULTS / "deploy.md").write_text(text)
    return text


def _progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
