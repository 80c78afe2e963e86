"""The tables of deploy-svc's views (one schema), and the channel on which they announce changes.

Two projections write here: DeployViews from deploy-svc's own log (servers, deployments, rollouts)
and KnownVersions from the registry's log (which versions exist, may be deployed, and where they
are current). Checkpoints are kept per projection, so both share the schema.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.db import checked_schema, create_schema_tables
from modelyard_events.notifications import notice_payload

_DEPLOY_DDL = (
    """CREATE TABLE IF NOT EXISTS {s}.edge_servers (
    org_id text NOT NULL, server_id text NOT NULL, environment text NOT NULL, platform text NOT NULL,
    edge_version text NOT NULL, hostname text NOT NULL, registered_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL, PRIMARY KEY (org_id, server_id))""",
    """CREATE INDEX IF NOT EXISTS edge_servers_by_environment
    ON {s}.edge_servers (org_id, environment, server_id)""",
    # What each server serves per module, as its agent last reported.
    """CREATE TABLE IF NOT EXISTS {s}.edge_running (
    org_id text NOT NULL, server_id text NOT NULL, ai_module text NOT NULL, version_id text NOT NULL,
    switched_at timestamptz NOT NULL, PRIMARY KEY (org_id, server_id, ai_module))""",
    "CREATE INDEX IF NOT EXISTS edge_running_by_version ON {s}.edge_running (org_id, ai_module, version_id)",
    """CREATE TABLE IF NOT EXISTS {s}.deployments (
    deployment_id text PRIMARY KEY, org_id text NOT NULL, server_id text NOT NULL,
    version_id text NOT NULL, ai_module text NOT NULL, semantic_version text NOT NULL,
    artifact_sha256 text NOT NULL, artifact_size_bytes bigint NOT NULL,
    status text NOT NULL, phase text NOT NULL, progress_percent int NOT NULL,
    scheduled_at timestamptz NOT NULL, started_at timestamptz, completed_at timestamptz,
    error_message text NOT NULL, retry_count int NOT NULL, max_retries int NOT NULL,
    backoff_base_s double precision NOT NULL, attempt int NOT NULL, retry_at timestamptz,
    deadline_at timestamptz NOT NULL, rollout_id text, wave int, kind text NOT NULL,
    previous_version_id text, health_limits jsonb NOT NULL, health jsonb, created_by text NOT NULL,
    reason text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    position bigint NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS deployments_by_server ON {s}.deployments (org_id, server_id, position DESC)",
    "CREATE INDEX IF NOT EXISTS deployments_by_rollout ON {s}.deployments (rollout_id, wave)",
    "CREATE INDEX IF NOT EXISTS deployments_by_version ON {s}.deployments (version_id)",
    """CREATE INDEX IF NOT EXISTS deployments_open ON {s}.deployments (status)
    WHERE status IN ('pending', 'downloading', 'installing') OR retry_at IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS {s}.rollouts (
    rollout_id text PRIMARY KEY, org_id text NOT NULL, version_id text NOT NULL, ai_module text NOT NULL,
    semantic_version text NOT NULL, environment text, state text NOT NULL, kind text NOT NULL,
    wave_sizes jsonb NOT NULL, failure_threshold double precision NOT NULL,
    rollback_on_failure boolean NOT NULL, scheduled_at timestamptz NOT NULL, deadline_s int NOT NULL,
    max_retries int NOT NULL, backoff_base_s double precision NOT NULL, health_limits jsonb NOT NULL,
    started_by text NOT NULL, reason text NOT NULL, halt_reason text NOT NULL, server_count int NOT NULL,
    current_wave int NOT NULL, release_rollback_of text, created_at timestamptz NOT NULL,
    finished_at timestamptz, updated_at timestamptz NOT NULL, position bigint NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS rollouts_by_org ON {s}.rollouts (org_id, position DESC)",
    """CREATE TABLE IF NOT EXISTS {s}.rollout_targets (
    rollout_id text NOT NULL, target_index int NOT NULL, server_id text NOT NULL, wave int NOT NULL,
    PRIMARY KEY (rollout_id, target_index))""",
    """CREATE TABLE IF NOT EXISTS {s}.rollout_waves (
    rollout_id text NOT NULL, wave int NOT NULL, started_at timestamptz, finished boolean NOT NULL,
    passed boolean NOT NULL, PRIMARY KEY (rollout_id, wave))""",
)

_REGISTRY_DDL = (
    """CREATE TABLE IF NOT EXISTS {s}.known_versions (
    version_id text PRIMARY KEY, org_id text NOT NULL, ai_module text NOT NULL,
    semantic_version text NOT NULL, status text NOT NULL, environments text[] NOT NULL,
    artifact_sha256 text NOT NULL, artifact_size_bytes bigint NOT NULL, min_edge_version text NOT NULL,
    supported_platforms text[] NOT NULL, updated_at timestamptz NOT NULL,
    released_to text[] NOT NULL DEFAULT CAST(ARRAY[] AS text[]))""",
    "CREATE INDEX IF NOT EXISTS known_versions_by_module ON {s}.known_versions (org_id, ai_module)",
)


async def create_deploy_tables(conn: AsyncConnection, schema: str) -> None:
    """Create the schema and DeployViews' tables if missing."""
    await create_schema_tables(conn, schema, _DEPLOY_DDL)


async def create_registry_tables(conn: AsyncConnection, schema: str) -> None:
    """Create the schema and KnownVersions' table if missing."""
    await create_schema_tables(conn, schema, _REGISTRY_DDL)


def changes_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which the views announce what changed (streams, conductor)."""
    return f"{checked_schema(schema)}_changed"


def rollout_key(rollout_id: str) -> str:
    """The notice key of a rollout's changes (only whole-channel subscribers, the conductor, see it)."""
    return f"rollout:{rollout_id}"


def version_key(version_id: str) -> str:
    """The notice key of a registry version's changes."""
    return f"version:{version_id}"


async def announce(conn: AsyncConnection, schema: str, changes: list[tuple[str, str]]) -> None:
    """pg_notify (key, kind) pairs in the caller's transaction, so each is sent only on commit."""
    if not changes:
        return
    await conn.execute(
        text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"),
        {
            "channel": changes_channel(schema),
            "payloads": [notice_payload(key, kind) for key, kind in dict.fromkeys(changes)],
        },
    )
