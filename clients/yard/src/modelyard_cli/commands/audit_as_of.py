"""`yard audit as-of KIND ID --at TIME` (attached to `audit_app` in main.py): an aggregate as the log
said it was at a past instant (`modelyard.v1.ProjectionAudit/StateAsOf`), folded by the service
that owns it: a job (job-svc), a model version (registry-svc), a dataset (dataset-svc), or an
organization's fleet (deploy-svc).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from grpc import aio

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_cli.commands.audit_log import LogService, service_named, target_of
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.invocation import cli_state, command_token, output_for
from modelyard_cli.output import fail
from modelyard_cli.rpc_errors import describe_rpc_error
from modelyard_grpc import TlsSettings

KINDS = {"job": "job-svc", "model-version": "registry-svc", "dataset": "dataset-svc", "fleet": "deploy-svc"}


def as_of(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help=f"What to rebuild: {', '.join(KINDS)}.")],
    entity_id: Annotated[str, typer.Argument(metavar="ID", help="Its id (for a fleet: the organization).")],
    at: Annotated[str, typer.Option("--at", help="The instant (ISO 8601; UTC when no offset is given).")],
    as_json: JsonFlag = False,
) -> None:
    """Show a job, model version, dataset or fleet as the event log said it was at an instant."""
    out = output_for(ctx, as_json)
    if kind not in KINDS:
        fail(f"error: no kind {kind!r}: choose from {', '.join(KINDS)}")
    instant = _instant(at)
    service = service_named(KINDS[kind])
    connection = cli_state(ctx).connection
    target = target_of(service, connection, "")
    request = events_pb2.AsOfRequest(kind=kind.replace("-", "_"), id=entity_id)
    request.at.FromDatetime(instant)
    try:
        state = asyncio.run(_call(service, target, command_token(ctx), connection.tls, request))
    except aio.AioRpcError as error:
        fail(
            *[
                f"error: {service.name}: {line.removeprefix('error: ')}"
                for line in describe_rpc_error(error, target)
            ]
        )
    document: dict[str, Any] = json.loads(state.state_json)
    if out.as_json:
        out.json_line(
            {
                "kind": kind,
                "id": entity_id,
                "at": instant.isoformat(),
                "org_id": state.org_id,
                "events_applied": state.events_applied,
                "last_event_at": state.last_event_at.ToDatetime(tzinfo=UTC).isoformat(),
                "state": document,
            }
        )
        return
    last = state.last_event_at.ToDatetime(tzinfo=UTC).isoformat()
    out.show(
        f"{kind} {entity_id} at {instant.isoformat()} (organization {state.org_id or '-'}; "
        f"{state.events_applied} events, the last at {last})"
    )
    # One line per field, its value as compact JSON: a version's config lists every class name.
    out.lines([f"  {key}: {json.dumps(value, ensure_ascii=False)}" for key, value in document.items()])


def _instant(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        fail(f"error: --at {text!r} is not an ISO 8601 time (e.g. 2026-12-02T14:30:00Z)")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _call(
    service: LogService, target: str, token: str, tls: TlsSettings | None, request: events_pb2.AsOfRequest
) -> events_pb2.AsOfState:
    async with (tls or TlsSettings.from_environ({})).grpc_channel(target, token) as channel:
        stub: Any = events_pb2_grpc.ProjectionAuditStub(channel)
        state: events_pb2.AsOfState = await stub.StateAsOf(request, timeout=120)
        return state
