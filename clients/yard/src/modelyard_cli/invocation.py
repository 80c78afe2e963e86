"""One command's run: the global options it was given, and its calls to job-svc.

Every command calls job-svc through `call_job_svc`, which opens the channel, runs the async work
under asyncio.run and turns a failed call into `error: <STATUS>: <details>` on stderr with exit
code 2, so no command shows a traceback for a refused or unreachable call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import typer
from grpc import aio

from modelyard_cli.connection import ConnectionOptions, CredentialsMissing, JobSvc, bearer_token, job_svc
from modelyard_cli.output import Output, fail
from modelyard_cli.rpc_errors import describe_rpc_error

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CliState:
    """The global options, kept on the root typer context for the commands below it."""

    connection: ConnectionOptions = field(default_factory=ConnectionOptions)
    as_json: bool = False


def cli_state(ctx: typer.Context) -> CliState:
    """The global options of this run (defaults when the root callback did not run)."""
    return ctx.obj if isinstance(ctx.obj, CliState) else CliState()


def output_for(ctx: typer.Context, as_json: bool) -> Output:
    """The command's output: JSON when the command's or the global `--json` says so."""
    return Output(as_json or cli_state(ctx).as_json)


def call_job_svc(ctx: typer.Context, work: Callable[[JobSvc], Awaitable[T]]) -> T:
    """Run `work` against job-svc's stubs and return its result; a failed call ends the command."""
    options = cli_state(ctx).connection
    try:
        token = bearer_token(options)
    except (CredentialsMissing, ValueError) as error:
        fail(f"error: {error}")
    try:
        return asyncio.run(_with_job_svc(options.target, token, work))
    except aio.AioRpcError as error:
        fail(*describe_rpc_error(error, options.target))


async def _with_job_svc(target: str, token: str, work: Callable[[JobSvc], Awaitable[T]]) -> T:
    async with job_svc(target, token) as svc:
        return await work(svc)
