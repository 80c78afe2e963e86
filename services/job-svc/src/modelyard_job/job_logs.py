"""GetJobLogs and FollowJobLogs: a job's training log lines, paged, and followed as they come.

Following ends once the job has finished and no line has come for `QUIET_S`: the views apply the
trainers' log and job-svc's own independently, so a run's last lines may land just after the job's
final state, and a cancelled run logs its stop after the cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from modelyard.v1 import jobs_pb2
from modelyard_events.domain_errors import InvalidArgument
from modelyard_grpc.values import timestamp
from modelyard_job.job_reads import JobReads
from modelyard_job.notifications import Notice, ViewChanges
from modelyard_job.projections.rows import FINISHED_STATES, JobRow
from modelyard_job.projections.training_logs import LogRow, log_lines

MAX_LOG_PAGE, DEFAULT_LOG_PAGE = 1000, 200
QUIET_S = 3.0
_IDLE_RECHECK_S = 5.0  # a notice lost with a dropped LISTEN connection is noticed this late at worst
_WAKING = frozenset({"logs", "state"})  # the views' notice kinds a follower acts on


def checked_log_request(request: jobs_pb2.JobLogsRequest) -> int:
    """The page size the request asks for; InvalidArgument naming the field that is wrong."""
    if request.attempt < 0:
        raise InvalidArgument("attempt", "must be 0 (every attempt) or an attempt number from 1")
    if request.after_cursor < 0:
        raise InvalidArgument("after_cursor", "must be 0 (from the first line) or a cursor already read")
    if request.page_size == 0:
        return DEFAULT_LOG_PAGE
    if not 1 <= request.page_size <= MAX_LOG_PAGE:
        raise InvalidArgument("page_size", f"must be between 1 and {MAX_LOG_PAGE} (0 = {DEFAULT_LOG_PAGE})")
    return request.page_size


async def job_logs_page(reads: JobReads, request: jobs_pb2.JobLogsRequest) -> jobs_pb2.JobLogsResponse:
    """One page of the job's lines after `after_cursor` (the caller must be allowed to read the job)."""
    size = checked_log_request(request)
    row = await reads.visible_row(request.job_id)
    return await _page(reads, row, request.attempt, request.after_cursor, size)


async def follow_job_logs(
    reads: JobReads, changes: ViewChanges, request: jobs_pb2.JobLogsRequest
) -> AsyncIterator[jobs_pb2.JobLogsResponse]:
    """Every page there is, then each new line as the views announce it, until the job has finished
    and been quiet for QUIET_S."""
    size = checked_log_request(request)
    row = await reads.visible_row(request.job_id)
    after, last_line_at = request.after_cursor, time.monotonic()
    with changes.subscription(row.job_id) as notices:  # subscribed before reading: no line is missed
        while True:
            page = await _page(reads, row, request.attempt, after, size)
            if page.lines:
                after, last_line_at = page.next_cursor, time.monotonic()
                yield page
            if page.more:
                continue
            if row.state in FINISHED_STATES and time.monotonic() - last_line_at >= QUIET_S:
                if not page.lines:
                    yield page  # the end says so: job_finished, no lines
                return
            await _next_notice(notices, QUIET_S if row.state in FINISHED_STATES else _IDLE_RECHECK_S)
            row = await reads.visible_row(row.job_id)


async def _page(
    reads: JobReads, row: JobRow, attempt: int, after: int, size: int
) -> jobs_pb2.JobLogsResponse:
    async with reads.engine.connect() as conn:
        lines = await log_lines(
            conn, reads.reader.schema, row.job_id, attempt=attempt, after=after, limit=size
        )
    return jobs_pb2.JobLogsResponse(
        lines=[_line_to_proto(line) for line in lines],
        next_cursor=lines[-1].cursor if lines else after,
        more=len(lines) == size,
        job_finished=row.state in FINISHED_STATES,
    )


def _line_to_proto(line: LogRow) -> jobs_pb2.JobLogLine:
    return jobs_pb2.JobLogLine(
        cursor=line.cursor,
        attempt=line.attempt,
        at=timestamp(line.at),
        level=line.level,
        logger=line.logger,
        message=line.message,
        trainer_id=line.trainer_id,
        dispatch_id=line.dispatch_id,
    )


async def _next_notice(notices: asyncio.Queue[Notice], timeout_s: float) -> None:
    """Return on a notice of new lines or a new state (the others, progress above all, are dropped
    unread), or after `timeout_s`."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while (await notices.get())[1] not in _WAKING:
                pass
    while not notices.empty():
        notices.get_nowait()
