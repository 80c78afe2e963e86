"""Audit: job-svc's audit view searched (SearchAudit), one correlation id followed across services
(FollowCorrelation), and the lineage graph from any node (GetLineage), drawn as an SVG server-side.

Read-only. A refusal (an org_admin asking for another organization) is shown on the page, above the
form that asked, with the service's status and message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.v1 import audit_pb2
from modelyard_console.audit_view import (
    DIRECTIONS,
    PAGE_SIZE,
    BadFilter,
    audit_row,
    filters_of,
    search_request,
)
from modelyard_console.gateway import Refusal, http_status
from modelyard_console.lineage_graph import COLUMNS, KIND_NAMES, lay_out
from modelyard_console.sessions import Session
from modelyard_console.web import console_of, render, signed_in

LINEAGE_PAGE = 200  # nodes per page


def _page(request: Request, session: Session, template: str, title: str, **context: Any) -> Response:
    refusal: Refusal | None = context.get("refusal")
    status_code = http_status(refusal) if refusal else 400 if context.get("error") else 200
    return render(request, template, session, status_code, title=title, page="audit", **context)


def _next_url(path: str, request: Request, token: str) -> str:
    if not token:
        return ""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    return f"{path}?{urlencode([*query, ('page', token)])}"


async def audit_page(request: Request) -> Response:
    """The search form and one page of the events it finds, oldest first."""
    session, token = signed_in(request)
    filters = filters_of(request.query_params)
    context: dict[str, Any] = {"filters": filters, "rows": [], "next_url": ""}
    if not request.query_params:  # the form alone until a search is asked for
        return _page(request, session, "audit.html", "Audit", **context)
    try:
        search = search_request(filters, request.query_params.get("page", ""))
        async with console_of(request).gateway.audit(token) as audit:
            found = await audit.SearchAudit(search)
        context |= {"rows": [audit_row(e) for e in found.events], "searched": True}
        context["next_url"] = _next_url("/audit", request, found.next_page_token)
    except BadFilter as error:
        context["error"] = str(error)
    except Refusal as refusal:
        context["refusal"] = refusal
    return _page(request, session, "audit.html", "Audit", **context)


async def correlation_page(request: Request) -> Response:
    """Every event that carries one correlation id, across services, in time order (a page of them)."""
    session, token = signed_in(request)
    correlation_id, org_id = request.query_params.get("id", ""), request.query_params.get("org", "")
    context: dict[str, Any] = {"correlation_id": correlation_id, "org": org_id, "rows": [], "next_url": ""}
    follow = audit_pb2.FollowCorrelationRequest(
        correlation_id=correlation_id, org_id=org_id, page_size=PAGE_SIZE,
        page_token=request.query_params.get("page", ""),
    )  # fmt: skip
    try:
        async with console_of(request).gateway.audit(token) as audit:
            found = await audit.FollowCorrelation(follow)
        context["rows"] = [audit_row(e) for e in found.events]
        context["next_url"] = _next_url("/audit/correlation", request, found.next_page_token)
    except Refusal as refusal:
        context["refusal"] = refusal
    return _page(request, session, "audit_correlation.html", f"Correlation {correlation_id}", **context)


async def lineage_page(request: Request) -> Response:
    """The lineage graph from one node, a page of nodes at a time: an SVG and the same as a list."""
    session, token = signed_in(request)
    query = request.query_params
    kind, node_id, org_id = query.get("kind", ""), query.get("id", ""), query.get("org", "")
    direction = query.get("direction", "both") if query.get("direction") in DIRECTIONS else "both"
    context: dict[str, Any] = {
        "kind": kind, "node_id": node_id, "org": org_id, "direction": direction, "graph": None,
        "kinds": [(k, KIND_NAMES[k]) for k in COLUMNS], "next_url": "",
    }  # fmt: skip
    if kind and node_id:
        lineage = audit_pb2.GetLineageRequest(
            kind=kind, id=node_id, direction=DIRECTIONS[direction], org_id=org_id,
            page_size=LINEAGE_PAGE, page_token=query.get("page", ""),
        )  # fmt: skip
        try:
            async with console_of(request).gateway.audit(token) as audit:
                found = await audit.GetLineage(lineage)
            context["graph"] = lay_out(found.start, list(found.nodes), list(found.edges))
            context["next_url"] = _next_url("/audit/lineage", request, found.next_page_token)
        except Refusal as refusal:
            context["refusal"] = refusal
    return _page(request, session, "audit_lineage.html", "Lineage", **context)


routes = [
    Route("/audit", audit_page, methods=["GET"]),
    Route("/audit/correlation", correlation_page, methods=["GET"]),
    Route("/audit/lineage", lineage_page, methods=["GET"]),
]
