"""yard, the Modelyard command line: `app` is the console script's entry point.

Wiring only: the global options go on the root context, and every command is attached here.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from modelyard_cli.commands import control, jobs, reads, token, trainers, watch
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import (
    DEFAULT_TARGET,
    ORG_ENV,
    SECRET_ENV,
    SUBJECT_ENV,
    TARGET_ENV,
    TOKEN_ENV,
    ConnectionOptions,
)
from modelyard_cli.invocation import CliState

app = typer.Typer(
    name="yard",
    help="Modelyard's command line: training jobs and trainers over job-svc's gRPC API.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals would print the bearer token
)
jobs_app = typer.Typer(help="Submit, list, inspect, watch and steer training jobs.", no_args_is_help=True)
trainers_app = typer.Typer(help="The trainer fleet (`yard trainers` lists it).")
token_app = typer.Typer(help="Bearer tokens (a dev and ops helper).", no_args_is_help=True)


@app.callback()
def main(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Option(envvar=TARGET_ENV, help="job-svc's gRPC address, host:port.")
    ] = DEFAULT_TARGET,
    bearer: Annotated[
        str | None,
        typer.Option(
            "--token", envvar=TOKEN_ENV, help="Bearer token (prefer the env var).", show_default=False
        ),
    ] = None,
    as_subject: Annotated[
        str | None,
        typer.Option(envvar=SUBJECT_ENV, help=f"Dev token's subject (with {SECRET_ENV}; default $USER)."),
    ] = None,
    org: Annotated[
        str | None, typer.Option(envvar=ORG_ENV, help=f"Dev token's organization (with {SECRET_ENV}).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Connect to job-svc at --target with --token; on a dev stack, MODELYARD_AUTH_SECRET mints one."""
    connection = ConnectionOptions(target, bearer, os.environ.get(SECRET_ENV), as_subject, org)
    ctx.obj = CliState(connection, as_json)


jobs_app.command("submit")(jobs.submit)
jobs_app.command("list")(jobs.list_jobs)
jobs_app.command("show")(reads.show)
jobs_app.command("watch")(watch.watch)
jobs_app.command("queue")(reads.queue)
jobs_app.command("cancel")(control.cancel)
jobs_app.command("pause")(control.pause)
jobs_app.command("resume")(control.resume)
jobs_app.command("retry")(control.retry)
jobs_app.command("priority")(control.priority)
trainers_app.callback(invoke_without_command=True)(trainers.trainers_overview)
trainers_app.command("list")(trainers.list_trainers)
token_app.command("mint")(token.mint)

app.add_typer(jobs_app, name="jobs")
app.add_typer(trainers_app, name="trainers")
app.add_typer(token_app, name="token")
