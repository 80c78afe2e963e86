"""The deployments a rollout makes: one per server of a started wave, and one per server it rolls back.

Ids come from `wave_deployment_id(rollout, wave, server, kind)`, so deciding the same deployment
twice (a pass repeated after a crash, two replicas) names the same stream and creates it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from modelyard_deploy.domain.deployment import DeploymentSpec
from modelyard_deploy.domain.rollout import Rollout
from modelyard_events.schemas.bounds import truncate_text
from modelyard_events.schemas.deploy import HealthLimits, wave_deployment_id

# Going back to the model a server ran before is the safe move: the health gate compares it with the
# model that failed, so it must not refuse it for being slower than that one.
ROLLBACK_HEALTH = HealthLimits(max_load_time_ratio=1e6, max_p95_latency_ratio=1e6, min_agreement=0.0)


def wave_deployment(
    rollout: Rollout, wave: int, server_id: str, previous_version_id: str | None
) -> DeploymentSpec:
    """The deployment of the rollout's version to `server_id` in `wave` (deadline: wave start +
    deadline_s)."""
    started_at = rollout.wave_started_at[wave]
    return DeploymentSpec(
        deployment_id=wave_deployment_id(rollout.rollout_id, wave, server_id),
        org_id=rollout.org_id,
        server_id=server_id,
        version_id=rollout.version_id,
        ai_module=rollout.ai_module,
        semantic_version=rollout.semantic_version,
        artifact_sha256=rollout.artifact_sha256,
        artifact_size_bytes=rollout.artifact_size_bytes,
        scheduled_at=started_at,
        deadline_at=started_at + timedelta(seconds=rollout.deadline_s),
        max_retries=rollout.max_retries,
        backoff_base_s=rollout.backoff_base_s,
        health=rollout.health,
        created_by=rollout.started_by,
        previous_version_id=previous_version_id,
        rollout_id=rollout.rollout_id,
        wave=wave,
        kind=rollout.kind,
        reason=rollout.reason,
    )


def rollback_deployment(
    rollout: Rollout,
    server_id: str,
    previous_version_id: str,
    previous_semantic_version: str,
    previous_artifact_sha256: str,
    previous_artifact_size_bytes: int,
    now: datetime,
) -> DeploymentSpec:
    """The deployment that puts `server_id` back on the version it ran before the rollout."""
    why = rollout.halt_reason if rollout.rollback_reason == "" else rollout.rollback_reason
    return DeploymentSpec(
        deployment_id=rollback_deployment_id(rollout.rollout_id, server_id),
        org_id=rollout.org_id,
        server_id=server_id,
        version_id=previous_version_id,
        ai_module=rollout.ai_module,
        semantic_version=previous_semantic_version,
        artifact_sha256=previous_artifact_sha256,
        artifact_size_bytes=previous_artifact_size_bytes,
        scheduled_at=now,
        deadline_at=now + timedelta(seconds=rollout.deadline_s),
        max_retries=rollout.max_retries,
        backoff_base_s=rollout.backoff_base_s,
        health=ROLLBACK_HEALTH,
        created_by=rollout.started_by,
        previous_version_id=rollout.version_id,
        rollout_id=rollout.rollout_id,
        wave=None,
        kind="rollback",
        reason=truncate_text(f"rollback of {rollout.describe()}: {why}"),
    )


def rollback_deployment_id(rollout_id: str, server_id: str) -> str:
    """The id of the deployment that rolls `server_id` back from rollout `rollout_id`."""
    return wave_deployment_id(rollout_id, 0, server_id, "rollback")
