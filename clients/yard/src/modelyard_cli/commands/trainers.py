"""`yard trainers`: the trainer fleet (QueryService.ListTrainers)."""

from __future__ import annotations

import typer

from modelyard.v1 import jobs_pb2
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.invocation import call_job_svc, output_for
from modelyard_cli.output import message_dict
from modelyard_cli.render.trainers import trainers_table


def list_trainers(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List trainers: alive or lost, free slots, GPUs, their jobs, last heartbeat."""
    request = jobs_pb2.ListTrainersRequest()
    response: jobs_pb2.ListTrainersResponse = call_job_svc(ctx, lambda svc: svc.queries.ListTrainers(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(response))
    else:
        out.show(trainers_table(response.trainers))


def trainers_overview(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The trainer fleet; `yard trainers` alone lists them."""
    if ctx.invoked_subcommand is None:
        list_trainers(ctx, as_json)
