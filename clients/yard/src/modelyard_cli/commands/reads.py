"""`yard jobs show | queue`: one job in depth (details, epochs, events), and the queue."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.options import JobId, JsonFlag, OrgFilter
from modelyard_cli.connection import JobSvc
from modelyard_cli.invocation import call_job_svc, output_for
from modelyard_cli.output import message_dict
from modelyard_cli.render.jobs import events_table, job_details, metrics_table, queue_table


def show(
    ctx: typer.Context,
    job_id: JobId,
    events: Annotated[int, typer.Option(min=0, help="How many of the latest events to show.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Show one job: its details, its metrics per epoch and its recent events."""
    job, history, timeline = call_job_svc(ctx, lambda svc: fetch_job_story(svc, job_id))
    out = output_for(ctx, as_json)
    if out.as_json:
        epochs, recorded = message_dict(history).get("epochs", []), message_dict(timeline).get("events", [])
        out.document({"job": message_dict(job), "epochs": epochs, "events": recorded})
        return
    recent = list(timeline.events)[-events:] if events else []
    out.show(job_details(job), metrics_table(history.epochs), events_table(recent))


async def fetch_job_story(
    svc: JobSvc, job_id: str
) -> tuple[jobs_pb2.Job, jobs_pb2.MetricsHistoryResponse, jobs_pb2.JobEventsResponse]:
    """The job, its metrics history and its events, asked for together."""
    ref = jobs_pb2.JobRef(job_id=job_id)
    job, history, timeline = await asyncio.gather(
        svc.jobs.GetJob(ref), svc.queries.GetMetricsHistory(ref), svc.queries.GetJobEvents(ref)
    )
    return job, history, timeline


def queue(ctx: typer.Context, org: OrgFilter = None, as_json: JsonFlag = False) -> None:
    """Show the queue in the order jobs will be dispatched (GetQueue)."""
    request = jobs_pb2.GetQueueRequest(org_id=org or "")
    response: jobs_pb2.GetQueueResponse = call_job_svc(ctx, lambda svc: svc.queries.GetQueue(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(response))
    else:
        out.show(queue_table(response.entries))
