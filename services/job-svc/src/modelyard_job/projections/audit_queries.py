"""Reads of the audit view and the lineage graph (keyset pages; the caller's organization applied).

`org_id` None means "every organization" (auditors, super_admin); a string confines every row,
node and edge to that organization (org_admin, or an auditor who asks for one).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.domain_errors import InvalidArgument
from modelyard_job.projections.audit_rows import AuditRow

MAX_PAGE = 1000
MAX_LINEAGE_NODES = 100_000  # a walk that reaches more is cut (and says so through its last page)
MAX_DEPTH = 64


@dataclass(frozen=True)
class AuditFilter:
    """What SearchAudit asks for (empty strings / None: no filter)."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    org_id: str | None = None
    stream_type: str = ""
    stream_id: str = ""
    type: str = ""
    source: str = ""
    correlation_id: str = ""


Cursor = tuple[datetime, str, int]


def encode_cursor(cursor: Cursor) -> str:
    """An opaque page token for the row after which the next page starts."""
    raw = json.dumps([cursor[0].isoformat(), cursor[1], cursor[2]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor | None:
    """The cursor of a page token ("" → None); InvalidArgument for a token this service did not make."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, source, position = json.loads(raw)
        return datetime.fromisoformat(at), str(source), int(position)
    except (ValueError, TypeError) as error:
        raise InvalidArgument("page_token", "is not a token from a previous page; leave it empty") from error


def page_size(requested: int, default: int) -> int:
    """The page size asked for, defaulted and checked."""
    if requested < 0 or requested > MAX_PAGE:
        raise InvalidArgument("page_size", f"must be between 1 and {MAX_PAGE} (0 means {default})")
    return requested or default


def _where(f: AuditFilter, after: Cursor | None) -> tuple[str, dict[str, Any]]:
    clauses, params = ["true"], dict[str, Any]()
    for column, value in (
        ("actor_subject", f.actor),
        ("stream_type", f.stream_type),
        ("stream_id", f.stream_id),
        ("type", f.type),
        ("source", f.source),
        ("correlation_id", f.correlation_id),
    ):
        if value:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if f.org_id is not None:
        clauses.append("org_id = :org_id")
        params["org_id"] = f.org_id
    if f.since is not None:
        clauses.append("occurred_at >= :since")
        params["since"] = f.since
    if f.until is not None:
        clauses.append("occurred_at < :until")
        params["until"] = f.until
    if after is not None:
        clauses.append("(occurred_at, source, position) > (:after_at, :after_source, :after_position)")
        params.update(after_at=after[0], after_source=after[1], after_position=after[2])
    return " AND ".join(clauses), params


async def search_audit(
    conn: AsyncConnection, schema: str, f: AuditFilter, after: Cursor | None, limit: int
) -> tuple[list[AuditRow], Cursor | None]:
    """One page of matching rows in (occurred_at, source, position) order, and the next page's cursor."""
    where, params = _where(f, after)
    rows = (
        await conn.execute(
            text(
                "SELECT source, position, event_id, type, stream_type, stream_id, occurred_at,"
                " actor_subject, actor_roles, org_id, reason, correlation_id, causation_id"
                f" FROM {schema}.audit_events"
                f" WHERE {where} ORDER BY occurred_at, source, position LIMIT :limit"
            ),
            {**params, "limit": limit + 1},
        )
    ).all()
    found = [
        AuditRow(
            source=r.source,
            position=r.position,
            event_id=str(r.event_id),
            type=r.type,
            stream_type=r.stream_type,
            stream_id=r.stream_id,
            occurred_at=r.occurred_at,
            actor_subject=r.actor_subject,
            actor_roles=tuple(r.actor_roles),
            org_id=r.org_id,
            reason=r.reason,
            correlation_id=r.correlation_id,
            causation_id=r.causation_id,
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    last = found[-1] if found and more else None
    return found, (last.occurred_at, last.source, last.position) if last else None


# ---- lineage ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRow:
    """A node with its sample columns (None for other kinds) and acts."""

    kind: str
    id: str
    org_id: str | None
    label: str
    sample: dict[str, Any] | None
    acts: list[tuple[str, str, datetime, str]] = field(default_factory=list)


@dataclass(frozen=True)
class EdgeRow:
    """`down` was made from `up`."""

    down_kind: str
    down_id: str
    up_kind: str
    up_id: str
    relation: str


_WALK = """
WITH RECURSIVE walk(kind, id, depth) AS (
    SELECT CAST(:kind AS text), CAST(:id AS text), 0
    UNION
    SELECT e.{next_kind}, e.{next_id}, w.depth + 1
    FROM walk w JOIN {s}.lineage_edges e ON e.{this_kind} = w.kind AND e.{this_id} = w.id
    WHERE w.depth < :max_depth AND (CAST(:org_id AS text) IS NULL OR e.org_id = :org_id)
)
SELECT kind, id, min(depth) AS depth FROM walk GROUP BY kind, id"""


async def node(conn: AsyncConnection, schema: str, kind: str, node_id: str) -> NodeRow | None:
    """One node as stored, without its acts, or None when the graph has no such node (not even an
    edge names it: a job whose dataset version's log is behind is still a start)."""
    named = (
        await conn.execute(
            text(
                f"(SELECT org_id FROM {schema}.lineage_nodes WHERE kind = :kind AND id = :id)"
                f" UNION ALL (SELECT org_id FROM {schema}.lineage_edges"
                " WHERE down_kind = :kind AND down_id = :id LIMIT 1)"
                f" UNION ALL (SELECT org_id FROM {schema}.lineage_edges"
                " WHERE up_kind = :kind AND up_id = :id LIMIT 1)"
            ),
            {"kind": kind, "id": node_id},
        )
    ).all()
    if not named:
        return None
    (found,) = await nodes(conn, schema, [(kind, node_id)], with_acts=False)
    # Only named by an edge so far: the edge's organization is the node's.
    org = found.org_id or next((r.org_id for r in named if r.org_id), None)
    return replace(found, org_id=org)


async def walk(
    conn: AsyncConnection, schema: str, kind: str, node_id: str, directions: list[str], org_id: str | None
) -> list[tuple[str, str]]:
    """Every node reachable from (kind, id), the start first, then by distance, kind and id.

    `directions`: "up" (what it was made from), "down" (what was made from it), or both.
    """
    depths: dict[tuple[str, str], int] = {(kind, node_id): 0}
    for direction in directions:
        sides = (
            {"this_kind": "down_kind", "this_id": "down_id", "next_kind": "up_kind", "next_id": "up_id"}
            if direction == "up"
            else {"this_kind": "up_kind", "this_id": "up_id", "next_kind": "down_kind", "next_id": "down_id"}
        )
        result = await conn.execute(
            text(_WALK.format(s=schema, **sides) + " ORDER BY 3, 1, 2 LIMIT :cap"),
            {"kind": kind, "id": node_id, "org_id": org_id, "max_depth": MAX_DEPTH, "cap": MAX_LINEAGE_NODES},
        )
        for row in result:
            key = (row.kind, row.id)
            depths[key] = min(depths.get(key, row.depth), row.depth)
    return sorted(depths, key=lambda k: (depths[k], k[0], k[1]))[:MAX_LINEAGE_NODES]


async def nodes(
    conn: AsyncConnection, schema: str, keys: list[tuple[str, str]], *, with_acts: bool = True
) -> list[NodeRow]:
    """The stored nodes of `keys`, in that order (a node only named by an edge so far: kind and id only)."""
    if not keys:
        return []
    params = {"kinds": [k for k, _ in keys], "ids": [i for _, i in keys]}
    rows = (
        await conn.execute(
            text(
                f"SELECT n.* FROM {schema}.lineage_nodes n JOIN unnest(CAST(:kinds AS text[]),"
                " CAST(:ids AS text[])) AS k(kind, id) ON n.kind = k.kind AND n.id = k.id"
            ),
            params,
        )
    ).all()
    by_key = {(r.kind, r.id): r for r in rows}
    acts: dict[tuple[str, str], list[tuple[str, str, datetime, str]]] = {}
    if with_acts:
        for a in await conn.execute(
            text(
                f"SELECT a.kind, a.id, act, subject, at, detail FROM {schema}.lineage_acts a JOIN"
                " unnest(CAST(:kinds AS text[]), CAST(:ids AS text[])) AS k(kind, id)"
                " ON a.kind = k.kind AND a.id = k.id ORDER BY a.at, a.source, a.position, a.n"
            ),
            params,
        ):
            acts.setdefault((a.kind, a.id), []).append((a.act, a.subject, a.at, a.detail))
    out = []
    for key in keys:
        r = by_key.get(key)
        sample = None
        if r is not None and r.kind == "sample":
            sample = {
                column: getattr(r, column)
                for column in (
                    "dataset_id", "filename", "sha256", "size_bytes", "media_type",
                    "source_camera_id", "captured_at", "metadata",
                )
            }  # fmt: skip
        out.append(
            NodeRow(
                key[0],
                key[1],
                r.org_id if r is not None else None,
                r.label if r is not None else "",
                sample,
                acts.get(key, []),
            )
        )
    return out


async def edges_among(
    conn: AsyncConnection, schema: str, page: list[tuple[str, str]], seen: set[tuple[str, str]]
) -> list[EdgeRow]:
    """The edges with one end on `page` and the other in `seen` (the page and every earlier one)."""
    if not page:
        return []
    params = {"kinds": [k for k, _ in page], "ids": [i for _, i in page]}
    rows = await conn.execute(
        text(
            f"SELECT e.* FROM {schema}.lineage_edges e JOIN unnest(CAST(:kinds AS text[]),"
            " CAST(:ids AS text[])) AS k(kind, id)"
            " ON (e.down_kind = k.kind AND e.down_id = k.id) OR (e.up_kind = k.kind AND e.up_id = k.id)"
        ),
        params,
    )
    found: dict[tuple[str, str, str, str], EdgeRow] = {}
    for r in rows:
        if (r.down_kind, r.down_id) in seen and (r.up_kind, r.up_id) in seen:
            key = (r.down_kind, r.down_id, r.up_kind, r.up_id)
            found[key] = EdgeRow(r.down_kind, r.down_id, r.up_kind, r.up_id, r.relation)
    return list(found.values())
