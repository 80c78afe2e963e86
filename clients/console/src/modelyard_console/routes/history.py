"""History: finished jobs, newest first, with boxes to pick runs to compare; the comparison draws
their loss and accuracy on one chart each."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.render.values import parse_state
from modelyard_console.job_view import job_view
from modelyard_console.metrics_series import Run, chart_data
from modelyard_console.web import console_of, render, signed_in

FINISHED_STATES = ("completed", "failed", "cancelled")
HISTORY_PAGE = 100
MAX_COMPARED = 8


async def history_page(request: Request) -> Response:
    """The finished jobs (one page)."""
    session, token = signed_in(request)
    listing = jobs_pb2.ListJobsRequest(
        states=[parse_state(s) for s in FINISHED_STATES],
        page_size=HISTORY_PAGE,
        page_token=request.query_params.get("page", ""),
    )
    async with console_of(request).gateway.jobs(token) as svc:
        found = await svc.jobs.ListJobs(listing)
    return render(
        request,
        "history.html",
        session,
        title="History",
        page="history",
        jobs=[job_view(j) for j in found.jobs],
        next_page=found.next_page_token,
    )


def compared_ids(request: Request) -> list[str]:
    """The job ids of `?job=…&job=…`, without repeats, at most MAX_COMPARED."""
    return list(dict.fromkeys(request.query_params.getlist("job")))[:MAX_COMPARED]


async def compare_page(request: Request) -> Response:
    """Two or more runs on one loss chart and one accuracy chart."""
    session, token = signed_in(request)
    job_ids = compared_ids(request)
    async with console_of(request).gateway.jobs(token) as svc:
        jobs = await asyncio.gather(*(svc.jobs.GetJob(jobs_pb2.JobRef(job_id=j)) for j in job_ids))
    return render(
        request,
        "compare.html",
        session,
        title="Compare runs",
        page="history",
        jobs=[job_view(j) for j in jobs],
        data_url="/compare.json?" + urlencode([("job", j) for j in job_ids]),
    )


async def compare_data(request: Request) -> Response:
    """The compared runs' chart data; each run labelled by its name and id."""
    _, token = signed_in(request)
    job_ids = compared_ids(request)
    async with console_of(request).gateway.jobs(token) as svc:
        jobs = await asyncio.gather(*(svc.jobs.GetJob(jobs_pb2.JobRef(job_id=j)) for j in job_ids))
        histories = await asyncio.gather(
            *(svc.queries.GetMetricsHistory(jobs_pb2.JobRef(job_id=j)) for j in job_ids)
        )
    runs = [Run(f"{j.name} ({j.job_id[-6:]})", list(h.epochs)) for j, h in zip(jobs, histories, strict=True)]
    return JSONResponse(chart_data(runs))


routes = [
    Route("/history", history_page, methods=["GET"]),
    Route("/compare", compare_page, methods=["GET"]),
    Route("/compare.json", compare_data, methods=["GET"]),
]
