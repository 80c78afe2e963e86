"""AuditService: the audit view and the lineage graph, read-only (docs/audit.md, "Audit view and lineage").

Who reads what (job-svc's policy.py): super_admin and auditor read every organization; org_admin
(Enterprise plan) only its own, forced by the interceptor through each request's `org_id`; every
other role is refused. There is no command here, so no role changes anything through it. Sample file
URIs go only to callers who may read the organization's files (super_admin, org_admin): auditors
check who did what and the files' SHA-256, not the customers' data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from grpc import aio
from sqlalchemy.ext.asyncio import AsyncEngine
from typing_extensions import override

from modelyard.v1 import audit_pb2, audit_pb2_grpc
from modelyard_events.domain_errors import InvalidArgument, NotFound, PermissionDenied
from modelyard_events.plans import Plan
from modelyard_events.schemas.bounds import checked_identifier
from modelyard_grpc import Role, current_principal
from modelyard_grpc.values import timestamp
from modelyard_job.domain.plans import month_of
from modelyard_job.projections import audit_queries as q
from modelyard_job.projections.audit_rows import AuditRow
from modelyard_job.projections.lineage_rows import NODE_KINDS, sample_file_uri
from modelyard_job.projections.usage_views import read_usage

Context = aio.ServicerContext[Any, Any]
DEFAULT_AUDIT_PAGE = 100
DEFAULT_LINEAGE_PAGE = 200
_DIRECTIONS = {
    audit_pb2.LINEAGE_DIRECTION_UNSPECIFIED: ["up", "down"],
    audit_pb2.LINEAGE_DIRECTION_BOTH: ["up", "down"],
    audit_pb2.LINEAGE_DIRECTION_UPSTREAM: ["up"],
    audit_pb2.LINEAGE_DIRECTION_DOWNSTREAM: ["down"],
}


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    value: timestamp_pb2.Timestamp = getattr(message, field)
    return value.ToDatetime(tzinfo=UTC)


def _scope(org_id: str) -> str | None:
    # The interceptor has already filled an org_admin's own organization in, or refused another.
    return org_id or None


def audit_to_proto(row: AuditRow) -> audit_pb2.AuditEvent:
    """An audit row as its message."""
    return audit_pb2.AuditEvent(
        source=row.source,
        position=row.position,
        event_id=row.event_id,
        type=row.type,
        stream_type=row.stream_type,
        stream_id=row.stream_id,
        occurred_at=timestamp(row.occurred_at),
        actor_subject=row.actor_subject,
        actor_roles=list(row.actor_roles),
        org_id=row.org_id or "",
        reason=row.reason,
        correlation_id=row.correlation_id,
        causation_id=row.causation_id or "",
    )


def may_read_files(org_id: str | None) -> bool:
    """Whether the caller may have the file URIs of samples of organization `org_id`."""
    principal = current_principal()
    if principal.has_role(Role.SUPER_ADMIN):
        return True
    return principal.has_role(Role.ORG_ADMIN) and org_id is not None and principal.org_id == org_id


def node_to_proto(row: q.NodeRow, with_files: bool) -> audit_pb2.LineageNode:
    """A node as its message (the sample's file URI only `with_files`)."""
    message = audit_pb2.LineageNode(kind=row.kind, id=row.id, org_id=row.org_id or "", label=row.label)
    for act, subject, at, detail in row.acts:
        message.acts.append(audit_pb2.LineageAct(act=act, subject=subject, at=timestamp(at), detail=detail))
    if row.sample is not None:
        s = row.sample
        sample = audit_pb2.SampleProvenance(
            dataset_id=s["dataset_id"] or "",
            filename=s["filename"] or "",
            sha256=s["sha256"] or "",
            size_bytes=s["size_bytes"] or 0,
            media_type=s["media_type"] or "",
            source_camera_id=s["source_camera_id"] or "",
            metadata_json=json.dumps(s["metadata"], sort_keys=True) if s["metadata"] is not None else "",
        )
        if s["captured_at"] is not None:
            sample.captured_at.CopyFrom(timestamp(s["captured_at"]))
        if with_files and s["dataset_id"] and s["sha256"] and may_read_files(row.org_id):
            sample.file_uri = sample_file_uri(s["dataset_id"], s["sha256"])
        message.sample.CopyFrom(sample)
    return message


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """modelyard.v1.AuditService over the audit and lineage tables in `schema`."""

    def __init__(
        self,
        engine: AsyncEngine,
        schema: str,
        plan_of: Callable[[str], Plan],
        clock: Callable[[], datetime],
    ) -> None:
        self._engine, self._schema = engine, schema
        self._plan_of, self._clock = plan_of, clock

    @override
    async def GetUsage(self, request: audit_pb2.UsageRequest, context: Context) -> audit_pb2.Usage:
        # The interceptor filled an org_admin's own organization in; the unscoped roles must name one.
        org_id = checked_identifier(request.org_id, "org_id")
        if org_id is None:
            raise InvalidArgument("org_id", "name the organization whose usage to show")
        plan = self._plan_of(org_id)
        month = month_of(self._clock().astimezone(UTC).date())  # the month job-svc's quota counts
        async with self._engine.connect() as conn:
            usage = await read_usage(conn, self._schema, org_id, month)
        return audit_pb2.Usage(
            org_id=org_id,
            plan_key=plan.key,
            plan_name=plan.name,
            month=month,
            jobs_this_month=usage.jobs_this_month,
            jobs_limit=plan.training_jobs_per_month,
            dataset_bytes=usage.dataset_bytes,
            dataset_bytes_limit=plan.dataset_bytes,
            modules=[
                audit_pb2.ModuleUsage(
                    ai_module=module, active_models=active, limit=plan.active_models_per_module
                )
                for module, active in usage.active_models.items()
            ],
            active_models_limit=plan.active_models_per_module,
        )

    @override
    async def SearchAudit(
        self, request: audit_pb2.SearchAuditRequest, context: Context
    ) -> audit_pb2.SearchAuditResponse:
        since, until = _time(request, "since"), _time(request, "until")
        if since is not None and until is not None and until <= since:
            raise InvalidArgument("until", "must be after since")
        filters = q.AuditFilter(
            since=since,
            until=until,
            actor=request.actor,
            org_id=_scope(request.org_id),
            stream_type=request.stream_type,
            stream_id=request.stream_id,
            type=request.type,
            source=request.source,
        )
        return await self._page(filters, request.page_token, request.page_size)

    @override
    async def FollowCorrelation(
        self, request: audit_pb2.FollowCorrelationRequest, context: Context
    ) -> audit_pb2.SearchAuditResponse:
        if not request.correlation_id:
            raise InvalidArgument("correlation_id", "name the correlation id to follow")
        filters = q.AuditFilter(org_id=_scope(request.org_id), correlation_id=request.correlation_id)
        return await self._page(filters, request.page_token, request.page_size)

    async def _page(self, filters: q.AuditFilter, token: str, size: int) -> audit_pb2.SearchAuditResponse:
        limit = q.page_size(size, DEFAULT_AUDIT_PAGE)
        after = q.decode_cursor(token)
        async with self._engine.connect() as conn:
            rows, cursor = await q.search_audit(conn, self._schema, filters, after, limit)
        return audit_pb2.SearchAuditResponse(
            events=[audit_to_proto(r) for r in rows],
            next_page_token=q.encode_cursor(cursor) if cursor else "",
        )

    @override
    async def GetLineage(
        self, request: audit_pb2.GetLineageRequest, context: Context
    ) -> audit_pb2.GetLineageResponse:
        if request.kind not in NODE_KINDS:
            raise InvalidArgument("kind", f"must be one of {', '.join(NODE_KINDS)}")
        if not request.id:
            raise InvalidArgument("id", f"name the {request.kind} to start from")
        directions = _DIRECTIONS.get(request.direction)
        if directions is None:
            raise InvalidArgument("direction", "must be upstream, downstream or both")
        limit = q.page_size(request.page_size, DEFAULT_LINEAGE_PAGE)
        offset = _offset(request.page_token)
        scope = _scope(request.org_id)
        async with self._engine.connect() as conn:
            start = await q.node(conn, self._schema, request.kind, request.id)
            if start is None:
                raise NotFound(
                    f"no {request.kind} {request.id} in the lineage graph (yet: it follows the logs)"
                )
            if scope is not None and start.org_id != scope:
                # Which organization owns it is not the caller's to learn: only its own is named.
                raise PermissionDenied(f"{request.kind} {request.id} is not in organization {scope}")
            reached = await q.walk(conn, self._schema, request.kind, request.id, directions, scope)
            page = reached[offset : offset + limit]
            seen = set(reached[: offset + limit])
            node_rows = await q.nodes(conn, self._schema, page)
            edge_rows = await q.edges_among(conn, self._schema, page, seen)
            (start_row,) = await q.nodes(conn, self._schema, [(request.kind, request.id)])
        more = offset + limit < len(reached)
        return audit_pb2.GetLineageResponse(
            start=node_to_proto(start_row, with_files=True),
            nodes=[node_to_proto(n, with_files=True) for n in node_rows],
            edges=[
                audit_pb2.LineageEdge(
                    from_kind=e.up_kind,
                    from_id=e.up_id,
                    to_kind=e.down_kind,
                    to_id=e.down_id,
                    relation=e.relation,
                )
                for e in edge_rows
            ],
            next_page_token=str(offset + limit) if more else "",
        )


def _offset(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit() or int(token) > q.MAX_LINEAGE_NODES:
        raise InvalidArgument("page_token", "is not a token from a previous page; leave it empty")
    return int(token)
