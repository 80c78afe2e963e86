"""`yard edge list | show` and `yard fleet status`: the edge fleet as deploy-svc sees it (running and
intended versions, drift, heartbeats, deployment history), and the mobile app's one-call status."""

from __future__ import annotations

from typing import Annotated

import typer

from modelyard.v1 import deploy_pb2
from modelyard_cli.commands.deploy_pages import collect_pages
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.invocation import call_deploy_svc, output_for
from modelyard_cli.output import message_dict
from modelyard_cli.render.edge import mobile_status_view, server_view, servers_table

Org = Annotated[
    str | None,
    typer.Option("--org", help="The organization (default: your token's).", show_default=False),
]
ServerId = Annotated[
    str,
    typer.Argument(metavar="SERVER", help="The edge server's id (see `yard edge list`).", show_default=False),
]


def list_servers(
    ctx: typer.Context,
    org: Org = None,
    environment: Annotated[
        str | None, typer.Option("--environment", help="Only this environment's servers.", show_default=False)
    ] = None,
    drift_only: Annotated[
        bool, typer.Option("--drift-only", help="Only servers running another version than intended.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="At most this many servers.")] = 100,
    all_pages: Annotated[bool, typer.Option("--all", help="Every matching server (all pages).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List edge servers: running and intended versions, drift, online, last heartbeat, free disk."""
    request = deploy_pb2.ListEdgeServersRequest(
        org_id=org or "", environment=environment or "", drift_only=drift_only
    )
    servers: deploy_pb2.ListEdgeServersResponse = call_deploy_svc(
        ctx,
        lambda svc: collect_pages(
            svc.deploy.ListEdgeServers, request, "servers", None if all_pages else limit
        ),
    )
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(servers))
        return
    out.show(servers_table(servers.servers))
    if servers.next_page_token:
        out.hint(f"showing the first {len(servers.servers)} servers; --all or a larger --limit for more")


def show(ctx: typer.Context, server_id: ServerId, org: Org = None, as_json: JsonFlag = False) -> None:
    """Show one edge server in full and its deployment history (newest first)."""
    request = deploy_pb2.EdgeServerRef(server_id=server_id, org_id=org or "")
    detail = call_deploy_svc(ctx, lambda svc: svc.deploy.GetEdgeServer(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(detail))
    else:
        out.show(server_view(detail))


def fleet_status(ctx: typer.Context, org: Org = None, as_json: JsonFlag = False) -> None:
    """The mobile app's read-only status in one call: training jobs, and the active model per edge server."""
    request = deploy_pb2.MobileStatusRequest(org_id=org or "")
    status: deploy_pb2.MobileStatus = call_deploy_svc(ctx, lambda svc: svc.deploy.GetMobileStatus(request))
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(message_dict(status))
    else:
        out.show(mobile_status_view(status))
