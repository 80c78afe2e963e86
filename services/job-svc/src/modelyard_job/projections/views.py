"""JobViews: the one projection job-svc runs over its own log and the trainers' log.

Job status, queue, per-epoch metrics, job timelines and trainers are updated in the runner's
transaction (exactly once per event), and each change is announced with pg_notify on commit, so
WatchJob streams and the dispatcher on any replica wake without polling.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.jobs import JOB_STREAM, JobQueued
from modelyard_events.schemas.training import RUN_STREAM, TrainingReport
from modelyard_job.projections.job_status import apply_job_event
from modelyard_job.projections.tables import changes_channel, create_view_tables
from modelyard_job.projections.timeline import record_in_timeline
from modelyard_job.projections.trainers import apply_trainer_event
from modelyard_job.projections.training_reports import apply_training_report

JOB_SOURCE = "job"
TRAINER_SOURCE = "trainer"


@dataclass
class JobViews:
    """The read models of job-svc in `schema` (a Projection for ProjectionRunner and replay)."""

    schema: str
    name: str = "job_views"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create every read-model table."""
        await create_view_tables(conn, self.schema)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Route one event of either log to the tables it changes."""
        if envelope.stream_type == JOB_STREAM:
            await apply_job_event(self.schema, event, envelope, conn)
            await record_in_timeline(self.schema, JOB_SOURCE, envelope.stream_id, event, envelope, conn)
            kind = "queued" if isinstance(event, JobQueued) else "state"
            await self._announce(conn, envelope.stream_id, kind)
        elif envelope.stream_type == RUN_STREAM and isinstance(event, TrainingReport):
            changed = await apply_training_report(self.schema, event, envelope, conn)
            await record_in_timeline(self.schema, TRAINER_SOURCE, event.job_id, event, envelope, conn)
            await self._announce(conn, event.job_id, changed or "report")
        elif await apply_trainer_event(self.schema, event, envelope, conn):
            await self._announce(conn, "", "trainer")

    async def _announce(self, conn: AsyncConnection, job_id: str, kind: str) -> None:
        payload = json.dumps({"job_id": job_id, "kind": kind})
        await conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": changes_channel(self.schema), "payload": payload},
        )
