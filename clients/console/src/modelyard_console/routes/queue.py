"""Queue: queued jobs in dispatch order (GetQueue) with their positions, and the jobs in progress;
each with its priority form and pause, resume and cancel buttons."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.render.values import parse_state
from modelyard_console.job_view import job_view
from modelyard_console.web import console_of, render, signed_in

IN_PROGRESS_STATES = ("pending", "running", "paused")
IN_PROGRESS_PAGE = 200


async def queue_page(request: Request) -> Response:
    """The queue and the jobs in progress."""
    session, token = signed_in(request)
    in_progress_request = jobs_pb2.ListJobsRequest(
        states=[parse_state(s) for s in IN_PROGRESS_STATES], page_size=IN_PROGRESS_PAGE
    )
    async with console_of(request).gateway.jobs(token) as svc:
        queue, in_progress = await asyncio.gather(
            svc.queries.GetQueue(jobs_pb2.GetQueueRequest()), svc.jobs.ListJobs(in_progress_request)
        )
    queued = [(entry.position, job_view(entry.job)) for entry in queue.entries]
    return render(
        request,
        "queue.html",
        session,
        title="Queue",
        page="queue",
        queued=queued,
        in_progress=[job_view(j) for j in in_progress.jobs],
    )


routes = [Route("/queue", queue_page, methods=["GET"])]
