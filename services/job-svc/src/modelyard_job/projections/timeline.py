"""Every event about a job, from both logs, as stored envelopes (auditors can check their hashes).

Throttled `TrainingProgressed` reports are left out: they would drown the decisions, and the
trainer's own log keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.db import rows_json
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.training import TrainingProgressed
from modelyard_events.wire import encode_envelope

# (job_id, event, envelope)
TimelineEntry = tuple[str, DomainEvent, EventEnvelope]

_INSERT = """
INSERT INTO {s}.job_timeline
SELECT :source, * FROM json_to_recordset(CAST(:rows AS json))
    AS r(position int8, job_id text, type text, occurred_at timestamptz, envelope text)
ON CONFLICT DO NOTHING"""


async def record_in_timeline(
    schema: str, source: str, entries: Sequence[TimelineEntry], conn: AsyncConnection
) -> None:
    """Keep the envelopes in their jobs' timelines (idempotent per source position)."""
    kept = [
        (job_id, envelope) for job_id, event, envelope in entries if not isinstance(event, TrainingProgressed)
    ]
    if not kept:
        return
    rows = [
        {
            "position": envelope.position,
            "job_id": job_id,
            "type": envelope.type,
            "occurred_at": envelope.occurred_at.isoformat(),
            "envelope": encode_envelope(envelope).decode(),
        }
        for job_id, envelope in kept
    ]
    await conn.execute(text(_INSERT.format(s=schema)), {"source": source, "rows": rows_json(rows)})
