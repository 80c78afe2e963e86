"""Rollouts as rich renderables: the list, a one-line result, and the live view with a bar per server."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table

from modelyard.v1 import deploy_pb2
from modelyard_cli.render.deploy_values import deployment_status_name, rollout_state_name
from modelyard_cli.render.edge import grid
from modelyard_cli.render.values import cells, format_percent, format_time, present

ROLLOUT_COLUMNS = ("rollout", "version", "kind", "state", "servers", "wave", "started by", "created", "why")
SERVER_COLUMNS = ("server", "wave", "status", "phase", "progress", "", "retries", "error")
WAVE_COLUMNS = ("wave", "size", "completed", "failed", "cancelled", "in progress", "verdict")
BAR_WIDTH = 24
_HALTING_STATES = frozenset(
    {
        deploy_pb2.ROLLOUT_STATE_HALTED,
        deploy_pb2.ROLLOUT_STATE_ROLLING_BACK,
        deploy_pb2.ROLLOUT_STATE_ROLLED_BACK,
    }
)
_BAR_STYLE = {
    deploy_pb2.DEPLOYMENT_STATUS_COMPLETED: "green",
    deploy_pb2.DEPLOYMENT_STATUS_FAILED: "red",
    deploy_pb2.DEPLOYMENT_STATUS_CANCELLED: "yellow",
}


def rollouts_table(rollouts: Iterable[deploy_pb2.Rollout]) -> Table:
    """One row per rollout: its version, state, size, current wave, who started it and why it ended."""
    table = Table(*ROLLOUT_COLUMNS, title="rollouts")
    for r in rollouts:
        table.add_row(
            *cells(
                r.rollout_id,
                version_text(r),
                r.kind,
                rollout_state_name(r.state),
                r.server_count,
                f"{r.current_wave}/{len(r.waves)}",
                r.started_by,
                format_time(r.created_at),
                r.halt_reason,
            )
        )
    return table


def version_text(rollout: deploy_pb2.Rollout) -> str:
    """`digits 1.2.0 (mv-7)`."""
    return f"{rollout.ai_module} {rollout.semantic_version} ({rollout.version_id})"


def rollout_line(rollout: deploy_pb2.Rollout) -> str:
    """One line after a command: id, version, state, servers and waves, and why it ended."""
    sizes = ",".join(str(w.size) for w in rollout.waves) or "-"
    line = (
        f"{rollout.rollout_id}  {version_text(rollout)}  {rollout_state_name(rollout.state)}"
        f"  {rollout.server_count} servers in waves {sizes}"
    )
    if rollout.scheduled_at.seconds:
        line += f"  scheduled {format_time(rollout.scheduled_at)}"
    if rollout.halt_reason:
        line += f"  {ending_label(rollout)}: {rollout.halt_reason}"
    return line


def ending_label(rollout: deploy_pb2.Rollout) -> str:
    """What the rollout's reason explains: why it halted, was cancelled, or how it ended."""
    if rollout.state == deploy_pb2.ROLLOUT_STATE_CANCELLED:
        return "cancelled"
    if rollout.state in _HALTING_STATES:
        return "halted"
    return "outcome"


def rollout_view(rollout: deploy_pb2.Rollout, deployments: Sequence[deploy_pb2.Deployment]) -> Group:
    """The rollout's header, its waves with their verdicts, then a progress bar per server."""
    rows: list[tuple[str, object]] = [
        ("rollout", rollout.rollout_id),
        ("version", version_text(rollout)),
        ("kind", rollout.kind),
        ("state", rollout_state_name(rollout.state)),
        ("environment", present(rollout, "environment")),
        ("failure threshold", format_percent(rollout.failure_threshold)),
        ("rollback on failure", "yes" if rollout.rollback_on_failure else "no"),
        ("scheduled", format_time(rollout.scheduled_at)),
        ("finished", format_time(present(rollout, "finished_at"))),
        ("started by", rollout.started_by),
        ("reason", rollout.reason),
    ]
    if rollout.halt_reason:
        rows.append((ending_label(rollout), rollout.halt_reason))
    parts: list[RenderableType] = [grid(rows), waves_table(rollout.waves), servers_progress(deployments)]
    return Group(*parts)


def waves_table(waves: Iterable[deploy_pb2.WaveProgress]) -> Table:
    """One row per wave: its size, outcome counts and verdict (waiting, running, passed, over threshold)."""
    table = Table(*WAVE_COLUMNS, title="waves")
    for w in waves:
        table.add_row(*cells(w.wave, w.size, w.completed, w.failed, w.cancelled, w.in_progress, _verdict(w)))
    return table


def servers_progress(deployments: Sequence[deploy_pb2.Deployment]) -> Table:
    """A progress bar per server (green done, red failed), with its status, phase, retries and error."""
    table = Table(*SERVER_COLUMNS, title="servers")
    for d in sorted(deployments, key=lambda d: (d.wave, d.server_id, d.kind)):
        server = d.server_id if d.kind != "rollback" else f"{d.server_id} (rollback)"
        wave = d.wave if d.HasField("wave") else None
        server_cell, wave_cell, status_cell, phase_cell = cells(
            server, wave, deployment_status_name(d.status), d.phase
        )
        percent_cell, retries_cell, error_cell = cells(
            f"{d.progress_percent}%", f"{d.retry_count}/{d.max_retries}", d.error_message
        )
        table.add_row(
            server_cell, wave_cell, status_cell, phase_cell, percent_cell, _bar(d), retries_cell, error_cell
        )
    return table


def _bar(d: deploy_pb2.Deployment) -> ProgressBar:
    style = _BAR_STYLE.get(d.status, "cyan")
    done = 100 if d.status == deploy_pb2.DEPLOYMENT_STATUS_COMPLETED else d.progress_percent
    return ProgressBar(total=100, completed=done, width=BAR_WIDTH, complete_style=style, finished_style=style)


def _verdict(wave: deploy_pb2.WaveProgress) -> str:
    if not wave.started:
        return "waiting"
    if not wave.finished:
        return "running"
    return "passed" if wave.passed else "over threshold"
