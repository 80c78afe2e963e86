"""Registry events → the jobs they concern: the version a training job became, and the registry's
side of an evaluation run, in the job's timeline.

The registry's log is another source: its event about a job may be applied before job-svc's own
JobCreated (a rebuild reads the sources one after the other), so the version a job became is kept in
`job_outputs` too, and a job row inserted later takes it from there.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.registry import (
    ModelEvaluated,
    ModelEvaluationFailed,
    ModelEvaluationRequested,
    ModelVersionRegistered,
)

_ABOUT_EVALUATION_JOBS = (ModelEvaluationRequested, ModelEvaluated, ModelEvaluationFailed)


def job_of(event: DomainEvent) -> str | None:
    """The job a registry event is about (the training job a version came from, the evaluation run)."""
    if isinstance(event, ModelVersionRegistered):
        return event.training_job_id
    if isinstance(event, _ABOUT_EVALUATION_JOBS):
        return event.job_id
    return None


async def apply_registry_event(
    schema: str, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection
) -> None:
    """Record the version a training job became (idempotent; the first registration stands)."""
    if not isinstance(event, ModelVersionRegistered):
        return
    params = {"job_id": event.training_job_id, "version_id": event.version_id}
    await conn.execute(
        text(
            f"INSERT INTO {schema}.job_outputs (job_id, version_id) VALUES (:job_id, :version_id) "
            "ON CONFLICT (job_id) DO NOTHING"
        ),
        params,
    )
    await conn.execute(
        text(
            f"UPDATE {schema}.jobs SET output_version_id = "
            f"(SELECT version_id FROM {schema}.job_outputs WHERE job_id = :job_id) WHERE job_id = :job_id"
        ),
        {"job_id": event.training_job_id},
    )
