"""Job detail: the job's figures live (WatchJob over SSE), its loss and accuracy curves, its epochs and
events, its metrics as JSON (for the charts) and CSV, and its events timeline as CSV. Its training log
panel: routes/job_logs.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.render.values import FINISHED_STATES
from modelyard_console.csv_exports import EVENT_COLUMNS, csv_text, event_row
from modelyard_console.gateway import Refusal
from modelyard_console.job_view import job_view
from modelyard_console.live import KEEPALIVE_S, live_stream, sse_event
from modelyard_console.log_lines import MAX_LINES_SHOWN
from modelyard_console.metrics_series import Run, chart_data, latest_per_epoch, metrics_csv
from modelyard_console.values import format_time
from modelyard_console.web import console_of, fragment, refusal_html, render, signed_in

RECENT_EVENTS = 50


async def job_page(request: Request) -> Response:
    """One job: details, live figures, charts, epochs table, recent events."""
    session, token = signed_in(request)
    ref = jobs_pb2.JobRef(job_id=request.path_params["job_id"])
    async with console_of(request).gateway.jobs(token) as svc:
        job, history, timeline = await asyncio.gather(
            svc.jobs.GetJob(ref), svc.queries.GetMetricsHistory(ref), svc.queries.GetJobEvents(ref)
        )
    events = [
        (format_time(e.occurred_at), e.type, e.actor.subject) for e in list(timeline.events)[-RECENT_EVENTS:]
    ]
    return render(
        request,
        "job.html",
        session,
        title=job.name,
        page="history",
        job=job_view(job),
        epochs=latest_per_epoch(history.epochs),
        events=list(reversed(events)),
        max_log_lines=MAX_LINES_SHOWN,
    )


async def job_stream(request: Request) -> Response:
    """The job's live figures as server-sent events, one per WatchJob update; idle once it finished."""
    session, token = signed_in(request)
    job_id = request.path_params["job_id"]
    refused = refusal_html(request)
    back = f"/jobs/{job_id}"  # the actions in the live part (the buttons its state allows) come back here

    async def body() -> AsyncGenerator[str, None]:
        try:
            async with console_of(request).gateway.jobs(token) as svc:
                async for update in svc.jobs.WatchJob(jobs_pb2.WatchJobRequest(job_id=job_id)):
                    live = fragment(
                        request, "_job_live.html", job=job_view(update.job), session=session, back=back
                    )
                    yield sse_event("job", live)
                    if update.job.state in FINISHED_STATES:
                        break
        except Refusal as refusal:
            yield sse_event("job", refused(refusal))
        while not await request.is_disconnected():  # stay open: the browser would only reconnect
            yield ": keepalive\n\n"
            await asyncio.sleep(KEEPALIVE_S)

    return live_stream(request, session, "job", body())


async def job_metrics(request: Request) -> Response:
    """The job's loss and accuracy per epoch, as the charts read them."""
    _, token = signed_in(request)
    ref = jobs_pb2.JobRef(job_id=request.path_params["job_id"])
    async with console_of(request).gateway.jobs(token) as svc:
        history = await svc.queries.GetMetricsHistory(ref)
    return JSONResponse(chart_data([Run(ref.job_id, list(history.epochs))]))


async def job_metrics_csv(request: Request) -> Response:
    """Every epoch of every attempt, as a CSV download."""
    _, token = signed_in(request)
    ref = jobs_pb2.JobRef(job_id=request.path_params["job_id"])
    async with console_of(request).gateway.jobs(token) as svc:
        history = await svc.queries.GetMetricsHistory(ref)
    return _csv_download(metrics_csv(history.epochs), f"{ref.job_id}-metrics.csv")


async def job_events_csv(request: Request) -> Response:
    """The job's whole events timeline (every event of its stream) as a CSV download."""
    _, token = signed_in(request)
    ref = jobs_pb2.JobRef(job_id=request.path_params["job_id"])
    async with console_of(request).gateway.jobs(token) as svc:
        timeline = await svc.queries.GetJobEvents(ref)
    rows = csv_text([EVENT_COLUMNS, *(event_row(e) for e in timeline.events)])
    return _csv_download(rows, f"{ref.job_id}-events.csv")


def _csv_download(text: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename.replace(chr(34), "")}"'
    return Response(text, media_type="text/csv", headers={"Content-Disposition": disposition})


routes = [
    Route("/jobs/{job_id}", job_page, methods=["GET"]),
    Route("/live/jobs/{job_id}", job_stream, methods=["GET"]),
    Route("/jobs/{job_id}/metrics.json", job_metrics, methods=["GET"]),
    Route("/jobs/{job_id}/metrics.csv", job_metrics_csv, methods=["GET"]),
    Route("/jobs/{job_id}/events.csv", job_events_csv, methods=["GET"]),
]
