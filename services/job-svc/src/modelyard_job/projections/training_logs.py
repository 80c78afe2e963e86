"""Trainer log lines → `job_logs`, and the reads of one job's lines (GetJobLogs, FollowJobLogs).

Every line is kept as the trainers' log has it. A line counts for a job only when job-svc dispatched
that run of that job to that trainer: a `JobDispatched` in the job's timeline names the dispatch, its
attempt and its trainer. Trainer-svc lets a trainer open only the stream of a dispatch made to it
(it asks job-svc first); this check is for what a compromised trainer-svc could write. The reads
start from the job's dispatches and go by dispatch id, so such lines neither get into another job's
logs nor slow its reads.
The check is made when reading, so it holds whichever of the two logs the views apply first.

`cursor` = the event's position in the trainers' log × `CURSOR_SPAN` + the line's index in it: it
orders the lines as the trainers wrote them, and is the same in a replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.db import rows_json
from modelyard_events.envelope import EventEnvelope
from modelyard_events.schemas.training import MAX_LOG_LINES_PER_EVENT, TrainingLogged

CURSOR_SPAN = 32
assert MAX_LOG_LINES_PER_EVENT <= CURSOR_SPAN  # every line of an event gets a cursor of its own

_INSERT = """
INSERT INTO {s}.job_logs
SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(cursor int8, job_id text, attempt int,
    dispatch_id text, trainer_id text, at timestamptz, level text, logger text, message text)
ON CONFLICT DO NOTHING"""

# The job's dispatches first (its own timeline), then each one's lines through the index by dispatch.
_SELECT = """
WITH dispatched AS (
    SELECT d ->> 'dispatch_id' AS dispatch_id, d ->> 'trainer_id' AS trainer_id,
        CAST(d ->> 'attempt' AS int) AS attempt
    FROM (SELECT CAST(envelope AS jsonb) -> 'data' AS d FROM {s}.job_timeline
          WHERE job_id = :job_id AND source = 'job' AND type = 'JobDispatched') AS t)
SELECT l.* FROM dispatched JOIN {s}.job_logs AS l ON l.dispatch_id = dispatched.dispatch_id
    AND l.trainer_id = dispatched.trainer_id AND l.attempt = dispatched.attempt AND l.job_id = :job_id
WHERE l.cursor > :after AND (:attempt = 0 OR l.attempt = :attempt)
ORDER BY l.cursor LIMIT :limit"""


@dataclass(frozen=True)
class LogRow:
    """One line of a run of a job, as its trainer logged it."""

    cursor: int
    job_id: str
    attempt: int
    dispatch_id: str
    trainer_id: str
    at: datetime
    level: str
    logger: str
    message: str


async def apply_training_logged(
    schema: str, event: TrainingLogged, envelope: EventEnvelope, conn: AsyncConnection
) -> None:
    """Keep the event's lines (idempotent per cursor)."""
    rows = [
        {
            "cursor": envelope.position * CURSOR_SPAN + index,
            "job_id": event.job_id,
            "attempt": event.attempt,
            "dispatch_id": event.dispatch_id,
            "trainer_id": event.trainer_id,
            "at": line.at.isoformat(),
            "level": line.level,
            "logger": line.logger,
            "message": line.message,
        }
        for index, line in enumerate(event.lines)
    ]
    await conn.execute(text(_INSERT.format(s=schema)), {"rows": rows_json(rows)})


async def log_lines(
    conn: AsyncConnection, schema: str, job_id: str, *, attempt: int, after: int, limit: int
) -> list[LogRow]:
    """Up to `limit` lines of the job's dispatched runs after cursor `after` (`attempt` 0: every attempt)."""
    params = {"job_id": job_id, "attempt": attempt, "after": after, "limit": limit}
    result = await conn.execute(text(_SELECT.format(s=schema)), params)
    return [LogRow(**row) for row in result.mappings()]
