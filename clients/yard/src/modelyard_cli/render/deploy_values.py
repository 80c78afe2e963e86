"""Names of deploy-svc's values as people type and read them: `downloading`, `rolled back`, `digits 1.2.0`."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from modelyard.v1 import deploy_pb2

FINISHED_ROLLOUT_STATES = frozenset(
    {
        deploy_pb2.ROLLOUT_STATE_COMPLETED,
        deploy_pb2.ROLLOUT_STATE_HALTED,
        deploy_pb2.ROLLOUT_STATE_ROLLED_BACK,
        deploy_pb2.ROLLOUT_STATE_CANCELLED,
    }
)
FINISHED_DEPLOYMENT_STATUSES = frozenset(
    {
        deploy_pb2.DEPLOYMENT_STATUS_COMPLETED,
        deploy_pb2.DEPLOYMENT_STATUS_FAILED,
        deploy_pb2.DEPLOYMENT_STATUS_CANCELLED,
    }
)


class DeploymentStatusName(StrEnum):
    """The states of one deployment (`--status`)."""

    pending = "pending"
    downloading = "downloading"
    installing = "installing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


def deployment_status_value(name: DeploymentStatusName) -> str:
    """`failed` → "DEPLOYMENT_STATUS_FAILED" (protobuf takes enum values by name)."""
    return f"DEPLOYMENT_STATUS_{name.value.upper()}"


def deployment_status_name(value: int) -> str:
    """DEPLOYMENT_STATUS_DOWNLOADING → `downloading`."""
    return deploy_pb2.DeploymentStatus.Name(value).removeprefix("DEPLOYMENT_STATUS_").lower()


def rollout_state_name(value: int) -> str:
    """ROLLOUT_STATE_ROLLED_BACK → `rolled back`."""
    return deploy_pb2.RolloutState.Name(value).removeprefix("ROLLOUT_STATE_").lower().replace("_", " ")


def models_text(models: Iterable[deploy_pb2.RunningModel]) -> str:
    """`digits 1.2.0, faces 0.3.1`: one module and version number per model; `-` when none."""
    return ", ".join(f"{m.ai_module} {m.semantic_version or m.version_id}" for m in models) or "-"


def deployment_label(deployment: deploy_pb2.Deployment) -> str:
    """`digits 1.2.0 (mv-7)`, with `rollback to` in front of a rollback's."""
    label = f"{deployment.ai_module} {deployment.semantic_version} ({deployment.version_id})"
    return f"rollback to {label}" if deployment.kind == "rollback" else label


def health_lines(report: deploy_pb2.HealthReport) -> list[str]:
    """The health gate's figures: new against old load time and p95 latency, agreement, and why it failed."""
    new = report.new
    lines = [
        f"health gate {'passed' if report.passed else 'FAILED'} on {report.probes} probe inputs",
        f"  new {new.version_id}: load {new.load_time_ms:.1f} ms, p95 {new.latency_p95_ms:.2f} ms",
    ]
    if report.HasField("old"):
        old = report.old
        lines.append(
            f"  old {old.version_id}: load {old.load_time_ms:.1f} ms, p95 {old.latency_p95_ms:.2f} ms"
        )
    if report.HasField("agreement"):
        lines.append(
            f"  agreement {report.agreement * 100:.1f}% over {report.compared_classes} shared classes"
        )
    lines += [f"  {reason}" for reason in report.reasons]
    return lines
