"""The markdown of the rollout benchmark's results (deploy_bench.py), from its JSON document.

Net figures take out what deploy-svc spends anyway: its idle cost per second (the idle phase, no
agents), and, for a rollout, the heartbeats served meanwhile at the steady phase's net cost each.
"""

from __future__ import annotations

from typing import Any

DEPLOY = "deploy-svc"
AGENTS = "edge agents"


def markdown(document: dict[str, Any]) -> str:
    host, parameters = document["machine"], document["parameters"]
    phases = {phase["phase"]: phase for phase in document["phases"]}
    none: dict[str, Any] = {"wall_s": 0.0, "cpu_s": {}, "heartbeats": 0, "agents": 0}  # not measured (yet)
    idle = phases.get("idle (no agents)", {**none, "phase": "idle (no agents)"})
    steady = phases.get("steady (heartbeats only)", {**none, "phase": "steady (heartbeats only)"})
    registration = phases.get("registration", {**none, "phase": "registration"})
    broken = [phase for phase in document["phases"] if "error" in phase]
    rollouts = [p for p in document["phases"] if p["phase"].startswith("rollout") and "error" not in p]
    idle_rate = _cpu(idle, DEPLOY) / idle["wall_s"] if idle["wall_s"] else 0.0
    heartbeats = steady["heartbeats"]
    net_heartbeat = (_cpu(steady, DEPLOY) - idle_rate * steady["wall_s"]) / heartbeats if heartbeats else 0.0
    size = document["versions"][0]["artifact_size_bytes"] if document["versions"] else 0
    lines = [
        "# Rollout to a fleet of real edge agents: convergence and deploy-svc CPU",
        "",
        f"{host['cpus']} CPUs ({host['processor']}), Python {host['python']}, grpcio {host['grpcio']}, "
        f"torch {host['torch']}, {host['date']}. Load average (1 min) {host['load_1min_start']} at the "
        f"start, {host['load_1min_end']} at the end. Everything on this machine: PostgreSQL, the broker, "
        f"every service, {parameters['agents']:,} agents in {parameters['processes']} processes.",
        f"Heartbeat interval {parameters['heartbeat_interval_s']:g} s. Artifacts: {size:,} bytes "
        f"(one-epoch digits model). Each deployment: signed URL, download, SHA-256, signed manifest, "
        "unpack, PyTorch load, health gate on 32 probe inputs (measured, limits out of reach), atomic "
        "switch, and a progress report per phase.",
        "",
        "## Rollouts",
        "",
        "Converged: deploy-svc's rollout `created_at` → the last deployment's `completed_at`, when every "
        "server completed; p50 / p95 of the servers that completed, on the same clock. Client wall: "
        "StartRollout sent → the rollout's end state seen (polled every 0.5 s), or the time limit. "
        "Finished: the rollout's own `finished_at` (its conductor closes the last wave once deploy-svc's "
        "views have caught up with its log).",
        "",
        "| rollout | waves | state | completed | failed | other | retries | converged s | p50 s | p95 s | "
        "finished s | client wall s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in rollouts:
        times = phase.get("server_completion_s", {})
        state = phase["state"].removeprefix("ROLLOUT_STATE_").lower()
        if phase.get("timed_out_after_s"):
            state = f"{state} at {phase['timed_out_after_s']:.0f} s: measured, then cancelled"
        other = phase["deployments"] - phase["completed"] - phase["failed"]
        converged = phase.get("converged_s", "–") if phase["all_converged"] else "not converged"
        lines.append(
            f"| {phase['phase'].removeprefix('rollout: ')} | {' + '.join(str(w) for w in phase['waves'])} | "
            f"{state} | {phase['completed']:,} / {phase['servers']:,} | {phase['failed']} | {other} | "
            f"{phase['retries']} | "
            f"{converged} | {times.get('p50', '–')} | {times.get('p95', '–')} | "
            f"{phase.get('rollout_finished_s', '–')} | {phase['client_wall_s']} |"
        )
    lines += [
        "",
        "## deploy-svc CPU",
        "",
        f"Idle (no agents, {idle['wall_s']:.0f} s): {idle_rate * 1000:.0f} ms of CPU per second.",
        "",
        "| phase | wall s | deploy-svc CPU s | per unit | net of idle (and heartbeats) | "
        "agents' CPU per unit |",
        "|---|---:|---:|---|---|---:|",
        _row(registration, registration["agents"], "registration", idle_rate, 0.0),
        _row(steady, heartbeats, "heartbeat", idle_rate, 0.0),
    ]
    for phase in rollouts:
        during = phase.get("agent_calls", {}).get("Heartbeat", 0)
        lines.append(_row(phase, phase["completed"], "server deployed", idle_rate, during * net_heartbeat))
    lines += [
        "",
        f"Steady phase: {heartbeats:,} heartbeats in {steady['wall_s']:.0f} s "
        f"({heartbeats / max(steady['wall_s'], 1e-9):,.0f} a second) from {parameters['agents']:,} agents.",
        "",
        "## CPU seconds by process, per phase",
        "",
    ]
    lines += _by_role([p for p in document["phases"] if "error" not in p], parameters["agents"])
    lines += [f"\n**{p['phase']} broke**: {p['error']}" for p in broken]
    for phase in rollouts:
        if phase.get("completed_by_s"):
            filled = ", ".join(f"{n:,} by {t} s" for t, n in phase["completed_by_s"].items())
            lines.append(f"\n{phase['phase']}: servers completed {filled}.")
        if phase.get("errors"):
            errors = "; ".join(f"{n} × {text!r}" for text, n in phase["errors"].items())
            lines.append(f"Deployment errors ({phase['phase']}): {errors}.")
    lines.append("")
    return "\n".join(lines)


def _cpu(phase: dict[str, Any], role: str) -> float:
    return float(phase["cpu_s"].get(role, 0.0))


def _row(phase: dict[str, Any], units: int, unit: str, idle_rate: float, also_net: float) -> str:
    cpu = _cpu(phase, DEPLOY)
    net = cpu - idle_rate * phase["wall_s"] - also_net
    per = f"{cpu / units * 1000:.2f} ms per {unit}" if units else "–"
    per_net = f"{net / units * 1000:.2f} ms per {unit}" if units else "–"
    agents = f"{_cpu(phase, AGENTS) / units * 1000:.1f} ms" if units and AGENTS in phase["cpu_s"] else "–"
    return f"| {phase['phase']} | {phase['wall_s']:.1f} | {cpu:.2f} | {per} | {per_net} | {agents} |"


def _by_role(phases: list[dict[str, Any]], agents: int) -> list[str]:
    roles = sorted({role for phase in phases for role in phase["cpu_s"]})
    lines = [
        "| phase | wall s | " + " | ".join(roles) + " |",
        "|---|---:|" + "---:|" * len(roles),
    ]
    for phase in phases:
        cells = [f"{phase['cpu_s'].get(role, 0.0):.1f}" for role in roles]
        lines.append(f"| {phase['phase']} | {phase['wall_s']:.1f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Edge agents: {agents:,} coroutines; their processes' CPU is what the fleet spent on this "
        "machine (downloads, hashing, PyTorch loads and probes, gRPC).",
    ]
    return lines
