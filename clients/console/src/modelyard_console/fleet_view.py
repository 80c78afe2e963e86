"""The edge fleet as the Fleet page shows it: each server's running and intended versions, drift,
its deployment in progress, and each rollout's waves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelyard.v1 import deploy_pb2
from modelyard_cli.render.values import present
from modelyard_console.values import MISSING, format_bytes, format_time


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """One (version, server) install in progress or finished."""

    deployment_id: str
    server_id: str
    target: str  # `digit-reader 1.2.0`
    status: str
    phase: str
    percent: int
    error: str


@dataclass(frozen=True, slots=True)
class EdgeServerView:
    """One edge server's line."""

    server_id: str
    org_id: str
    environment: str
    online: bool
    running: str
    intended: str
    drift: bool
    drift_reasons: str
    last_heartbeat: str
    free_disk: str
    deployment: DeploymentView | None


@dataclass(frozen=True, slots=True)
class RolloutView:
    """One rollout and its waves (`wave 1: 1/1 done`)."""

    rollout_id: str
    target: str
    state: str
    environment: str
    waves: list[str]
    server_count: int
    started_by: str
    created_at: str
    halt_reason: str


def deployment_status_name(value: int) -> str:
    """DEPLOYMENT_STATUS_DOWNLOADING → `downloading`."""
    return deploy_pb2.DeploymentStatus.Name(value).removeprefix("DEPLOYMENT_STATUS_").lower()


def rollout_state_name(value: int) -> str:
    """ROLLOUT_STATE_ROLLED_BACK → `rolled back`."""
    return deploy_pb2.RolloutState.Name(value).removeprefix("ROLLOUT_STATE_").lower().replace("_", " ")


def deployment_view(deployment: deploy_pb2.Deployment) -> DeploymentView:
    """The view of one deployment."""
    return DeploymentView(
        deployment_id=deployment.deployment_id,
        server_id=deployment.server_id,
        target=f"{deployment.ai_module} {deployment.semantic_version}",
        status=deployment_status_name(deployment.status),
        phase=deployment.phase,
        percent=deployment.progress_percent,
        error=deployment.error_message,
    )


def edge_server_view(server: deploy_pb2.EdgeServer) -> EdgeServerView:
    """The view of one edge server."""
    active = server.active_deployment if server.HasField("active_deployment") else None
    return EdgeServerView(
        server_id=server.server_id,
        org_id=server.org_id,
        environment=server.environment,
        online=server.online,
        running=_models(server.running),
        intended=_models(server.intended),
        drift=server.drift,
        drift_reasons="; ".join(server.drift_reasons),
        last_heartbeat=format_time(present(server, "last_heartbeat_at")),
        free_disk=format_bytes(server.free_disk_bytes),
        deployment=deployment_view(active) if active is not None else None,
    )


def rollout_view(rollout: deploy_pb2.Rollout) -> RolloutView:
    """The view of one rollout."""
    waves = [
        f"wave {w.wave}: {w.completed}/{w.size} done"
        + (f", {w.failed} failed" if w.failed else "")
        + (f", {w.in_progress} in progress" if w.in_progress else "")
        for w in rollout.waves
    ]
    return RolloutView(
        rollout_id=rollout.rollout_id,
        target=f"{rollout.ai_module} {rollout.semantic_version}",
        state=rollout_state_name(rollout.state),
        environment=rollout.environment or MISSING,
        waves=waves,
        server_count=rollout.server_count,
        started_by=rollout.started_by,
        created_at=format_time(rollout.created_at),
        halt_reason=rollout.halt_reason,
    )


def _models(models: Iterable[deploy_pb2.RunningModel]) -> str:
    names = [f"{m.ai_module} {m.semantic_version}" for m in models]
    return ", ".join(names) or MISSING
