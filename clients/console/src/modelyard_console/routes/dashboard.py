"""Dashboard: system figures (queue length, trainer slots, GPUs) and the active jobs, live over SSE."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from grpc import aio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.jobs import ACTIVE_STATES
from modelyard_cli.connection import JobSvc
from modelyard_cli.render.values import parse_state
from modelyard_console.job_view import JobView, job_view
from modelyard_console.live import live_stream, polled_events
from modelyard_console.values import format_time
from modelyard_console.web import console_of, fragment, refusal_html, render, signed_in

ACTIVE_PAGE = 200  # the dashboard shows at most this many unfinished jobs
RECENT_PAGE = 5
FINISHED_STATES = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class TrainerView:
    """One trainer worker's line on the dashboard."""

    trainer_id: str
    alive: bool
    slots_text: str
    gpus: str
    jobs: int
    last_heartbeat: str


@dataclass(frozen=True, slots=True)
class DashboardFigures:
    """What the dashboard shows at one moment."""

    active: list[JobView]
    recent: list[JobView]
    queue_length: int
    trainers: list[TrainerView] | None  # None: the caller may not list trainers
    trainers_refusal: str
    slots_free: int
    slots_total: int


async def read_figures(svc: JobSvc) -> DashboardFigures:
    """The dashboard's figures, asked for together."""
    active_request = jobs_pb2.ListJobsRequest(
        states=[parse_state(s) for s in ACTIVE_STATES], page_size=ACTIVE_PAGE
    )
    recent_request = jobs_pb2.ListJobsRequest(
        states=[parse_state(s) for s in FINISHED_STATES], page_size=RECENT_PAGE
    )
    active, recent, queue = await asyncio.gather(
        svc.jobs.ListJobs(active_request),
        svc.jobs.ListJobs(recent_request),
        svc.queries.GetQueue(jobs_pb2.GetQueueRequest()),
    )
    trainers, refusal = await _trainers(svc)
    alive = [t for t in trainers or [] if t.alive]
    return DashboardFigures(
        active=[job_view(j) for j in active.jobs],
        recent=[job_view(j) for j in recent.jobs],
        queue_length=len(queue.entries),
        trainers=None if trainers is None else [_trainer_view(t) for t in trainers],
        trainers_refusal=refusal,
        slots_free=sum(t.slots_free for t in alive),
        slots_total=sum(t.slots_total for t in alive),
    )


async def _trainers(svc: JobSvc) -> tuple[list[jobs_pb2.Trainer] | None, str]:
    try:
        listed = await svc.queries.ListTrainers(jobs_pb2.ListTrainersRequest())
    except aio.AioRpcError as error:  # an org_admin sees its jobs but not the shared fleet
        return None, f"{error.code().name}: {error.details()}"
    return list(listed.trainers), ""


def _trainer_view(trainer: jobs_pb2.Trainer) -> TrainerView:
    return TrainerView(
        trainer_id=trainer.trainer_id,
        alive=trainer.alive,
        slots_text=f"{trainer.slots_total - trainer.slots_free}/{trainer.slots_total} busy",
        gpus=", ".join(trainer.gpus) or "CPU only",
        jobs=len(trainer.job_ids),
        last_heartbeat=format_time(trainer.last_heartbeat_at),
    )


async def dashboard_page(request: Request) -> Response:
    """The dashboard, its live part filled in already (the stream then keeps it current)."""
    session, token = signed_in(request)
    async with console_of(request).gateway.jobs(token) as svc:
        figures = await read_figures(svc)
    return render(request, "dashboard.html", session, title="Dashboard", page="dashboard", figures=figures)


async def dashboard_stream(request: Request) -> Response:
    """The dashboard's live part as server-sent events, re-read every refresh period."""
    session, token = signed_in(request)
    console = console_of(request)

    async def read() -> str:
        async with console.gateway.jobs(token) as svc:
            figures = await read_figures(svc)
        return fragment(request, "_dashboard_live.html", figures=figures)

    events = polled_events(request, "dashboard", read, console.settings.refresh_s, refusal_html(request))
    return live_stream(request, session, "dashboard", events)


routes = [
    Route("/", dashboard_page, methods=["GET"]),
    Route("/live/dashboard", dashboard_stream, methods=["GET"]),
]
