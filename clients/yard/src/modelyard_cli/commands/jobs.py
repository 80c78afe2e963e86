"""`yard jobs submit | list`: create jobs and find them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.options import JsonFlag, OrgFilter
from modelyard_cli.commands.watch import watch_until_finished
from modelyard_cli.connection import JobSvc
from modelyard_cli.hyperparameters import BadHyperparameter, hyperparameters
from modelyard_cli.invocation import call_job_svc, output_for
from modelyard_cli.output import fail, message_dict
from modelyard_cli.render.jobs import (
    active_table,
    estimate_table,
    job_line,
    jobs_table,
)
from modelyard_cli.render.values import parse_state

MAX_PAGE_SIZE = 500  # ListJobs' limit per page


def submit(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="The job's name (1-200 characters).", show_default=False)],
    module: Annotated[str, typer.Option(help="The AI module (a slug) the model is for.", show_default=False)],
    family: Annotated[
        str,
        typer.Option(help="image_classifier | tabular_classifier | tabular_regressor", show_default=False),
    ],
    dataset: Annotated[
        str, typer.Option(help="Training data: a file:// or dataset:// URI.", show_default=False)
    ],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="A hyperparameter key=value (value read as JSON if it parses); repeat."
        ),
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option(help="A JSON object of hyperparameters; --param values override it.")
    ] = None,
    priority: Annotated[int | None, typer.Option(help="0-100, higher first (server default 50).")] = None,
    org: Annotated[str | None, typer.Option(help="The organization (default: your token's).")] = None,
    request_id: Annotated[
        str | None, typer.Option(help="Idempotency key: the same id returns the same job.")
    ] = None,
    base_version: Annotated[
        str | None,
        typer.Option(
            help="Fine-tune this approved or released model version (same module and family).",
            show_default=False,
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option(help="What the job is for (at most 2,000 characters).", show_default=False)
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Then watch the job until it finishes.")] = False,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate", help="Print how long it would take and cost (EstimateJob); submit nothing."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Submit a training job (CreateJob), or fine-tune a model version with --base-version, and print
    its id and state; with --estimate, only estimate it from the module's past runs."""
    try:
        params = hyperparameters(param or [], params_file)
    except BadHyperparameter as error:
        fail(f"error: {error}")
    request = jobs_pb2.CreateJobRequest(
        name=name, ai_module=module, family=family, dataset_uri=dataset, hyperparameters=params,
        priority=priority, org_id=org or "", request_id=request_id or "",
        base_version_id=base_version or "", description=description or "",
    )  # fmt: skip
    if estimate:
        _show_estimate(ctx, request, as_json)
        return
    job: jobs_pb2.Job = call_job_svc(ctx, lambda svc: svc.jobs.CreateJob(request))
    out = output_for(ctx, as_json)
    if out.as_json and watch:
        out.json_line(message_dict(job))  # the watch's updates follow, one JSON object per line
    elif out.as_json:
        out.document(message_dict(job))
    else:
        out.show(job_line(job))
    if watch:
        watch_until_finished(ctx, job.job_id, out)


def list_jobs(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option(help="Only jobs in this state (repeat for several).")
    ] = None,
    org: OrgFilter = None,
    module: Annotated[str | None, typer.Option(help="Only jobs of this AI module.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many jobs.")] = 50,
    all_pages: Annotated[bool, typer.Option("--all", help="Every matching job (all pages).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List jobs (ListJobs, following pages), newest first."""
    try:
        states = [parse_state(s) for s in state or []]
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--state") from error
    request = jobs_pb2.ListJobsRequest(states=states, org_id=org or "", ai_module=module or "")
    jobs: jobs_pb2.ListJobsResponse = call_job_svc(
        ctx, lambda svc: fetch_jobs(svc, request, None if all_pages else limit)
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(jobs))
        return
    out.show(jobs_table(jobs.jobs))
    if jobs.next_page_token:
        out.hint(f"showing the first {len(jobs.jobs)} jobs; --all or a larger --limit for more")


def _show_estimate(ctx: typer.Context, request: jobs_pb2.CreateJobRequest, as_json: bool) -> None:
    found: jobs_pb2.JobEstimate = call_job_svc(ctx, lambda svc: svc.queries.EstimateJob(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(found))
        return
    if found.devices:
        out.show(estimate_table(found))
    out.hint(found.explanation)


ACTIVE_STATES = ("pending", "queued", "running", "paused")


def active(
    ctx: typer.Context,
    org: OrgFilter = None,
    module: Annotated[str | None, typer.Option(help="Only jobs of this AI module.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every unfinished job (pending, queued, running, paused) with its progress, epoch and step, last
    loss and speed, elapsed time and ETA."""
    states = [parse_state(s) for s in ACTIVE_STATES]
    request = jobs_pb2.ListJobsRequest(states=states, org_id=org or "", ai_module=module or "")
    jobs: jobs_pb2.ListJobsResponse = call_job_svc(ctx, lambda svc: fetch_jobs(svc, request, None))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(jobs))
    elif not jobs.jobs:
        out.hint("no unfinished jobs")
    else:
        out.show(active_table(jobs.jobs))


async def fetch_jobs(
    svc: JobSvc, request: jobs_pb2.ListJobsRequest, limit: int | None
) -> jobs_pb2.ListJobsResponse:
    """Pages of ListJobs until `limit` jobs (None: all) or the last page; keeps the next page token."""
    result = jobs_pb2.ListJobsResponse()
    while True:
        wanted = MAX_PAGE_SIZE if limit is None else limit - len(result.jobs)
        request.page_size = min(wanted, MAX_PAGE_SIZE)
        page: jobs_pb2.ListJobsResponse = await svc.jobs.ListJobs(request)
        result.jobs.extend(page.jobs[: request.page_size])
        result.next_page_token = page.next_page_token
        if not page.next_page_token or (limit is not None and len(result.jobs) >= limit):
            return result
        request.page_token = page.next_page_token
