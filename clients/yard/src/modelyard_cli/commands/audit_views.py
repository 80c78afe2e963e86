"""`yard audit events`, `yard audit trail` and `yard lineage`: job-svc's audit view and lineage graph
(AuditService; docs/audit.md, "Audit view and lineage").

Read-only, over job-svc's address (--target / MODELYARD_JOB_SVC_TARGET). An auditor's token reads
every organization; an org_admin's only its own (another `--org` is refused with PERMISSION_DENIED).
`register(audit_app, app)` attaches the commands (main.py calls it once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer

from modelyard.v1 import audit_pb2, audit_pb2_grpc
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import JOB_SVC
from modelyard_cli.invocation import _call, cli_state, output_for
from modelyard_cli.output import Output, fail, message_dict
from modelyard_grpc.values import timestamp

T = TypeVar("T")
MAX_PAGE = 1000

Since = Annotated[
    datetime | None,
    typer.Option("--since", help="From this instant (ISO 8601, UTC if no zone).", show_default=False),
]
Until = Annotated[
    datetime | None, typer.Option("--until", help="Before this instant (ISO 8601).", show_default=False)
]
Org = Annotated[
    str, typer.Option("--org", help="Only this organization (an org_admin: its own, the default).")
]
PageSize = Annotated[int, typer.Option("--page-size", min=1, max=MAX_PAGE, help="Rows or nodes per page.")]
PageToken = Annotated[str, typer.Option("--page-token", help="Continue after a previous page (its token).")]
AllPages = Annotated[bool, typer.Option("--all", help="Follow every page (default: one page and its token).")]


def _call_audit(ctx: typer.Context, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work` against job-svc's AuditService; a refused call ends the command (exit 2)."""
    return _call(ctx, cli_state(ctx).connection.target, JOB_SVC, audit_pb2_grpc.AuditServiceStub, work)


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _event_line(e: audit_pb2.AuditEvent) -> str:
    at = e.occurred_at.ToDatetime().isoformat(timespec="milliseconds")
    reason = f"  reason: {e.reason}" if e.reason else ""
    org = e.org_id or "-"
    return (
        f"{at}Z  {e.source}#{e.position}  {e.type}  {e.stream_type}/{e.stream_id}  by {e.actor_subject}"
        f"  org {org}  corr {e.correlation_id}{reason}"
    )


def _print_events(out: Output, events: list[audit_pb2.AuditEvent], token: str) -> None:
    if out.as_json:
        for e in events:
            out.json_line(message_dict(e))
    else:
        out.lines([_event_line(e) for e in events] or ["no events"])
    if token:
        out.hint(f"more: --page-token {token}  (or --all)")


def events(
    ctx: typer.Context,
    since: Since = None,
    until: Until = None,
    actor: Annotated[str, typer.Option("--actor", help="Only this actor (token subject).")] = "",
    org: Org = "",
    entity: Annotated[
        str, typer.Option("--entity", help="Only this entity: STREAM_TYPE/ID (e.g. training_job/job-1).")
    ] = "",
    type_: Annotated[str, typer.Option("--type", help="Only this event type (e.g. JobCancelled).")] = "",
    source: Annotated[str, typer.Option("--source", help="Only this service's log (dataset, job, …).")] = "",
    page_size: PageSize = 100,
    page_token: PageToken = "",
    all_pages: AllPages = False,
    as_json: JsonFlag = False,
) -> None:
    """Events of every service in time order, with who, organization, reason and correlation id."""
    stream_type, _, stream_id = entity.partition("/")
    if entity and not (stream_type and stream_id):
        fail(f"error: --entity {entity!r} must be STREAM_TYPE/ID, e.g. training_job/job-1")
    request = audit_pb2.SearchAuditRequest(
        actor=actor, org_id=org, stream_type=stream_type, stream_id=stream_id, type=type_, source=source,
        page_size=page_size, page_token=page_token,
    )  # fmt: skip
    if (start := _utc(since)) is not None:
        request.since.CopyFrom(timestamp(start))
    if (end := _utc(until)) is not None:
        request.until.CopyFrom(timestamp(end))
    found, token = _pages(ctx, lambda stub, token: stub.SearchAudit(_with_token(request, token)), all_pages)
    _print_events(output_for(ctx, as_json), found, token)


def trail(
    ctx: typer.Context,
    correlation_id: Annotated[str, typer.Argument(help="The correlation id to follow.", show_default=False)],
    org: Org = "",
    as_json: JsonFlag = False,
) -> None:
    """Every event that carries one correlation id, across services, in time order (all pages)."""
    request = audit_pb2.FollowCorrelationRequest(
        correlation_id=correlation_id, org_id=org, page_size=MAX_PAGE
    )
    found, _ = _pages(ctx, lambda stub, token: stub.FollowCorrelation(_with_token(request, token)), True)
    _print_events(output_for(ctx, as_json), found, "")


