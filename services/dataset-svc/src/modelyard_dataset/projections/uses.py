"""`dataset_version_uses`: which job or model used which published version (from job-svc's and the
registry's logs, applied by the uses consumer, consumers.py), and the reads a deletion needs.

Rebuilt by replay like every read model: its rows follow from the two source logs alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_dataset.domain.uses import VersionUser, uses_in
from modelyard_events.db import checked_schema
from modelyard_events.envelope import DomainEvent, EventEnvelope


@dataclass
class VersionUses:
    """The uses table in `schema` (a Projection for ProjectionRunner and replay)."""

    schema: str
    name: str = "dataset_version_uses"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create the schema and the table if missing."""
        s = checked_schema(self.schema)
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s}"))
        await conn.execute(
            text(
                f"""CREATE TABLE IF NOT EXISTS {s}.dataset_version_uses (
                dataset_id text NOT NULL, version int NOT NULL, user_kind text NOT NULL,
                user_id text NOT NULL, org_id text NOT NULL, used_at timestamptz NOT NULL,
                PRIMARY KEY (dataset_id, version, user_kind, user_id))"""
            )
        )

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Record the use an event names (a job created on a version, a model registered from one)."""
        for use in uses_in(event):
            await conn.execute(
                text(
                    f"INSERT INTO {checked_schema(self.schema)}.dataset_version_uses VALUES "
                    "(:d, :v, :kind, :user, :org, :at) ON CONFLICT (dataset_id, version, user_kind, user_id) "
                    # An evaluation job is named by the registry's request and by job-svc's JobCreated,
                    # whichever log is read first: the earlier time wins, so every rebuild agrees.
                    "DO UPDATE SET used_at = LEAST(dataset_version_uses.used_at, EXCLUDED.used_at)"
                ),
                {
                    "d": use.dataset_id,
                    "v": use.version,
                    "kind": use.user.kind,
                    "user": use.user.user_id,
                    "org": use.org_id,
                    "at": envelope.occurred_at,
                },
            )


class DeletionReads:
    """What a deletion reads from the views: the versions' uses, and whether other samples hold a file."""

    def __init__(self, engine: AsyncEngine, schema: str) -> None:
        self._engine, self._schema = engine, checked_schema(schema)

    async def uses(self, dataset_id: str) -> dict[int, list[VersionUser]]:
        """Per published version of the dataset, the jobs and models that used it (used ones only)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    f"SELECT version, user_kind, user_id FROM {self._schema}.dataset_version_uses "
                    "WHERE dataset_id = :d ORDER BY version, user_kind, user_id"
                ),
                {"d": dataset_id},
            )
            found: dict[int, list[VersionUser]] = defaultdict(list)
            for row in rows:
                found[row.version].append(VersionUser(row.user_kind, row.user_id))
        return dict(found)

    async def held_elsewhere(
        self, sha256s: Sequence[str], dataset_id: str, sample_ids: Sequence[str]
    ) -> set[str]:
        """The files (by SHA-256) another dataset's sample, or a sample of this one not being deleted,
        still holds: blobs are content-addressed and shared, so those files stay."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(
                    f"SELECT DISTINCT sha256 FROM {self._schema}.samples WHERE sha256 = ANY(:shas) "
                    "AND NOT (dataset_id = :d AND (cardinality(CAST(:ids AS text[])) = 0 "
                    "OR sample_id = ANY(CAST(:ids AS text[]))))"
                ),
                {"shas": list(sha256s), "d": dataset_id, "ids": list(sample_ids)},
            )
            return {row.sha256 for row in rows}
