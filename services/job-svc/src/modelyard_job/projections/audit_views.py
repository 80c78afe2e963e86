"""AuditViews: every service's events as audit rows, and the lineage graph (issue 14, items 1 and 2).

One projection over the five logs (dataset, job, trainer, registry, deploy), run by its own
ProjectionRunner, so a slow audit insert never holds back the job views the dispatcher waits on.
Its tables live in job-svc's views schema next to the job views; the runner keeps its checkpoint
per source in the same transaction as the rows (exactly once, and rebuildable into a fresh schema).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.consumer.projection import Decoded
from modelyard_events.db import create_schema_tables, rows_json
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.registry import EventRegistry
from modelyard_events.schemas.datasets import DATASET_EVENTS, DATASET_STREAM, SAMPLE_STREAM, STORAGE_STREAM
from modelyard_events.schemas.deploy import (
    DEPLOY_EVENTS,
    DEPLOYMENT_STREAM,
    EDGE_SERVER_STREAM,
    ROLLOUT_STREAM,
)
from modelyard_events.schemas.jobs import JOB_EVENTS, JOB_STREAM, QUOTA_STREAM, TRAINER_STREAM
from modelyard_events.schemas.registry import MODULE_STREAM, REGISTRY_EVENTS
from modelyard_events.schemas.training import RUN_STREAM, TRAINER_EVENTS
from modelyard_job.projections.audit_rows import AuditRow, audit_row
from modelyard_job.projections.lineage_rows import LineageChange, lineage_change

DATASET_SOURCE = "dataset"
DEPLOY_SOURCE = "deploy"
AUDIT_EVENTS = EventRegistry.combined(
    DATASET_EVENTS, JOB_EVENTS, TRAINER_EVENTS, REGISTRY_EVENTS, DEPLOY_EVENTS
)
# Each stream type is written by one service only; the runner hands a projection the envelope, not
# its source, so the source is known from the stream (and, for a stream type added later, from the
# registry its event type belongs to).
SOURCE_OF_STREAM = {
    DATASET_STREAM: DATASET_SOURCE,
    SAMPLE_STREAM: DATASET_SOURCE,
    STORAGE_STREAM: DATASET_SOURCE,
    JOB_STREAM: "job",
    TRAINER_STREAM: "job",
    QUOTA_STREAM: "job",
    RUN_STREAM: "trainer",
    MODULE_STREAM: "registry",
    EDGE_SERVER_STREAM: DEPLOY_SOURCE,
    DEPLOYMENT_STREAM: DEPLOY_SOURCE,
    ROLLOUT_STREAM: DEPLOY_SOURCE,
}
_SOURCE_OF_TYPE = {
    cls.type_name: source
    for source, registry in (
        (DATASET_SOURCE, DATASET_EVENTS),
        ("job", JOB_EVENTS),
        ("trainer", TRAINER_EVENTS),
        ("registry", REGISTRY_EVENTS),
        (DEPLOY_SOURCE, DEPLOY_EVENTS),
    )
    for cls in registry.catalog()
}


def source_of(envelope: EventEnvelope) -> str:
    """The service whose log holds `envelope`; ValueError (dead-lettered) when neither tells."""
    source = SOURCE_OF_STREAM.get(envelope.stream_type) or _SOURCE_OF_TYPE.get(envelope.type)
    if source is None:
        raise ValueError(f"no service is known to write stream type {envelope.stream_type!r}")
    return source


_DDL = (
    """CREATE TABLE IF NOT EXISTS {s}.audit_events (
        source text NOT NULL, position bigint NOT NULL, event_id uuid NOT NULL, type text NOT NULL,
        stream_type text NOT NULL, stream_id text NOT NULL, occurred_at timestamptz NOT NULL,
        actor_subject text NOT NULL, actor_roles text[] NOT NULL, org_id text, reason text NOT NULL,
        correlation_id text NOT NULL, causation_id text, PRIMARY KEY (source, position))""",
    # Every search pages on (occurred_at, source, position); each filter has an index that ends in
    # that key, so a filtered page is an index range scan, not a sort of every match.
    "CREATE INDEX IF NOT EXISTS audit_by_time ON {s}.audit_events (occurred_at, source, position)",
    "CREATE INDEX IF NOT EXISTS audit_by_org ON {s}.audit_events (org_id, occurred_at, source, position)",
    "CREATE INDEX IF NOT EXISTS audit_by_actor "
    "ON {s}.audit_events (actor_subject, occurred_at, source, position)",
    "CREATE INDEX IF NOT EXISTS audit_by_entity "
    "ON {s}.audit_events (stream_type, stream_id, occurred_at, source, position)",
    "CREATE INDEX IF NOT EXISTS audit_by_type ON {s}.audit_events (type, occurred_at, source, position)",
    "CREATE INDEX IF NOT EXISTS audit_by_correlation "
    "ON {s}.audit_events (correlation_id, occurred_at, source, position)",
    """CREATE TABLE IF NOT EXISTS {s}.lineage_nodes (
        kind text NOT NULL, id text NOT NULL, org_id text, label text NOT NULL DEFAULT '',
        dataset_id text, filename text, sha256 text, size_bytes bigint, media_type text,
        source_camera_id text, captured_at timestamptz, metadata jsonb, review_state text,
        PRIMARY KEY (kind, id))""",
    # A version's samples: those of its dataset verified when it was published.
    "CREATE INDEX IF NOT EXISTS lineage_samples_by_dataset "
    "ON {s}.lineage_nodes (dataset_id, review_state) WHERE kind = 'sample'",
    """CREATE TABLE IF NOT EXISTS {s}.lineage_edges (
        down_kind text NOT NULL, down_id text NOT NULL, up_kind text NOT NULL, up_id text NOT NULL,
        relation text NOT NULL, org_id text, PRIMARY KEY (down_kind, down_id, up_kind, up_id))""",
    "CREATE INDEX IF NOT EXISTS lineage_edges_up ON {s}.lineage_edges (up_kind, up_id)",
    # Keyed by the event that did it (source, position, n-th act of that event): a rebuild into a
    # fresh schema holds the very same rows, and a replayed event adds nothing.
    """CREATE TABLE IF NOT EXISTS {s}.lineage_acts (
        kind text NOT NULL, id text NOT NULL, source text NOT NULL, position bigint NOT NULL, n int NOT NULL,
        act text NOT NULL, subject text NOT NULL, at timestamptz NOT NULL, detail text NOT NULL,
        PRIMARY KEY (kind, id, source, position, n))""",
)

_INSERT_AUDIT = """
INSERT INTO {s}.audit_events
SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS r(
    source text, position int8, event_id uuid, type text, stream_type text, stream_id text,
    occurred_at timestamptz, actor_subject text, actor_roles text[], org_id text, reason text,
    correlation_id text, causation_id text)
