"""A job's training logs: the lines followed live into the job page's log panel (FollowJobLogs over
SSE), and every line as a text or CSV download (GetJobLogs paged server-side, capped)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.connection import JobSvc
from modelyard_console.csv_exports import LOG_COLUMNS, csv_text, log_row
from modelyard_console.gateway import Refusal
from modelyard_console.live import KEEPALIVE_S, live_stream, sse_event
from modelyard_console.log_lines import (
    MAX_LINES_DOWNLOADED,
    PAGE_SIZE,
    log_line_text,
    log_line_view,
)
from modelyard_console.web import console_of, fragment, refusal_html, signed_in

_CUT_SHORT = "stopped at {:,} lines; `yard jobs logs JOB_ID` prints them all"


def _resume_cursor(request: Request) -> int:
    """Where a reconnecting browser left off: its Last-Event-ID (each event's id is its next cursor)."""
    last = request.headers.get("last-event-id", "")
    return int(last) if last.isascii() and last.isdigit() and len(last) <= 18 else 0  # an int64


async def job_log_stream(request: Request) -> Response:
    """The job's log lines so far, then each new one, as `logs` events the panel appends; kept open
    (idle) after the job's last line, so the browser does not reconnect and read them again."""
    session, token = signed_in(request)
    job_id = request.path_params["job_id"]
    follow = jobs_pb2.JobLogsRequest(job_id=job_id, after_cursor=_resume_cursor(request), page_size=PAGE_SIZE)
    refused = refusal_html(request)

    async def body() -> AsyncGenerator[str, None]:
        try:
            async with console_of(request).gateway.jobs(token) as svc:
                async for page in svc.queries.FollowJobLogs(follow):
                    if page.lines:
                        lines = [log_line_view(line) for line in page.lines]
                        html = fragment(request, "_log_lines.html", lines=lines)
                        yield sse_event("logs", html, str(page.next_cursor))
        except Refusal as refusal:
            yield sse_event("logs", refused(refusal))
        while not await request.is_disconnected():
            yield ": keepalive\n\n"
            await asyncio.sleep(KEEPALIVE_S)

    return live_stream(request, session, "logs", body())


async def job_log_text(request: Request) -> Response:
    """Every line of every attempt as text (at most MAX_LINES_DOWNLOADED), streamed page by page."""
    return await _download(request, "txt")


async def job_log_csv(request: Request) -> Response:
    """The same lines as CSV, one row a line (attempt, time, level, logger, trainer, dispatch, text)."""
    return await _download(request, "csv")


async def _download(request: Request, kind: str) -> Response:
    """The job's lines, page by page, as text or CSV.

    The first page is read before answering, so a refused read is a refusal page; a refusal later
    ends the download with a line saying so."""
    _, token = signed_in(request)
    job_id = request.path_params["job_id"]
    gateway = console_of(request).gateway
    first_request = jobs_pb2.JobLogsRequest(job_id=job_id, page_size=PAGE_SIZE)
    async with gateway.jobs(token) as svc:
        first = await svc.queries.GetJobLogs(first_request)

    def rendered(lines: list[jobs_pb2.JobLogLine]) -> str:
        if kind == "csv":
            return csv_text(log_row(line) for line in lines)
        return "".join(log_line_text(line) + "\n" for line in lines)

    def note(text: str) -> str:  # a CSV says it in the message column of a row of its own
        return csv_text([["", "", "", "", "", "", text]]) if kind == "csv" else f"[{text}]\n"

    async def body() -> AsyncIterator[str]:
        sent = 0
        if kind == "csv":
            yield csv_text([LOG_COLUMNS])
        try:
            async with gateway.jobs(token) as svc:
                async for page in _pages(svc, job_id, first):
                    lines = list(page.lines)[: MAX_LINES_DOWNLOADED - sent]
                    sent += len(lines)
                    yield rendered(lines)
                    if sent >= MAX_LINES_DOWNLOADED:
                        if page.more or len(lines) < len(page.lines):
                            yield note(_CUT_SHORT.format(MAX_LINES_DOWNLOADED))
                        return
        except Refusal as refusal:
            yield note(f"refused after {sent:,} lines: {refusal.status}: {refusal.message}")

    media = "text/csv; charset=utf-8" if kind == "csv" else "text/plain; charset=utf-8"
    filename = f"{job_id}-logs.{kind}".replace('"', "")
    return StreamingResponse(
        body(), media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


async def _pages(
    svc: JobSvc, job_id: str, first: jobs_pb2.JobLogsResponse
) -> AsyncIterator[jobs_pb2.JobLogsResponse]:
    page = first
    yield page
    while page.more:
        request = jobs_pb2.JobLogsRequest(job_id=job_id, after_cursor=page.next_cursor, page_size=PAGE_SIZE)
        page = await svc.queries.GetJobLogs(request)
        yield page


routes = [
    Route("/live/jobs/{job_id}/logs", job_log_stream, methods=["GET"]),
    Route("/jobs/{job_id}/logs.txt", job_log_text, methods=["GET"]),
    Route("/jobs/{job_id}/logs.csv", job_log_csv, methods=["GET"]),
]
