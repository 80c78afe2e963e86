"""`yard audit replay` (attached to `audit_app` in main.py): every service rebuilds its read models
from the logs into fresh schemas and compares them with the live ones row by row
(`modelyard.v1.ProjectionAudit/ReplayProjections`).

The work is done by each service, next to its database (an auditor holds no database role); yard
streams what each one says and prints one verdict per read model. Exit 0 only when every read
model of every service asked is identical; 1 when one differs; 2 when a service could not replay.
trainer-svc keeps no read model, so it is not asked.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import grpc
import typer
from google.protobuf.json_format import MessageToDict
from grpc import aio

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_cli.commands.audit_log import SERVICES, AuditError, LogService, service_named, target_of
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.invocation import cli_state, command_token, output_for
from modelyard_cli.output import Output, fail
from modelyard_cli.rpc_errors import describe_rpc_error, is_unreachable
from modelyard_grpc import TlsSettings

DIFFERENT_EXIT_CODE = 1
REPLAYING = tuple(s for s in SERVICES if s.name != "trainer-svc")  # trainer-svc has no read model
REPLAY_TIMEOUT_S = 3600.0  # a rebuild of millions of events takes minutes; progress streams meanwhile


def replay(
    ctx: typer.Context,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            help=f"A service to replay (repeatable; default all: {', '.join(s.name for s in REPLAYING)}).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rebuild every read model from the event logs and compare it with the live one, row by row."""
    out = output_for(ctx, as_json)
    try:
        services = [_replaying(name) for name in service or []] or list(REPLAYING)
    except AuditError as error:
        fail(*error.lines)
    token = command_token(ctx)
    connection = cli_state(ctx).connection
    results: list[events_pb2.ProjectionReplayResult] = []  # one per read model
    errors: list[str] = []
    for log_service in services:
        target = target_of(log_service, connection, "")
        try:
            results += asyncio.run(_replay_one(log_service, target, token, connection.tls, out))
        except AuditError as error:
            errors += error.lines
            out.show(f"{log_service.name}: could not replay (see below)")
    if errors:
        fail(*errors)
    if not all(r.identical for r in results):
        different = ", ".join(r.projection for r in results if not r.identical)
        fail(
            f"error: replayed read models differ from the live ones: {different}",
            exit_code=DIFFERENT_EXIT_CODE,
        )
    if not out.as_json:
        models = f"{len(results)} read models"
        out.show(f"every read model replayed identical ({models} of {len(services)} services)")


def _replaying(name: str) -> LogService:
    found = service_named(name)
    if found not in REPLAYING:
        raise AuditError(f"error: {found.name} keeps no read model to replay")
    return found


async def _replay_one(
    service: LogService, target: str, token: str, tls: TlsSettings | None, out: Output
) -> list[events_pb2.ProjectionReplayResult]:
    results = []
    async with (tls or TlsSettings.from_environ({})).grpc_channel(target, token) as channel:
        stub: Any = events_pb2_grpc.ProjectionAuditStub(channel)
        try:
            async for message in stub.ReplayProjections(events_pb2.ReplayRequest(), timeout=REPLAY_TIMEOUT_S):
                if message.HasField("result"):
                    results.append(message.result)
                    _report(out, service, message.result)
                else:
                    out.progress_console.print(f"{service.name}: {message.line}", markup=False)
        except aio.AioRpcError as error:
            raise AuditError(*_describe(service, target, error)) from error
    return results


def _report(out: Output, service: LogService, result: events_pb2.ProjectionReplayResult) -> None:
    if out.as_json:
        out.json_line({"service": service.name, **_as_dict(result)})
        return
    positions = ", ".join(f"{s} {p:,}" for s, p in sorted(result.positions.items())) or "empty logs"
    if result.problem:
        out.show(f"{service.name} {result.projection}: NOT COMPARED: {result.problem}")
        return
    verdict = "identical" if result.identical else "DIFFERS"
    out.show(
        f"{service.name} {result.projection}: {verdict} ({result.events_replayed:,} events replayed, "
        f"compared at {positions}; {len(result.tables)} tables)"
    )
    if result.dead_lettered:
        out.show(f"  {result.dead_lettered} events could not be applied in the replay")
    for table in result.tables:
        if table.only_live or table.only_replayed:
            out.show(
                f"  {table.table}: {table.only_live} rows only in the live view, "
                f"{table.only_replayed} only in the replay"
            )
            for label, rows in (("live", table.only_live_examples), ("replay", table.only_replayed_examples)):
                for row in rows:
                    out.show(f"    {label}: {row}")
    for name, why in sorted(result.skipped.items()):
        out.show(f"  {name}: not compared ({why})")


def _as_dict(result: events_pb2.ProjectionReplayResult) -> dict[str, Any]:
    return MessageToDict(result, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _describe(service: LogService, target: str, error: aio.AioRpcError) -> list[str]:
    name = service.name
    if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return [
            f"error: {name} refused the token: {error.code().name}: {error.details() or 'no details'}",
            "a replay needs a token with the auditor role: set MODELYARD_TOKEN (or --token) to one "
            "from whoever issues tokens",
        ]
    if is_unreachable(error):
        return describe_rpc_error(error, target, service.address)
    return [f"error: {name}: {line.removeprefix('error: ')}" for line in describe_rpc_error(error, target)]