ON CONFLICT DO NOTHING"""
# Later events complete what earlier ones only named (a deployment names its server before the
# server's registration may be applied); the first organization seen stays.
_UPSERT_NODE = """
INSERT INTO {s}.lineage_nodes (kind, id, org_id, label, dataset_id, filename, sha256, size_bytes,
    media_type, source_camera_id, captured_at, metadata)
VALUES (:kind, :id, :org_id, :label, :dataset_id, :filename, :sha256, :size_bytes, :media_type,
    :source_camera_id, :captured_at, CAST(:metadata AS jsonb))
ON CONFLICT (kind, id) DO UPDATE SET
    org_id = COALESCE(lineage_nodes.org_id, EXCLUDED.org_id),
    label = CASE WHEN EXCLUDED.label <> '' THEN EXCLUDED.label ELSE lineage_nodes.label END,
    dataset_id = COALESCE(EXCLUDED.dataset_id, lineage_nodes.dataset_id),
    filename = COALESCE(EXCLUDED.filename, lineage_nodes.filename),
    sha256 = COALESCE(EXCLUDED.sha256, lineage_nodes.sha256),
    size_bytes = COALESCE(EXCLUDED.size_bytes, lineage_nodes.size_bytes),
    media_type = COALESCE(EXCLUDED.media_type, lineage_nodes.media_type),
    source_camera_id = COALESCE(EXCLUDED.source_camera_id, lineage_nodes.source_camera_id),
    captured_at = COALESCE(EXCLUDED.captured_at, lineage_nodes.captured_at),
    metadata = COALESCE(EXCLUDED.metadata, lineage_nodes.metadata)"""
_INSERT_EDGE = """
INSERT INTO {s}.lineage_edges VALUES (:down_kind, :down_id, :up_kind, :up_id, :relation, :org_id)
ON CONFLICT DO NOTHING"""
_INSERT_ACT = """
INSERT INTO {s}.lineage_acts (kind, id, source, position, n, act, subject, at, detail)
VALUES (:kind, :id, :source, :position, :n, :act, :subject, :at, :detail)
ON CONFLICT DO NOTHING"""
_REVIEW = """
INSERT INTO {s}.lineage_nodes (kind, id, dataset_id, review_state) VALUES ('sample', :id, :dataset_id, :state)
ON CONFLICT (kind, id) DO UPDATE SET review_state = EXCLUDED.review_state,
    dataset_id = COALESCE(lineage_nodes.dataset_id, EXCLUDED.dataset_id)"""
_SNAPSHOT = """
INSERT INTO {s}.lineage_edges
SELECT 'dataset_version', :version, 'sample', id, 'contains', COALESCE(org_id, :org_id)
FROM {s}.lineage_nodes WHERE kind = 'sample' AND dataset_id = :dataset_id AND review_state = 'verified'
ON CONFLICT DO NOTHING"""


@dataclass
class AuditViews:
    """The audit rows and the lineage graph in `schema` (a BatchProjection for ProjectionRunner)."""

    schema: str
    name: str = "audit_views"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create the audit and lineage tables if missing."""
        await create_schema_tables(conn, self.schema, _DDL)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """One event: its audit row and what it adds to the graph."""
        await self._insert_audit([audit_row(source_of(envelope), envelope)], conn)
        await self._apply_lineage(lineage_change(event, envelope), envelope, conn)

    async def apply_batch(self, events: Sequence[Decoded], conn: AsyncConnection) -> None:
        """A run of events: the audit rows in one statement, the few graph changes in order."""
        await self._insert_audit([audit_row(source_of(envelope), envelope) for _, envelope in events], conn)
        for event, envelope in events:
            await self._apply_lineage(lineage_change(event, envelope), envelope, conn)

    async def _insert_audit(self, rows: list[AuditRow], conn: AsyncConnection) -> None:
        payload = [{**row.as_params(), "occurred_at": row.occurred_at.isoformat()} for row in rows]
        await conn.execute(text(_INSERT_AUDIT.format(s=self.schema)), {"rows": rows_json(payload)})

    async def _apply_lineage(
        self, change: LineageChange, envelope: EventEnvelope, conn: AsyncConnection
    ) -> None:
        if not change:
            return
        s = self.schema
        for node in change.nodes:
            sample = node.sample
            await conn.execute(
                text(_UPSERT_NODE.format(s=s)),
                {
                    "kind": node.kind,
                    "id": node.id,
                    "org_id": node.org_id,
                    "label": node.label,
                    "dataset_id": sample.dataset_id if sample else None,
                    "filename": sample.filename if sample else None,
                    "sha256": sample.sha256 if sample else None,
                    "size_bytes": sample.size_bytes if sample else None,
                    "media_type": sample.media_type if sample else None,
                    "source_camera_id": sample.source_camera_id if sample else None,
                    "captured_at": sample.captured_at if sample else None,
                    "metadata": json.dumps(sample.metadata)
                    if sample and sample.metadata is not None
                    else None,
                },
            )
        for review in change.reviews:
            params = {"id": review.sample_id, "dataset_id": review.dataset_id, "state": review.state}
            await conn.execute(text(_REVIEW.format(s=s)), params)
        if change.edges:
            await conn.execute(
                text(_INSERT_EDGE.format(s=s)),
                [
                    {
                        "down_kind": e.down_kind,
                        "down_id": e.down_id,
                        "up_kind": e.up_kind,
                        "up_id": e.up_id,
                        "relation": e.relation,
                        "org_id": e.org_id,
                    }
                    for e in change.edges
                ],
            )
        for snapshot in change.snapshots:
            linked: dict[str, str | None] = {
                "version": snapshot.version_node,
                "dataset_id": snapshot.dataset_id,
                "org_id": snapshot.org_id,
            }
            await conn.execute(text(_SNAPSHOT.format(s=s)), linked)
        if change.acts:
            await conn.execute(
                text(_INSERT_ACT.format(s=s)),
                [
                    {
                        "kind": a.kind,
                        "id": a.id,
                        "source": source_of(envelope),
                        "position": envelope.position,
                        "n": n,
                        "act": a.act,
                        "subject": a.subject,
                        "at": a.at,
                        "detail": a.detail,
                    }
                    for n, a in enumerate(change.acts)
                ],
            )
