"""`yard jobs logs`: the lines a job's trainers logged (GetJobLogs), or followed as they come (-f).

Without --follow, every line there is now, page after page. With it, FollowJobLogs: the lines so far,
then new ones until the job has finished (Ctrl-C stops following; the job goes on).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import typer

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.options import JobId, JsonFlag
from modelyard_cli.connection import JobSvc
from modelyard_cli.invocation import call_job_svc, output_for
from modelyard_cli.output import Output, message_dict

_PAGE = 1000


def logs(
    ctx: typer.Context,
    job_id: JobId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    attempt: Annotated[int, typer.Option(min=0, help="Only this attempt's lines (0: every attempt).")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Print the lines the job's trainers logged: data loaded, the model, each epoch, warnings, errors."""
    out = output_for(ctx, as_json)
    request = jobs_pb2.JobLogsRequest(job_id=job_id, attempt=attempt, page_size=_PAGE)
    pages = _followed if follow else _paged
    printed = call_job_svc(ctx, lambda svc: _print(pages(svc, request), out))
    if not printed and not out.as_json:
        out.hint(f"no lines logged for {job_id} yet" + ("" if follow else "; follow them with -f"))


async def _print(pages: AsyncIterator[jobs_pb2.JobLogsResponse], out: Output) -> int:
    printed = 0
    async for page in pages:
        for line in page.lines:
            if out.as_json:
                out.json_line(message_dict(line))
            else:
                out.lines([log_line_text(line)])
            printed += 1
    return printed


async def _paged(svc: JobSvc, request: jobs_pb2.JobLogsRequest) -> AsyncIterator[jobs_pb2.JobLogsResponse]:
    while True:
        page: jobs_pb2.JobLogsResponse = await svc.queries.GetJobLogs(request)
        yield page
        if not page.more:
            return
        request.after_cursor = page.next_cursor


async def _followed(svc: JobSvc, request: jobs_pb2.JobLogsRequest) -> AsyncIterator[jobs_pb2.JobLogsResponse]:
    call = svc.queries.FollowJobLogs(request)
    try:
        async for page in call:
            yield page
    finally:
        call.cancel()


def log_line_text(line: jobs_pb2.JobLogLine) -> str:
    """`2026-12-03 09:41:07 INFO  #1 epoch 2/6: …` (UTC, to the second; the attempt after the level)."""
    at = line.at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
    return f"{at} {line.level:<7} #{line.attempt} {line.message}"
