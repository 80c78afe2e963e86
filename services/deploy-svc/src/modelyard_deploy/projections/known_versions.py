"""KnownVersions: deploy-svc's view of the registry's versions, from the registry's own log.

Enough to decide a deployment without calling registry-svc: the status (only released, never
deprecated, versions deploy), the environments where a version is the current release (one per
module and environment) and every environment it was ever released to (an earlier release stays
deployable there: the seed's rollback procedure deploys the previous version), the artifact's hash
and size, and what an edge server must be to run it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_deploy.projections.tables import announce, create_registry_tables, version_key
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

REGISTRY_SOURCE = "registry"
_STATUS_AFTER: dict[type[DomainEvent], str] = {
    ModelEvaluationRequested: "testing",
    ModelEvaluationFailed: "draft",
    ModelApproved: "approved",
    ModelRejected: "draft",
}


@dataclass
class KnownVersions:
    """The registry's versions as deploy-svc needs them, in `schema` (a Projection)."""

    schema: str
    name: str = "deploy_known_versions"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create the schema and the known_versions table if missing."""
        await create_registry_tables(conn, self.schema)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Follow one registry event; announce the version that changed."""
        s = checked_schema(self.schema)
        at = envelope.occurred_at
        if isinstance(event, ModelVersionRegistered):
            await conn.execute(
                text(
                    f"""INSERT INTO {s}.known_versions VALUES (:v, :org, :module, :semver, 'draft',
                    CAST(ARRAY[] AS text[]), :sha, :size, :min_edge, CAST(:platforms AS text[]), :at)
                    ON CONFLICT (version_id) DO NOTHING"""
                ),
                {
                    "v": event.version_id,
                    "org": event.org_id,
                    "module": event.ai_module,
                    "semver": event.semantic_version,
                    "sha": event.artifact_sha256,
                    "size": event.artifact_size_bytes,
                    "min_edge": event.min_edge_version,
                    "platforms": list(event.supported_platforms),
                    "at": at,
                },
            )
        elif isinstance(event, ModelVersionRenumbered):
            number: dict[str, object] = {"semver": event.semantic_version}
            await _set(s, event.version_id, "semantic_version = :semver", number, at, conn)
        elif isinstance(event, ModelReleased):
            await _release(s, event, at, conn)
        elif isinstance(event, ModelDeprecated):
            await _set(
                s,
                event.version_id,
                "status = 'deprecated', environments = ARRAY(SELECT e FROM unnest(environments) e "
                "WHERE e <> ALL(CAST(:envs AS text[])))",
                {"envs": list(event.environments)},
                at,
                conn,
            )
        elif isinstance(
            event, ModelEvaluationRequested | ModelEvaluationFailed | ModelApproved | ModelRejected
        ):
            status: dict[str, object] = {"status": _STATUS_AFTER[type(event)]}
            await _set(s, event.version_id, "status = :status", status, at, conn)
        else:
            return
        await announce(conn, self.schema, [(version_key(event.version_id), "version")])


async def _release(s: str, event: ModelReleased, at: object, conn: AsyncConnection) -> None:
    """The version becomes current in the environment; whichever was current there stops being."""
    await conn.execute(
        text(
            f"""UPDATE {s}.known_versions SET environments = array_remove(environments, :env),
            updated_at = :at WHERE org_id = :org AND ai_module = :module AND version_id <> :v
            AND :env = ANY(environments)"""
        ),
        {
            "env": event.environment,
            "org": event.org_id,
            "module": event.ai_module,
            "v": event.version_id,
            "at": at,
        },
    )
    await _set(
        s,
        event.version_id,
        "status = 'released', environments = CASE WHEN :env = ANY(environments) THEN environments "
        "ELSE array_append(environments, :env) END, released_to = CASE WHEN :env = ANY(released_to) "
        "THEN released_to ELSE array_append(released_to, :env) END",
        {"env": event.environment},
        at,
        conn,
    )


async def _set(
    s: str, version_id: str, assignments: str, params: dict[str, object], at: object, conn: AsyncConnection
) -> None:
    await conn.execute(
        text(f"UPDATE {s}.known_versions SET {assignments}, updated_at = :at WHERE version_id = :v"),
        {**params, "v": version_id, "at": at},
    )
