"""job-svc's audit view and lineage tables on a real PostgreSQL: events applied as the runner would
(in batches, and one by one into another schema: the same rows), read back by the queries."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_events.db import create_engine
from modelyard_events.envelope import Actor, DomainEvent, EventEnvelope, payload_of
from modelyard_events.schemas.datasets import (
    AddedSample,
    AnnotationData,
    DatasetVersionPublished,
    ReadinessData,
    SampleApproved,
    SampleLabeled,
    SampleRejected,
    SamplesAdded,
)
from modelyard_events.schemas.jobs import JobCancelled, JobCreated
from modelyard_events.testing.one_by_one import OneByOne
from modelyard_job.projections import audit_queries as q
from modelyard_job.projections.audit_views import AuditViews

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SHA = {name: (name * 64)[:64] for name in "abcd"}


@pytest.fixture
async def engine(stack: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack.database_url, pool_size=4)
    yield engine
    await engine.dispose()


class Log:
    """Envelopes as one service's store would number them."""

    def __init__(self) -> None:
        self.position = 0

    def __call__(
        self,
        event: DomainEvent,
        stream_type: str,
        stream_id: str,
        org: str,
        subject: str = "ops",
        **extra: Any,
    ) -> tuple[DomainEvent, EventEnvelope]:
        self.position += 1
        data = payload_of(event)
        envelope = EventEnvelope(
            event_id=uuid.uuid4(), stream_type=stream_type, stream_id=stream_id, stream_version=1,
            position=self.position, type=event.type_name, schema_version=1,
            occurred_at=T0 + timedelta(seconds=self.position),
            actor=Actor(subject=subject, roles=("super_admin",)),
            org_id=org, correlation_id=extra.get("correlation", f"c-{self.position}"), causation_id=None,
            data=data, prev_hash="0" * 64, hash="1" * 64,
        )  # fmt: skip
        return event, envelope


def _history() -> list[tuple[DomainEvent, EventEnvelope]]:
    """Org A: four samples (a approved, b rejected, c approved then relabeled, d approved after the
    publish), version 1 published, a job trained on it and cancelled. Org B: a job of its own."""
    datasets, jobs = Log(), Log()
    samples = [
        AddedSample(
            sample_id=f"ds-1:{n}", filename=f"{n}.png", sha256=SHA[n], size_bytes=5, media_type="image/png"
        )
        for n in "abcd"
    ]
    label = AnnotationData(class_name="7")

    def review(n: str, ok: bool, who: str = "rita") -> DomainEvent:
        if ok:
            return SampleApproved(
                sample_id=f"ds-1:{n}", dataset_id="ds-1", reviewer=who, agreement=1, quality=1
            )
        return SampleRejected(sample_id=f"ds-1:{n}", dataset_id="ds-1", reviewer=who, reason="blurred")

    def labeled(n: str, who: str = "lena") -> DomainEvent:
        return SampleLabeled(sample_id=f"ds-1:{n}", dataset_id="ds-1", annotator=who, annotation=label)

    published = DatasetVersionPublished(
        dataset_id="ds-1", version=1, org_id="org-a", manifest_sha256=SHA["a"], samples=1, size_bytes=5,
        split_counts={"train": 1}, seed=1, train_fraction=0.8, val_fraction=0.1,
        readiness=ReadinessData(ready=True, checks=[]), published_by="pat",
    )  # fmt: skip
    job = JobCreated(
        job_id="j-a", org_id="org-a", name="digits", ai_module="reader", family="image_classifier",
        dataset_uri="dataset://ds-1/1", hyperparameters={}, priority=50, created_by="dev",
    )  # fmt: skip
    other = job.model_copy(update={"job_id": "j-b", "org_id": "org-b", "dataset_uri": "dataset://ds-9/1"})
    return [
        datasets(
            SamplesAdded(dataset_id="ds-1", upload_id="u-1", samples=samples),
            "dataset",
            "ds-1",
            "org-a",
            "uma",
        ),
        *[datasets(labeled(n), "sample", f"ds-1:{n}", "org-a") for n in "abc"],
        datasets(review("a", True), "sample", "ds-1:a", "org-a"),
        datasets(review("b", False), "sample", "ds-1:b", "org-a"),
        datasets(review("c", True), "sample", "ds-1:c", "org-a"),
        datasets(labeled("c", "leo"), "sample", "ds-1:c", "org-a"),  # reopened: not verified when published
        datasets(published, "dataset", "ds-1", "org-a", "pat"),
        datasets(labeled("d"), "sample", "ds-1:d", "org-a"),
        datasets(review("d", True), "sample", "ds-1:d", "org-a"),  # too late for version 1
        jobs(job, "training_job", "j-a", "org-a", "dev", correlation="flow-1"),
        jobs(
            JobCancelled(job_id="j-a", attempt=1, reason="wrong data"),
            "training_job",
            "j-a",
            "org-a",
            "carol",
        ),
        jobs(other, "training_job", "j-b", "org-b", "bob"),
    ]


