"""DeployViews: edge servers, deployments and rollouts as rows, from deploy-svc's own log.

Applied exactly once per event in the runner's transaction; each change is announced with
pg_notify in that transaction (keyed by the server's stream id, or `rollout:<id>`), so a server's
assignment stream and the conductor wake when, and only when, the change is visible. Commands
always decide on aggregates loaded from the store; these rows only say where to look and what to
show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_deploy.projections.rollout_rows import apply_rollout_event
from modelyard_deploy.projections.tables import announce, create_deploy_tables, rollout_key
from modelyard_events.db import checked_schema
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.deploy import (
    DeploymentCancelled,
    DeploymentCreated,
    DeploymentProgressed,
    DeploymentRetried,
    EdgeModelSwitched,
    EdgeServerRegistered,
    edge_server_stream_id,
)

DEPLOY_SOURCE = "deploy"
_ACTIVE = ("downloading", "installing")
PROGRESS = "progress"  # the notice kind of a deployment that only advanced within its install


@dataclass
class DeployViews:
    """deploy-svc's read model in `schema` (a Projection for ProjectionRunner and replay)."""

    schema: str
    name: str = "deploy_views"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create the schema and every table of this projection if missing."""
        await create_deploy_tables(conn, self.schema)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Fold one event into the rows; announce what changed."""
        s = checked_schema(self.schema)
        changes: list[tuple[str, str]] = []
        if isinstance(event, EdgeServerRegistered):
            await _register(s, event, envelope, conn)
            changes.append((edge_server_stream_id(event.org_id, event.server_id), "server"))
        elif isinstance(event, EdgeModelSwitched):
            await _switch(s, event, envelope, conn)
            changes.append((edge_server_stream_id(event.org_id, event.server_id), "running"))
        elif isinstance(event, DeploymentCreated):
            await _create_deployment(s, event, envelope, conn)
            changes.append((edge_server_stream_id(event.org_id, event.server_id), "deployment"))
        elif isinstance(event, DeploymentProgressed | DeploymentRetried | DeploymentCancelled):
            changes += await _follow_deployment(s, event, envelope, conn)
        else:
            changes += await apply_rollout_event(s, event, envelope, conn)
        await announce(conn, self.schema, changes)


async def _register(
    s: str, event: EdgeServerRegistered, envelope: EventEnvelope, conn: AsyncConnection
) -> None:
    await conn.execute(
        text(
            f"""INSERT INTO {s}.edge_servers VALUES (:org, :server, :env, :platform, :edge, :host, :at, :at)
            ON CONFLICT (org_id, server_id) DO UPDATE SET environment = :env, platform = :platform,
            edge_version = :edge, hostname = :host, updated_at = :at"""
        ),
        {
            "org": event.org_id,
            "server": event.server_id,
            "env": event.environment,
            "platform": event.platform,
            "edge": event.edge_version,
            "host": event.hostname,
            "at": envelope.occurred_at,
        },
    )


async def _switch(s: str, event: EdgeModelSwitched, envelope: EventEnvelope, conn: AsyncConnection) -> None:
    keys = {"org": event.org_id, "server": event.server_id, "module": event.ai_module}
    if event.version_id is None:
        await conn.execute(
            text(
                f"DELETE FROM {s}.edge_running WHERE org_id = :org AND server_id = :server "
                "AND ai_module = :module"
            ),
            keys,
        )
        return
    await conn.execute(
        text(
            f"""INSERT INTO {s}.edge_running VALUES (:org, :server, :module, :version, :at)
            ON CONFLICT (org_id, server_id, ai_module) DO UPDATE SET version_id = :version,
            switched_at = :at"""
        ),
        {**keys, "version": event.version_id, "at": event.reported_at},
    )


