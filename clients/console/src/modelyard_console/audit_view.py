"""The Audit page's form read into AuditService requests, and events as its table shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from modelyard.v1 import audit_pb2
from modelyard_console.lineage_graph import lineage_url
from modelyard_console.values import format_time
from modelyard_grpc.values import timestamp

SEARCH_FIELDS = ("since", "until", "actor", "org", "stream_type", "stream_id", "type", "source")
PAGE_SIZE = 100
# The audit's stream types whose id is a lineage node's id, and the node's kind.
LINEAGE_KINDS = {
    "training_job": "job",
    "sample": "sample",
    "deployment": "deployment",
    "edge_server": "edge_server",
}
DIRECTIONS = {
    "both": audit_pb2.LINEAGE_DIRECTION_BOTH,
    "up": audit_pb2.LINEAGE_DIRECTION_UPSTREAM,
    "down": audit_pb2.LINEAGE_DIRECTION_DOWNSTREAM,
}


class BadFilter(ValueError):
    """A filter the page cannot send (a time that is no time)."""


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One event in the table, with the links that narrow the search or follow it."""

    at: str
    source: str
    type: str
    entity: str
    entity_url: str
    lineage_url: str
    actor: str
    actor_url: str
    roles: str
    org_id: str
    reason: str
    correlation_id: str
    correlation_url: str


def filters_of(query: QueryParams) -> dict[str, str]:
    """The search form's fields as given (trimmed; the empty ones too, so the form shows them)."""
    return {name: query.get(name, "").strip() for name in SEARCH_FIELDS}


def _instant(text: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise BadFilter(f"{name}: {text!r} is not a time: write it as 2026-12-03T09:30 (UTC)") from error
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def search_request(filters: dict[str, str], page_token: str) -> audit_pb2.SearchAuditRequest:
    """SearchAudit for the form's filters (times without a zone are UTC); BadFilter for a bad time."""
    request = audit_pb2.SearchAuditRequest(
        actor=filters["actor"], org_id=filters["org"], stream_type=filters["stream_type"],
        stream_id=filters["stream_id"], type=filters["type"], source=filters["source"],
        page_size=PAGE_SIZE, page_token=page_token,
    )  # fmt: skip
    if (since := _instant(filters["since"], "since")) is not None:
        request.since.CopyFrom(timestamp(since))
    if (until := _instant(filters["until"], "until")) is not None:
        request.until.CopyFrom(timestamp(until))
    return request


def search_url(**filters: str) -> str:
    """The Audit page searching with `filters` (empty ones left out)."""
    return "/audit?" + urlencode({k: v for k, v in filters.items() if v})


def audit_row(event: audit_pb2.AuditEvent) -> AuditRow:
    """`event` for the table."""
    kind = LINEAGE_KINDS.get(event.stream_type)
    correlation = event.correlation_id
    return AuditRow(
        at=format_time(event.occurred_at), source=event.source, type=event.type,
        entity=f"{event.stream_type}/{event.stream_id}",
        entity_url=search_url(stream_type=event.stream_type, stream_id=event.stream_id),
        lineage_url=lineage_url(kind, event.stream_id) if kind else "",
        actor=event.actor_subject,
        actor_url=search_url(actor=event.actor_subject) if event.actor_subject else "",
        roles=", ".join(event.actor_roles), org_id=event.org_id, reason=event.reason,
        correlation_id=correlation,
        correlation_url="/audit/correlation?" + urlencode({"id": correlation}) if correlation else "",
    )  # fmt: skip