async def _rows(engine: AsyncEngine, schema: str, table: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT * FROM {schema}.{table} ORDER BY 1, 2, 3, 4"))
        return [tuple(r) for r in result]


async def test_batches_and_one_by_one_build_the_same_tables_and_the_queries_read_them(
    engine: AsyncEngine, unique_schema: str
) -> None:
    history = _history()
    batch, single = AuditViews(unique_schema), OneByOne(AuditViews(f"{unique_schema}_b"))
    async with engine.begin() as conn:
        await batch.create_tables(conn)
        await single.create_tables(conn)
        await batch.apply_batch(history, conn)
        for event, envelope in history:
            await single.apply(event, envelope, conn)
    for table in ("audit_events", "lineage_nodes", "lineage_edges", "lineage_acts"):
        assert await _rows(engine, unique_schema, table) == await _rows(engine, f"{unique_schema}_b", table)

    async with engine.connect() as conn:
        # Version 1 holds the samples verified when it was published: not the rejected, the reopened
        # or the one approved later.
        up = await q.walk(conn, unique_schema, "job", "j-a", ["up"], None)
        assert up == [("job", "j-a"), ("dataset_version", "ds-1/1"), ("sample", "ds-1:a")]
        (sample,) = await q.nodes(conn, unique_schema, [("sample", "ds-1:a")])
        assert [(act, who) for act, who, _, _ in sample.acts] == [
            ("uploaded", "uma"), ("labeled", "lena"), ("reviewed", "rita"),
        ]  # fmt: skip
        assert sample.sample is not None
        assert sample.sample["sha256"] == SHA["a"]
        down = await q.walk(conn, unique_schema, "sample", "ds-1:a", ["down"], "org-a")
        assert down == [("sample", "ds-1:a"), ("dataset_version", "ds-1/1"), ("job", "j-a")]
        assert await q.walk(conn, unique_schema, "sample", "ds-1:a", ["down"], "org-b") == [
            ("sample", "ds-1:a")
        ]
        assert await q.node(conn, unique_schema, "job", "j-missing") is None
        named = await q.node(conn, unique_schema, "dataset_version", "ds-9/1")  # only j-b's edge names it
        assert named is not None
        assert named.org_id == "org-b"

        everything, _ = await q.search_audit(conn, unique_schema, q.AuditFilter(), None, 1000)
        assert len(everything) == len(history)
        pages, cursor = [], None
        while True:
            page, cursor = await q.search_audit(conn, unique_schema, q.AuditFilter(org_id="org-a"), cursor, 4)
            pages.append(page)
            if cursor is None:
                break
        assert [len(p) for p in pages] == [4, 4, 4, 1]  # 11 dataset events and 2 job events of org-a
        assert [r.position for p in pages for r in p if r.source == "job"] == [1, 2]
        assert all(r.org_id == "org-a" for p in pages for r in p)
        cancelled, _ = await q.search_audit(
            conn,
            unique_schema,
            q.AuditFilter(actor="carol", stream_type="training_job", stream_id="j-a"),
            None,
            10,
        )
        assert [(r.type, r.reason) for r in cancelled] == [("JobCancelled", "wrong data")]
        window = q.AuditFilter(
            since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4), source="dataset"
        )
        timed, _ = await q.search_audit(conn, unique_schema, window, None, 10)
        assert [r.position for r in timed] == [2, 3]
        flow, _ = await q.search_audit(conn, unique_schema, q.AuditFilter(correlation_id="flow-1"), None, 10)
        assert [r.type for r in flow] == ["JobCreated"]
