"""DatasetViews: dataset-svc's projection of its own log (datasets with counts, samples, versions).

Counts move incrementally: each sample event knows the sample's state before and after, so a count
never needs a scan of the samples table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_dataset.domain.consensus import consensus, quality_score
from modelyard_dataset.projections.tables import create_view_tables
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.datasets import (
    AnnotationData,
    DatasetCreated,
    DatasetVersionPublished,
    SampleApproved,
    SampleLabeled,
    SampleRejected,
    SamplesAdded,
)


@dataclass
class DatasetViews:
    """The read models of dataset-svc in `schema` (a Projection for ProjectionRunner and replay)."""

    schema: str
    name: str = "dataset_views"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create every read-model table."""
        await create_view_tables(conn, self.schema)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Route one event to the tables it changes."""
        if isinstance(event, DatasetCreated):
            await self._created(event, envelope, conn)
        elif isinstance(event, SamplesAdded):
            await self._added(event, conn)
        elif isinstance(event, SampleLabeled):
            await self._labeled(event, envelope, conn)
        elif isinstance(event, SampleApproved | SampleRejected):
            await self._reviewed(event, envelope, conn)
        elif isinstance(event, DatasetVersionPublished):
            await self._published(event, envelope, conn)

    async def _created(self, event: DatasetCreated, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        await conn.execute(
            text(
                f"INSERT INTO {self.schema}.datasets (dataset_id, org_id, name, ai_module, environment, "
                "task, classes, created_by, created_at) VALUES (:id, :org, :name, :module, :env, :task, "
                "CAST(:classes AS jsonb), :by, :at) ON CONFLICT (dataset_id) DO NOTHING"
            ),
            {
                "id": event.dataset_id,
                "org": event.org_id,
                "name": event.name,
                "module": event.ai_module,
                "env": event.environment,
                "task": event.label_schema.task,
                "classes": json.dumps(event.label_schema.classes),
                "by": event.created_by,
                "at": envelope.occurred_at,
            },
        )

    async def _added(self, event: SamplesAdded, conn: AsyncConnection) -> None:
        rows = [s.model_dump() | {"dataset_id": event.dataset_id} for s in event.samples]
        inserted = await conn.execute(
            text(
                f"INSERT INTO {self.schema}.samples (sample_id, dataset_id, filename, sha256, size_bytes, "
                "media_type, state) SELECT r.sample_id, r.dataset_id, r.filename, r.sha256, r.size_bytes, "
                "r.media_type, 'unlabeled' FROM json_to_recordset(CAST(:rows AS json)) AS r(sample_id text, "
                "dataset_id text, filename text, sha256 text, size_bytes bigint, media_type text) "
                "ON CONFLICT (sample_id) DO NOTHING RETURNING size_bytes"
            ),
            {"rows": json.dumps(rows)},
        )
        sizes = [row[0] for row in inserted]
        await conn.execute(
            text(
                f"UPDATE {self.schema}.datasets SET samples = samples + :n, unlabeled = unlabeled + :n, "
                "bytes = bytes + :b WHERE dataset_id = :id"
            ),
            {"n": len(sizes), "b": sum(sizes), "id": event.dataset_id},
        )

    async def _labeled(self, event: SampleLabeled, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        row = (
            await conn.execute(
                text(
                    f"SELECT s.labels, s.state, d.task FROM {self.schema}.samples s "
                    f"JOIN {self.schema}.datasets d USING (dataset_id) "
                    "WHERE s.sample_id = :id FOR UPDATE OF s"
                ),
                {"id": event.sample_id},
            )
        ).one()
        labels = {k: AnnotationData.model_validate(v) for k, v in row.labels.items()}
        labels[event.annotator] = event.annotation
        agreed = consensus(row.task, labels)
        agreement = agreed.agreement if row.task != "none" else 1.0
        await self._set_sample(
            conn,
            event.sample_id,
            event.dataset_id,
            row.state,
            {
                "state": "labeled",
                "labels": json.dumps({k: v.model_dump(mode="json") for k, v in labels.items()}),
                "consensus": json.dumps(agreed.annotation.model_dump(mode="json"))
                if agreed.annotation
                else None,
                "agreement": agreement,
                "quality": quality_score(agreement, None, agreed.annotators),
                "reviewed_by": "",
                "review_reason": "",
                "version": envelope.stream_version,
            },
        )

    async def _reviewed(
        self, event: SampleApproved | SampleRejected, envelope: EventEnvelope, conn: AsyncConnection
    ) -> None:
        before = (
            await conn.execute(
                text(f"SELECT state, agreement, consensus FROM {self.schema}.samples WHERE sample_id = :id"),
                {"id": event.sample_id},
            )
        ).one()
        approved = isinstance(event, SampleApproved)
        consensus_json = (
            json.dumps(event.consensus.model_dump(mode="json"))
            if isinstance(event, SampleApproved) and event.consensus
            else (json.dumps(before.consensus) if before.consensus is not None else None)
        )
        await self._set_sample(
            conn,
            event.sample_id,
            event.dataset_id,
            before.state,
            {
                "state": "verified" if approved else "rejected",
                "consensus": consensus_json,
                "agreement": event.agreement if isinstance(event, SampleApproved) else before.agreement,
                "quality": event.quality if isinstance(event, SampleApproved) else 0.0,
                "reviewed_by": event.reviewer,
                "review_reason": event.reason,
                "version": envelope.stream_version,
            },
        )

    async def _set_sample(
        self,
        conn: AsyncConnection,
        sample_id: str,
        dataset_id: str,
        old_state: str,
        values: dict[str, object],
    ) -> None:
        assignments = ", ".join(
            f"{column} = CAST(:{column} AS jsonb)"
            if column in ("labels", "consensus")
            else f"{column} = :{column}"
            for column in values
        )
        await conn.execute(
            text(f"UPDATE {self.schema}.samples SET {assignments} WHERE sample_id = :sample_id"),
            {**values, "sample_id": sample_id},
        )
        new_state = str(values["state"])
        if new_state != old_state:  # column names come from our own fixed state names
            await conn.execute(
                text(
                    f"UPDATE {self.schema}.datasets SET {old_state} = {old_state} - 1, "
                    f"{new_state} = {new_state} + 1 WHERE dataset_id = :id"
                ),
                {"id": dataset_id},
            )

    async def _published(
        self, event: DatasetVersionPublished, envelope: EventEnvelope, conn: AsyncConnection
    ) -> None:
        await conn.execute(
            text(
                f"INSERT INTO {self.schema}.versions (dataset_id, version, manifest_sha256, samples, "
                "size_bytes, ready, published_by, published_at) "
                "VALUES (:id, :v, :sha, :n, :b, :ready, :by, :at) "
                "ON CONFLICT DO NOTHING"
            ),
            {
                "id": event.dataset_id,
                "v": event.version,
                "sha": event.manifest_sha256,
                "n": event.samples,
                "b": event.size_bytes,
                "ready": event.readiness.ready,
                "by": event.published_by,
                "at": envelope.occurred_at,
            },
        )
        await conn.execute(
            text(
                f"UPDATE {self.schema}.datasets SET latest_version = GREATEST(latest_version, :v) "
                "WHERE dataset_id = :id"
            ),
            {"v": event.version, "id": event.dataset_id},
        )
