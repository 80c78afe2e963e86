"""Trainer reports that arrive before the dispatch they report on, kept until it is applied.

The views apply job-svc's log and the trainers' log each as it comes, so a run's first reports can
reach them before the `JobDispatched` they follow (the trainers' relay ran ahead of job-svc's, or
job-svc was restarting). What such a report does to the job's row depends on its dispatch (known,
and whether it had ended when the report was recorded): applied first, it would find no dispatch,
the dispatch would then reset the row, and a rebuild (which merges the logs in the order their
events were recorded) would differ from the live views, as the fault campaign found. So a report
about a dispatch the views have not seen waits here, and is applied right after that dispatch is.

`dispatches` holds every dispatch applied (views made before it are backfilled with the dispatches
current in their rows: those are the ones whose reports may still come), and when job-svc's log
ended it (`ended_at`: completed, failed, paused, cancelled, lease expired). A report moves the job's
row only when it was recorded before its dispatch ended: the rule a rebuild follows by merging the
logs in recorded order, applied here whichever log comes first (a trainer that lost its lease and
keeps talking moves nothing; a report recorded before the job completed still counts when it reaches
the views after the completion).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.consumer.projection import Decoded
from modelyard_events.db import rows_json
from modelyard_events.envelope import EventEnvelope
from modelyard_events.schemas.jobs import JobDispatched
from modelyard_events.schemas.training import TRAINER_EVENTS, TrainingReport
from modelyard_events.wire import decode_envelope, encode_envelope

DDL = (
    "CREATE TABLE IF NOT EXISTS {s}.dispatches (dispatch_id text PRIMARY KEY, job_id text NOT NULL)",
    "ALTER TABLE {s}.dispatches ADD COLUMN IF NOT EXISTS ended_at timestamptz",
    """INSERT INTO {s}.dispatches SELECT dispatch_id, job_id FROM {s}.jobs
        WHERE dispatch_id IS NOT NULL ON CONFLICT DO NOTHING""",
    """CREATE TABLE IF NOT EXISTS {s}.early_reports (
        position bigint PRIMARY KEY, dispatch_id text NOT NULL, envelope text NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS early_reports_by_dispatch ON {s}.early_reports (dispatch_id, position)",
)

_KEEP = """
INSERT INTO {s}.early_reports
SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(position int8, dispatch_id text, envelope text)
ON CONFLICT DO NOTHING"""


async def dispatch_ends(
    schema: str, dispatch_ids: Iterable[str], conn: AsyncConnection
) -> dict[str, datetime | None]:
    """Those of `dispatch_ids` the views have applied the `JobDispatched` of, with when each ended
    (None: still current)."""
    rows = await conn.execute(
        text(f"SELECT dispatch_id, ended_at FROM {schema}.dispatches WHERE dispatch_id = ANY(:ids)"),
        {"ids": list(set(dispatch_ids))},
    )
    return {row.dispatch_id: row.ended_at for row in rows}


def recorded_before_end(envelope: EventEnvelope, ended_at: datetime | None) -> bool:
    """Whether a report was recorded while its dispatch was current (ties: the end came first, as a
    rebuild that lists job-svc's log first orders them)."""
    return ended_at is None or envelope.occurred_at < ended_at


async def end_current_dispatch(schema: str, job_id: str, at: datetime, conn: AsyncConnection) -> None:
    """The job's current dispatch ended at `at` (called before its row forgets which it was)."""
    await conn.execute(
        text(
            f"UPDATE {schema}.dispatches AS d SET ended_at = :at FROM {schema}.jobs AS j "
            "WHERE j.job_id = :job_id AND d.dispatch_id = j.dispatch_id AND d.ended_at IS NULL"
        ),
        {"job_id": job_id, "at": at},
    )


async def keep_early(
    schema: str, reports: Sequence[tuple[TrainingReport, EventEnvelope]], conn: AsyncConnection
) -> None:
    """Keep reports whose dispatch is not applied yet (idempotent per position in the trainers' log)."""
    if not reports:
        return
    rows = [
        {
            "position": envelope.position,
            "dispatch_id": report.dispatch_id,
            "envelope": encode_envelope(envelope).decode(),
        }
        for report, envelope in reports
    ]
    await conn.execute(text(_KEEP.format(s=schema)), {"rows": rows_json(rows)})


async def note_dispatched(schema: str, event: JobDispatched, conn: AsyncConnection) -> list[Decoded]:
    """Record the dispatch as applied; the reports that came before it, in the trainers' order."""
    await conn.execute(
        text(f"INSERT INTO {schema}.dispatches VALUES (:dispatch_id, :job_id) ON CONFLICT DO NOTHING"),
        {"dispatch_id": event.dispatch_id, "job_id": event.job_id},
    )
    rows = await conn.execute(
        text(f"DELETE FROM {schema}.early_reports WHERE dispatch_id = :d RETURNING position, envelope"),
        {"d": event.dispatch_id},
    )
    envelopes = [decode_envelope(row.envelope.encode()) for row in sorted(rows, key=lambda r: r.position)]
    return [(TRAINER_EVENTS.decode(envelope), envelope) for envelope in envelopes]
