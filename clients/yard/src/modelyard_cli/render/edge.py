"""Edge servers and deployments as rich tables: the fleet, one server with its history, the mobile status."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from modelyard.v1 import deploy_pb2
from modelyard_cli.render.deploy_values import (
    deployment_label,
    deployment_status_name,
    health_lines,
    models_text,
)
from modelyard_cli.render.values import cells, format_bytes, format_percent, format_time, present

EDGE_COLUMNS = (
    "server", "environment", "running", "intended", "drift", "online", "last heartbeat", "free disk",
)  # fmt: skip
DEPLOYMENT_COLUMNS = (
    "deployment", "server", "version", "status", "phase", "progress", "retries", "scheduled", "completed",
    "error",
)  # fmt: skip
JOB_COLUMNS = ("job", "name", "state", "progress", "updated")
MOBILE_EDGE_COLUMNS = ("server", "environment", "running", "online", "drift", "last heartbeat")


def servers_table(servers: Iterable[deploy_pb2.EdgeServer]) -> Table:
    """One row per server: what it runs and what it should run, per module, whether they differ, whether it
    is online, when it was last heard from and its free disk."""
    table = Table(*EDGE_COLUMNS, title="edge servers")
    for server in servers:
        table.add_row(
            *cells(
                server.server_id,
                server.environment,
                models_text(server.running),
                models_text(server.intended),
                _yes_no(server.drift),
                _yes_no(server.online),
                format_time(present(server, "last_heartbeat_at")),
                format_bytes(server.free_disk_bytes),
            )
        )
    return table


def server_view(detail: deploy_pb2.EdgeServerDetail) -> Group:
    """One server in full (platform, versions, drift and why), then its deployments, newest first."""
    server = detail.server
    rows: list[tuple[str, object]] = [
        ("server", server.server_id),
        ("org", server.org_id),
        ("environment", server.environment),
        ("platform", server.platform),
        ("edge version", server.edge_version),
        ("hostname", server.hostname),
        ("running", models_text(server.running)),
        ("intended", models_text(server.intended)),
        ("drift", "; ".join(server.drift_reasons) if server.drift else "no"),
        ("online", _yes_no(server.online)),
        ("last heartbeat", format_time(present(server, "last_heartbeat_at"))),
        ("free disk", format_bytes(server.free_disk_bytes)),
        ("registered", format_time(server.registered_at)),
    ]
    active = present(server, "active_deployment")
    if active is not None:
        rows.append(("installing", f"{active.deployment_id}: {deployment_label(active)} {_progress(active)}"))
    parts: list[RenderableType] = [grid(rows)]
    parts.append(deployments_table(detail.history, title="deployment history"))
    return Group(*parts)


def deployments_table(deployments: Iterable[deploy_pb2.Deployment], title: str = "deployments") -> Table:
    """One row per deployment (the seed's model_deployments columns), the error in full."""
    table = Table(*DEPLOYMENT_COLUMNS, title=title)
    for d in deployments:
        table.add_row(
            *cells(
                d.deployment_id,
                d.server_id,
                deployment_label(d),
                deployment_status_name(d.status),
                d.phase,
                f"{d.progress_percent}%",
                f"{d.retry_count}/{d.max_retries}",
                format_time(d.scheduled_at),
                format_time(present(d, "completed_at")),
                d.error_message,
            )
        )
    return table


def deployment_lines(d: deploy_pb2.Deployment) -> list[str]:
    """One deployment after a command: id, server, version, status, retries, error; then its health gate."""
    line = f"{d.deployment_id}  {d.server_id}  {deployment_label(d)}  {deployment_status_name(d.status)}"
    line += f"  {_progress(d)}  retries {d.retry_count}/{d.max_retries}"
    if d.HasField("next_retry_at"):
        line += f"  next retry {format_time(d.next_retry_at)}"
    if d.error_message:
        line += f"  error: {d.error_message}"
    return [line, *(health_lines(d.health) if d.HasField("health") else [])]


def mobile_status_view(status: deploy_pb2.MobileStatus) -> Group:
    """The mobile app's read-only status: training jobs, then the active model per edge server."""
    jobs = Table(*JOB_COLUMNS, title="training jobs")
    for job in status.jobs:
        jobs.add_row(
            *cells(
                job.job_id, job.name, job.state, format_percent(job.progress),
                format_time(present(job, "updated_at")),
            )
        )  # fmt: skip
    edges = Table(*MOBILE_EDGE_COLUMNS, title="edge servers")
    for edge in status.edges:
        edges.add_row(
            *cells(
                edge.server_id, edge.environment, models_text(edge.running), _yes_no(edge.online),
                _yes_no(edge.drift), format_time(present(edge, "last_heartbeat_at")),
            )
        )  # fmt: skip
    parts: list[RenderableType] = [jobs, edges, Text(f"as of {format_time(status.as_of)}")]
    if status.edges_left_out:
        more = f"{status.edges_left_out:,} more edge servers not listed: yard edge list pages them"
        parts.insert(2, Text(more))
    if status.jobs_error:
        parts.insert(1, Text(f"training jobs could not be read: {status.jobs_error}"))
    return Group(*parts)


def grid(rows: list[tuple[str, object]]) -> Table:
    """Label and value rows, the labels bold."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in rows:
        table.add_row(*cells(label, value))
    return table


def _progress(d: deploy_pb2.Deployment) -> str:
    return f"{d.phase or deployment_status_name(d.status)} {d.progress_percent}%"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