def _with_token(request: Any, token: str) -> Any:
    copy = type(request)()
    copy.CopyFrom(request)
    if token:
        copy.page_token = token
    return copy


def _pages(
    ctx: typer.Context, page: Callable[[Any, str], Awaitable[Any]], all_pages: bool
) -> tuple[list[audit_pb2.AuditEvent], str]:
    async def work(stub: Any) -> tuple[list[audit_pb2.AuditEvent], str]:
        found: list[audit_pb2.AuditEvent] = []
        token = ""
        while True:
            response = await page(stub, token)
            found += response.events
            token = response.next_page_token
            if not (all_pages and token):
                return found, token

    return _call_audit(ctx, work)


def lineage(
    ctx: typer.Context,
    node: Annotated[
        str,
        typer.Argument(
            help="KIND:ID, KIND one of edge_server, deployment, model_version, job, dataset_version "
            "(ID <dataset>/<n>), sample.",
            show_default=False,
        ),
    ],
    up: Annotated[
        bool, typer.Option("--up", help="Only what it was made from (towards the samples).")
    ] = False,
    down: Annotated[bool, typer.Option("--down", help="Only what was made from it (towards edges).")] = False,
    org: Org = "",
    page_size: PageSize = 200,
    page_token: PageToken = "",
    all_pages: AllPages = False,
    as_json: JsonFlag = False,
) -> None:
    """The lineage graph from one node: nodes with who did what to them, and the edges between them."""
    kind, _, node_id = node.partition(":")
    if not (kind and node_id):
        fail(f"error: {node!r} must be KIND:ID, e.g. model_version:mv-1 or sample:ds-1:ab12")
    if up and down:
        fail("error: give --up or --down, not both (neither: both directions)")
    direction = (
        audit_pb2.LINEAGE_DIRECTION_UPSTREAM
        if up
        else audit_pb2.LINEAGE_DIRECTION_DOWNSTREAM
        if down
        else audit_pb2.LINEAGE_DIRECTION_BOTH
    )

    async def work(stub: Any) -> tuple[list[Any], list[Any], str]:
        nodes: list[Any] = []
        edges: list[Any] = []
        token = page_token
        while True:
            response = await stub.GetLineage(
                audit_pb2.GetLineageRequest(
                    kind=kind,
                    id=node_id,
                    direction=direction,
                    org_id=org,
                    page_size=page_size,
                    page_token=token,
                )
            )
            nodes += response.nodes
            edges += response.edges
            token = response.next_page_token
            if not (all_pages and token):
                return nodes, edges, token

    nodes, edges, token = _call_audit(ctx, work)
    out = output_for(ctx, as_json)
    if out.as_json:
        out.document(
            {
                "nodes": [message_dict(n) for n in nodes],
                "edges": [message_dict(e) for e in edges],
                "next_page_token": token,
            }
        )
    else:
        out.lines(lineage_lines(nodes, edges))
    if token:
        out.hint(f"more: --page-token {token}  (or --all)")


def lineage_lines(nodes: list[audit_pb2.LineageNode], edges: list[audit_pb2.LineageEdge]) -> list[str]:
    """Each node, who did what to it, and what it was made from."""
    made_from: dict[tuple[str, str], list[str]] = {}
    for e in edges:
        made_from.setdefault((e.to_kind, e.to_id), []).append(f"{e.from_kind}:{e.from_id} ({e.relation})")
    lines: list[str] = []
    for n in nodes:
        label = f"  {n.label}" if n.label else ""
        lines.append(f"{n.kind}:{n.id}{label}  org {n.org_id or '-'}")
        if n.HasField("sample"):
            s = n.sample
            extra = "".join(
                f"  {name} {value}"
                for name, value in (("camera", s.source_camera_id), ("file", s.file_uri))
                if value
            )
            lines.append(f"    sample {s.filename}  sha256 {s.sha256[:12]}…  {s.size_bytes} B{extra}")
        for act in n.acts:
            detail = f"  ({act.detail})" if act.detail else ""
            at = act.at.ToDatetime().isoformat(timespec="seconds")
            lines.append(f"    {act.act} by {act.subject} at {at}Z{detail}")
        for parent in made_from.get((n.kind, n.id), []):
            lines.append(f"    ← {parent}")
    return lines or ["no nodes"]


def register(audit_app: typer.Typer, app: typer.Typer) -> None:
    """Attach `audit events`, `audit trail` (on the auditors' sub-app) and `lineage` (top level)."""
    audit_app.command("events")(events)
    audit_app.command("trail")(trail)
    app.command("lineage")(lineage)