async def _create_deployment(
    s: str, event: DeploymentCreated, envelope: EventEnvelope, conn: AsyncConnection
) -> None:
    await conn.execute(
        text(
            f"""INSERT INTO {s}.deployments VALUES (:id, :org, :server, :version, :module, :semver,
            :sha, :size, 'pending', 'pending', 0, :scheduled, NULL, NULL, '', 0, :max_retries,
            :backoff, 1, NULL, :deadline, :rollout, :wave, :kind, :previous, CAST(:limits AS jsonb),
            NULL, :by, :reason, :at, :at, :pos) ON CONFLICT (deployment_id) DO NOTHING"""
        ),
        {
            "id": event.deployment_id,
            "org": event.org_id,
            "server": event.server_id,
            "version": event.version_id,
            "module": event.ai_module,
            "semver": event.semantic_version,
            "sha": event.artifact_sha256,
            "size": event.artifact_size_bytes,
            "scheduled": event.scheduled_at,
            "max_retries": event.max_retries,
            "backoff": event.backoff_base_s,
            "deadline": event.deadline_at,
            "rollout": event.rollout_id,
            "wave": event.wave,
            "kind": event.kind,
            "previous": event.previous_version_id,
            "limits": event.health.model_dump_json(),
            "by": event.created_by,
            "reason": event.reason,
            "at": envelope.occurred_at,
            "pos": envelope.position,
        },
    )


async def _follow_deployment(
    s: str,
    event: DeploymentProgressed | DeploymentRetried | DeploymentCancelled,
    envelope: EventEnvelope,
    conn: AsyncConnection,
) -> list[tuple[str, str]]:
    sql, params = _deployment_update(event)
    row = (
        await conn.execute(
            text(
                f"UPDATE {s}.deployments SET {sql}, updated_at = :at WHERE deployment_id = :id "
                "RETURNING org_id, server_id, rollout_id"
            ),
            {**params, "id": event.deployment_id, "at": envelope.occurred_at},
        )
    ).first()
    if row is None:
        return []
    # An agent's step within an install changes nothing anyone waits on (assignments, waves).
    moving = isinstance(event, DeploymentProgressed) and event.status in _ACTIVE
    kind = PROGRESS if moving else "deployment"
    changes = [(edge_server_stream_id(str(row[0]), str(row[1])), kind)]
    if row[2] is not None:
        changes.append((rollout_key(str(row[2])), kind))
    return changes


def _deployment_update(
    event: DeploymentProgressed | DeploymentRetried | DeploymentCancelled,
) -> tuple[str, dict[str, Any]]:
    """The SET clause and its parameters for one deployment event (`:at` is the event's time)."""
    if isinstance(event, DeploymentRetried):
        return (
            "status = 'pending', phase = 'pending', progress_percent = 0, attempt = :attempt, "
            "retry_count = :retries, retry_at = NULL, deadline_at = :deadline, completed_at = NULL",
            {"attempt": event.attempt, "retries": event.retry_count, "deadline": event.deadline_at},
        )
    if isinstance(event, DeploymentCancelled):
        return (
            "status = 'cancelled', phase = 'cancelled', retry_at = NULL, completed_at = :at, "
            "error_message = :reason",
            {"reason": event.reason},
        )
    return (
        "status = :status, phase = :phase, progress_percent = :percent, attempt = :attempt, "
        "retry_at = :retry_at, error_message = CASE WHEN :status = 'completed' THEN '' "
        "WHEN :error = '' THEN error_message ELSE :error END, "
        "health = COALESCE(CAST(:health AS jsonb), health), "
        "started_at = CASE WHEN :status IN ('downloading', 'installing') "
        "THEN COALESCE(started_at, :at) ELSE started_at END, "
        "completed_at = CASE WHEN :status IN ('completed', 'failed', 'cancelled') THEN :at ELSE NULL END",
        {
            "status": event.status,
            "phase": event.phase,
            "percent": event.progress_percent,
            "attempt": event.attempt,
            "retry_at": event.retry_at,
            "error": event.error_message,
            "health": None if event.health is None else json.dumps(event.health.model_dump(mode="json")),
        },
    )
