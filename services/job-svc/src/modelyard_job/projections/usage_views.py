"""UsageViews: each organization's usage of what its plan limits (issue 14 item 6).

Fed by its own ProjectionRunner over job-svc's, dataset-svc's and registry-svc's logs; its tables
live in job-svc's views schema, its checkpoint per source in the same transaction as the rows. The
row logic (what counts) is in `usage_rows`; this module only writes and reads the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.consumer.projection import Decoded
from modelyard_events.db import checked_schema, create_schema_tables
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.datasets import DATASET_EVENTS
from modelyard_events.schemas.jobs import JOB_EVENTS
from modelyard_events.schemas.registry import REGISTRY_EVENTS
from modelyard_job.projections.usage_rows import (
    JobCounted,
    ModelActivity,
    StorageTotal,
    Usage,
    UsageChange,
    usage_change,
)

USAGE_EVENTS = EventRegistry.combined(JOB_EVENTS, DATASET_EVENTS, REGISTRY_EVENTS)

_DDL = (
    """CREATE TABLE IF NOT EXISTS {s}.usage_jobs (
        org_id text NOT NULL, month text NOT NULL, job_id text NOT NULL,
        PRIMARY KEY (org_id, month, job_id))""",
    """CREATE TABLE IF NOT EXISTS {s}.usage_storage (
        org_id text PRIMARY KEY, dataset_bytes bigint NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {s}.usage_models (
        org_id text NOT NULL, ai_module text NOT NULL, version_id text NOT NULL,
        PRIMARY KEY (org_id, ai_module, version_id))""",
)
_COUNT_JOB = "INSERT INTO {s}.usage_jobs VALUES (:org_id, :month, :job_id) ON CONFLICT DO NOTHING"
_SET_STORAGE = """
INSERT INTO {s}.usage_storage VALUES (:org_id, :total_bytes)
ON CONFLICT (org_id) DO UPDATE SET dataset_bytes = EXCLUDED.dataset_bytes"""
_ACTIVATE = "INSERT INTO {s}.usage_models VALUES (:org_id, :ai_module, :version_id) ON CONFLICT DO NOTHING"
_DEACTIVATE = """
DELETE FROM {s}.usage_models WHERE org_id = :org_id AND ai_module = :ai_module AND version_id = :version_id"""


@dataclass
class UsageViews:
    """Usage rows in `schema` (a BatchProjection for ProjectionRunner)."""

    schema: str
    name: str = "usage_views"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create the usage tables if missing."""
        await create_schema_tables(conn, self.schema, _DDL)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """One event's change, if usage counts it."""
        change = usage_change(event)
        if change is not None:
            await self._write(change, conn)

    async def apply_batch(self, events: Sequence[Decoded], conn: AsyncConnection) -> None:
        """The few counted events of a run, in log order (the storage total and a version's activity
        depend on it); most events of these logs count nothing and cost no statement."""
        for event, _ in events:
            change = usage_change(event)
            if change is not None:
                await self._write(change, conn)

    async def _write(self, change: UsageChange, conn: AsyncConnection) -> None:
        s = self.schema
        if isinstance(change, JobCounted):
            params = {"org_id": change.org_id, "month": change.month, "job_id": change.job_id}
            await conn.execute(text(_COUNT_JOB.format(s=s)), params)
        elif isinstance(change, StorageTotal):
            params2 = {"org_id": change.org_id, "total_bytes": change.total_bytes}
            await conn.execute(text(_SET_STORAGE.format(s=s)), params2)
        elif isinstance(change, ModelActivity):
            statement = _ACTIVATE if change.active else _DEACTIVATE
            params = {"org_id": change.org_id, "ai_module": change.ai_module, "version_id": change.version_id}
            await conn.execute(text(statement.format(s=s)), params)


async def read_usage(conn: AsyncConnection, schema: str, org_id: str, month: str) -> Usage:
    """The organization's usage in `month` (YYYY-MM) as the tables hold it (zeros for one never seen)."""
    s = checked_schema(schema)
    jobs = await conn.scalar(
        text(f"SELECT count(*) FROM {s}.usage_jobs WHERE org_id = :o AND month = :m"),
        {"o": org_id, "m": month},
    )
    stored = await conn.scalar(
        text(f"SELECT dataset_bytes FROM {s}.usage_storage WHERE org_id = :o"), {"o": org_id}
    )
    rows = await conn.execute(
        text(
            f"SELECT ai_module, count(*) AS active FROM {s}.usage_models WHERE org_id = :o "
            "GROUP BY ai_module ORDER BY ai_module"
        ),
        {"o": org_id},
    )
    return Usage(int(jobs or 0), int(stored or 0), {str(r.ai_module): int(r.active) for r in rows})
