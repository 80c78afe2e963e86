"""Every event about a job, from both logs, as stored envelopes (auditors can check their hashes).

Throttled `TrainingProgressed` reports are left out: they would drown the decisions, and the
trainer's own log keeps them.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.training import TrainingProgressed
from modelyard_events.wire import encode_envelope


async def record_in_timeline(
    schema: str, source: str, job_id: str, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection
) -> None:
    """Keep `envelope` in the job's timeline (idempotent per source position)."""
    if isinstance(event, TrainingProgressed):
        return
    await conn.execute(
        text(
            f"INSERT INTO {schema}.job_timeline VALUES (:source, :position, :job_id, :type, :at, :envelope) "
            "ON CONFLICT DO NOTHING"
        ),
        {
            "source": source,
            "position": envelope.position,
            "job_id": job_id,
            "type": envelope.type,
            "at": envelope.occurred_at,
            "envelope": encode_envelope(envelope).decode(),
        },
    )
