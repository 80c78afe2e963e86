"""`yard jobs cancel | pause | resume | retry | priority`: the JobService commands on one job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.options import ExpectedVersion, JobId, JsonFlag, Reason
from modelyard_cli.invocation import call_job_svc, output_for
from modelyard_cli.output import fail, message_dict
from modelyard_cli.render.jobs import job_line

JobCommandFn = Callable[[typer.Context, str, str, int, bool], None]


def _job_command(rpc: str, summary: str) -> JobCommandFn:
    """A typer command sending a JobCommand to the `rpc` RPC (CancelJob, PauseJob …)."""

    def command(
        ctx: typer.Context,
        job_id: JobId,
        reason: Reason = "",
        expected_version: ExpectedVersion = 0,
        as_json: JsonFlag = False,
    ) -> None:
        request = jobs_pb2.JobCommand(job_id=job_id, reason=reason, expected_version=expected_version)
        _send(ctx, rpc, request, as_json)

    command.__doc__ = summary
    return command


def cancel(
    ctx: typer.Context,
    job_id: JobId,
    reason: Reason = "",
    expected_version: ExpectedVersion = 0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Cancel a queued, running or paused job (a running one stops before its next step); asks first,
    showing the job, unless --yes."""
    if not yes:
        job: jobs_pb2.Job = call_job_svc(ctx, lambda svc: svc.jobs.GetJob(jobs_pb2.JobRef(job_id=job_id)))
        output_for(ctx, as_json).progress_console.print(job_line(job), markup=False)  # stderr beside JSON
        if not typer.confirm(f"Cancel job {job_id}? Its training stops and cannot be resumed", err=True):
            fail(f"job {job_id} not cancelled", exit_code=1)
    request = jobs_pb2.JobCommand(job_id=job_id, reason=reason, expected_version=expected_version)
    _send(ctx, "CancelJob", request, as_json)


pause = _job_command("PauseJob", "Pause a job (a running one checkpoints mid-epoch and frees its slot).")
resume = _job_command("ResumeJob", "Resume a paused job: it queues again and goes on from its checkpoint.")
retry = _job_command("RetryJob", "Retry a failed or cancelled job: a new attempt from scratch.")


def priority(
    ctx: typer.Context,
    job_id: JobId,
    new_priority: Annotated[
        int, typer.Argument(metavar="PRIORITY", help="0-100, higher first.", show_default=False)
    ],
    expected_version: ExpectedVersion = 0,
    as_json: JsonFlag = False,
) -> None:
    """Set a job's priority (SetPriority)."""
    request = jobs_pb2.SetPriorityRequest(
        job_id=job_id, priority=new_priority, expected_version=expected_version
    )
    _send(ctx, "SetPriority", request, as_json)


def _send(
    ctx: typer.Context, rpc: str, request: jobs_pb2.JobCommand | jobs_pb2.SetPriorityRequest, as_json: bool
) -> None:
    job: jobs_pb2.Job = call_job_svc(ctx, lambda svc: getattr(svc.jobs, rpc)(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(job))
    else:
        out.show(job_line(job))
