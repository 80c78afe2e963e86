"""DatasetViews: dataset-svc's projection of its own log (datasets with counts, samples, versions).

A BatchProjection: a run of sample events (labels, reviews: most of the traffic) loads the rows it
touches in one query, folds the events in memory (sample_rows.py) and writes each row once. Counts
move incrementally from each sample's state before and after the run, so a count never needs a scan
of the samples table.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_dataset.projections.sample_rows import SampleEvent, SampleRow, fold, records_json
from modelyard_dataset.projections.tables import STATES, create_view_tables
from modelyard_events.consumer.projection import Decoded
from modelyard_events.db import rows_json
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.datasets import (
    DatasetArchived,
    DatasetCreated,
    DatasetDeleted,
    DatasetDescriptionChanged,
    DatasetUnarchived,
    DatasetVersionPublished,
    SampleApproved,
    SampleDeleted,
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
        await self.apply_batch([(event, envelope)], conn)

    async def apply_batch(self, events: Sequence[Decoded], conn: AsyncConnection) -> None:
        """Apply events in log order; each run of sample events is folded in memory and written once."""
        run: list[tuple[SampleEvent, EventEnvelope]] = []
        for event, envelope in events:
            if isinstance(event, SampleLabeled | SampleApproved | SampleRejected):
                run.append((event, envelope))
                continue
            if run:
                await self._apply_samples(run, conn)
                run = []
            if isinstance(event, DatasetCreated):
                await self._created(event, envelope, conn)
            elif isinstance(event, SamplesAdded):
                await self._added(event, conn)
            elif isinstance(event, DatasetVersionPublished):
                await self._published(event, envelope, conn)
            else:
                await self._lifecycle(event, conn)
        if run:
            await self._apply_samples(run, conn)

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
        rows = [s.model_dump(mode="json") | {"dataset_id": event.dataset_id} for s in event.samples]
        inserted = await conn.execute(
            text(
                f"INSERT INTO {self.schema}.samples (sample_id, dataset_id, filename, sha256, size_bytes, "
                "media_type, state, source_camera_id, captured_at, metadata) SELECT r.sample_id, "
                "r.dataset_id, r.filename, r.sha256, r.size_bytes, r.media_type, 'unlabeled', "
                "r.source_camera_id, r.captured_at, r.metadata FROM json_to_recordset(CAST(:rows AS json)) "
                "AS r(sample_id text, dataset_id text, filename text, sha256 text, size_bytes bigint, "
                "media_type text, source_camera_id text, captured_at timestamptz, metadata jsonb) "
                "ON CONFLICT (sample_id) DO NOTHING RETURNING size_bytes"
            ),
            {"rows": rows_json(rows)},
        )
        sizes = [row[0] for row in inserted]
        await conn.execute(
            text(
                f"UPDATE {self.schema}.datasets SET samples = samples + :n, unlabeled = unlabeled + :n, "
                "bytes = bytes + :b WHERE dataset_id = :id"
            ),
            {"n": len(sizes), "b": sum(sizes), "id": event.dataset_id},
        )

    async def _lifecycle(self, event: DomainEvent, conn: AsyncConnection) -> None:
        s = self.schema
        if isinstance(event, DatasetDescriptionChanged):
            await conn.execute(
                text(f"UPDATE {s}.datasets SET description = :text WHERE dataset_id = :id"),
                {"text": event.description, "id": event.dataset_id},
            )
        elif isinstance(event, DatasetArchived | DatasetUnarchived):
            status = (
                "'archived'"
                if isinstance(event, DatasetArchived)
                else "CASE WHEN latest_version > 0 THEN 'active' ELSE 'draft' END"
            )
            await conn.execute(
                text(f"UPDATE {s}.datasets SET status = {status} WHERE dataset_id = :id"),
                {"id": event.dataset_id},
            )
        elif isinstance(event, SampleDeleted):
            # The row leaves listings; the counts lose it in the state it was in.
            deleted = (
                await conn.execute(
                    text(f"DELETE FROM {s}.samples WHERE sample_id = :id RETURNING state, size_bytes"),
                    {"id": event.sample_id},
                )
            ).first()
            if deleted is not None:
                state = deleted.state if deleted.state in STATES else "unlabeled"
                await conn.execute(
                    text(
                        f"UPDATE {s}.datasets SET samples = samples - 1, bytes = bytes - :b, "
                        f"{state} = {state} - 1 WHERE dataset_id = :id"
                    ),
                    {"b": deleted.size_bytes, "id": event.dataset_id},
                )
        elif isinstance(event, DatasetDeleted):
            for table in ("samples", "versions", "datasets"):
                await conn.execute(
                    text(f"DELETE FROM {s}.{table} WHERE dataset_id = :id"), {"id": event.dataset_id}
                )

    async def _apply_samples(
        self, run: list[tuple[SampleEvent, EventEnvelope]], conn: AsyncConnection
    ) -> None:
        ids = sorted({event.sample_id for event, _ in run})
        selected = await conn.execute(
            text(
                f"SELECT s.*, d.task FROM {self.schema}.samples s JOIN {self.schema}.datasets d "
                "USING (dataset_id) WHERE s.sample_id = ANY(:ids) ORDER BY s.sample_id FOR UPDATE OF s"
            ),
            {"ids": ids},
        )
        before = {row.sample_id: SampleRow.from_db(row) for row in selected}
        after = dict(before)
        for event, envelope in run:
            if event.sample_id not in after:
                continue  # a label that raced its sample's deletion: the sample is gone from the views
            after[event.sample_id] = fold(after[event.sample_id], event, envelope.stream_version)
        await conn.execute(
            text(
                f"UPDATE {self.schema}.samples s SET state = r.state, labels = r.labels, "
                "consensus = r.consensus, agreement = r.agreement, quality = r.quality, "
                "reviewed_by = r.reviewed_by, review_reason = r.review_reason, version = r.version "
                "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(sample_id text, state text, "
                "labels jsonb, consensus jsonb, agreement double precision, quality double precision, "
                "reviewed_by text, review_reason text, version bigint) WHERE s.sample_id = r.sample_id"
            ),
            {"rows": records_json(list(after.values()))},
        )
        await self._move_counts(conn, before, after)

    async def _move_counts(
        self, conn: AsyncConnection, before: dict[str, SampleRow], after: dict[str, SampleRow]
    ) -> None:
        moves: dict[str, Counter[str]] = defaultdict(Counter)
        for sample_id, old in before.items():
            new = after[sample_id]
            if new.state != old.state:
                moves[old.dataset_id][old.state] -= 1
                moves[new.dataset_id][new.state] += 1
        for dataset_id, delta in moves.items():
            # Column names come from our own fixed state names, never from input.
            assignments = ", ".join(f"{state} = {state} + :{state}" for state in STATES)
            await conn.execute(
                text(f"UPDATE {self.schema}.datasets SET {assignments} WHERE dataset_id = :id"),
                {**{state: delta[state] for state in STATES}, "id": dataset_id},
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
                f"UPDATE {self.schema}.datasets SET latest_version = GREATEST(latest_version, :v), "
                "status = CASE WHEN status = 'archived' THEN status ELSE 'active' END "
                "WHERE dataset_id = :id"
            ),
            {"v": event.version, "id": event.dataset_id},
        )
