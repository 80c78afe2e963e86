"""One command's run: the global options it was given, and its calls to job-svc, dataset-svc,
registry-svc or deploy-svc.

Every command calls a service through `call_job_svc`, `call_dataset_svc`, `call_registry_svc` or
`call_deploy_svc`,
which open the channel, run the async work under asyncio.run and turn a failed call into
`error: <STATUS>: <details>` on stderr with exit code 2, so no command shows a traceback for a
refused or unreachable call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import typer
from grpc import aio

from modelyard_cli.connection import (
    DATASET_SVC,
    DEPLOY_SVC,
    JOB_SVC,
    REGISTRY_SVC,
    ConnectionOptions,
    CredentialsMissing,
    DatasetSvc,
    DeploySvc,
    JobSvc,
    RegistrySvc,
    ServiceAddress,
    bearer_token,
    connected,
    dataset_svc_stubs,
    deploy_svc_stubs,
    job_svc_stubs,
    registry_svc_stubs,
)
from modelyard_cli.output import Output, fail
from modelyard_cli.rpc_errors import describe_rpc_error
from modelyard_grpc import TlsSettings

T = TypeVar("T")
Stubs = TypeVar("Stubs")
Advice = Callable[[aio.AioRpcError], list[str]]
"""What to add, for one command, to the lines describing a failed call."""


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
    target = cli_state(ctx).connection.target
    return _call(ctx, target, JOB_SVC, job_svc_stubs, work)


def call_dataset_svc(
    ctx: typer.Context, work: Callable[[DatasetSvc], Awaitable[T]], advice: Advice | None = None
) -> T:
    """Run `work` against dataset-svc's stub and return its result; a failed call ends the command.

    `advice` adds lines after the error's (what the refusal means for this command, what to do).
    """
    target = cli_state(ctx).connection.dataset_target
    return _call(ctx, target, DATASET_SVC, dataset_svc_stubs, work, advice)


def call_registry_svc(
    ctx: typer.Context, work: Callable[[RegistrySvc], Awaitable[T]], advice: Advice | None = None
) -> T:
    """Run `work` against registry-svc's stub and return its result; a failed call ends the command.

    `advice` adds lines after the error's (what the refusal means for this command, what to do).
    """
    target = cli_state(ctx).connection.registry_target
    return _call(ctx, target, REGISTRY_SVC, registry_svc_stubs, work, advice)


def call_deploy_svc(
    ctx: typer.Context, work: Callable[[DeploySvc], Awaitable[T]], advice: Advice | None = None
) -> T:
    """Run `work` against deploy-svc's stub and return its result; a failed call ends the command.

    `advice` adds lines after the error's (what the refusal means for this command, what to do).
    """
    target = cli_state(ctx).connection.deploy_target
    return _call(ctx, target, DEPLOY_SVC, deploy_svc_stubs, work, advice)


def _call(
    ctx: typer.Context,
    target: str,
    service: ServiceAddress,
    stubs: Callable[[aio.Channel], Stubs],
    work: Callable[[Stubs], Awaitable[T]],
    advice: Advice | None = None,
) -> T:
    token = command_token(ctx)
    try:
        return asyncio.run(_with_stubs(target, token, stubs, work, cli_state(ctx).connection.tls))
    except aio.AioRpcError as error:
        fail(*describe_rpc_error(error, target, service), *(advice(error) if advice else []))


def command_token(ctx: typer.Context) -> str:
    """The bearer token of this run; missing credentials end the command with what to set."""
    try:
        return bearer_token(cli_state(ctx).connection)
    except (CredentialsMissing, ValueError) as error:
        fail(f"error: {error}")


async def _with_stubs(
    target: str,
    token: str,
    stubs: Callable[[aio.Channel], Stubs],
    work: Callable[[Stubs], Awaitable[T]],
    tls: TlsSettings | None,
) -> T:
    async with connected(target, token, stubs, tls) as svc:
        return await work(svc)
