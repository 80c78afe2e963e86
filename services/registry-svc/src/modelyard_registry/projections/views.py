"""RegistryViews: which module each version is in, its number and status, for lookups and listing.

Fed from registry-svc's own log (exactly once per event, in the runner's transaction). The full
state of a version is always read from its module's stream, so a command never decides on a stale
view: the view only finds the stream and pages through versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.db import checked_schema
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.registry import (
    ModelApproved,
    ModelDeprecated,
    ModelEvaluationFailed,
    ModelEvaluationRequested,
    ModelRejected,
    ModelReleased,
    ModelVersionRegistered,
    ModelVersionRenumbered,
)
from modelyard_registry.domain.semver import SemVer

REGISTRY_SOURCE = "registry"
_STATUS_AFTER: dict[type[DomainEvent], str] = {
    ModelEvaluationRequested: "testing",
    ModelEvaluationFailed: "draft",
    ModelApproved: "approved",
    ModelRejected: "draft",
    ModelReleased: "released",
    ModelDeprecated: "deprecated",
}


@dataclass
class RegistryViews:
    """The registry's read model in `schema` (a Projection for ProjectionRunner and replay)."""

    schema: str
    name: str = "registry_views"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create the schema and the versions table if missing."""
        s = checked_schema(self.schema)
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s}"))
        await conn.execute(
            text(
                f"""CREATE TABLE IF NOT EXISTS {s}.model_versions (
                version_id text PRIMARY KEY, org_id text NOT NULL, ai_module text NOT NULL,
                major int NOT NULL, minor int NOT NULL, patch int NOT NULL, status text NOT NULL,
                training_job_id text NOT NULL, registered_at timestamptz NOT NULL,
                updated_at timestamptz NOT NULL, position bigint NOT NULL)"""
            )
        )
        await conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS model_versions_by_module ON {s}.model_versions "
                "(org_id, ai_module, major DESC, minor DESC, patch DESC)"
            )
        )
        await conn.execute(
            text(f"CREATE INDEX IF NOT EXISTS model_versions_by_job ON {s}.model_versions (training_job_id)")
        )

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Insert a registered version; follow its number and status."""
        s = checked_schema(self.schema)
        if isinstance(event, ModelVersionRegistered):
            number = SemVer.parse(event.semantic_version)
            await conn.execute(
                text(
                    f"""INSERT INTO {s}.model_versions VALUES (:v, :org, :module, :major, :minor, :patch,
                    'draft', :job, :at, :at, :pos) ON CONFLICT (version_id) DO NOTHING"""
                ),
                {
                    "v": event.version_id,
                    "org": event.org_id,
                    "module": event.ai_module,
                    "major": number.major,
                    "minor": number.minor,
                    "patch": number.patch,
                    "job": event.training_job_id,
                    "at": envelope.occurred_at,
                    "pos": envelope.position,
                },
            )
        elif isinstance(event, ModelVersionRenumbered):
            number = SemVer.parse(event.semantic_version)
            await conn.execute(
                text(
                    f"UPDATE {s}.model_versions SET major = :major, minor = :minor, patch = :patch, "
                    "updated_at = :at WHERE version_id = :v"
                ),
                {
                    "v": event.version_id,
                    "major": number.major,
                    "minor": number.minor,
                    "patch": number.patch,
                    "at": envelope.occurred_at,
                },
            )
        elif type(event) in _STATUS_AFTER and hasattr(event, "version_id"):
            await conn.execute(
                text(
                    f"UPDATE {s}.model_versions SET status = :status, updated_at = :at WHERE version_id = :v"
                ),
                {
                    "v": event.version_id,
                    "status": _STATUS_AFTER[type(event)],
                    "at": envelope.occurred_at,
                },
            )
