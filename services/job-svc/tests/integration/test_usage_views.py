"""job-svc's usage tables on a real PostgreSQL: a history applied in one batch and one event at a
time gives the same rows, and `read_usage` reads what the enforcing services count."""

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
from modelyard_events.schemas.datasets import DatasetStorageCharged, DatasetStorageFreed
from modelyard_events.schemas.jobs import JobQuotaUsed
from modelyard_events.schemas.registry import ModelDeprecated, ModelReleased
from modelyard_events.testing.one_by_one import OneByOne
from modelyard_job.projections.usage_views import UsageViews, read_usage

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SHA = "a" * 64


@pytest.fixture
async def engine(stack: Infra) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(stack.database_url, pool_size=4)
    yield engine
    await engine.dispose()


def _envelope(event: DomainEvent, position: int) -> tuple[DomainEvent, EventEnvelope]:
    envelope = EventEnvelope(
        event_id=uuid.uuid4(), stream_type="any", stream_id="any", stream_version=1, position=position,
        type=event.type_name, schema_version=1, occurred_at=T0 + timedelta(seconds=position),
        actor=Actor(subject="ops", roles=("super_admin",)), org_id="acme", correlation_id="c",
        causation_id=None, data=payload_of(event), prev_hash="0" * 64, hash="1" * 64,
    )  # fmt: skip
    return event, envelope


def _released(version_id: str, environment: str, module: str = "reader") -> ModelReleased:
    return ModelReleased(
        version_id=version_id, org_id="acme", ai_module=module, semantic_version="1.0.0",
        environment=environment, released_by="carol", released_at=T0, release_notes="notes",
        artifact_sha256=SHA, artifact_size_bytes=10,
    )  # fmt: skip


def _history() -> list[tuple[DomainEvent, EventEnvelope]]:
    events: list[DomainEvent] = [
        JobQuotaUsed(org_id="acme", month="2026-02", job_id="j-0", plan="enterprise"),
        JobQuotaUsed(org_id="acme", month="2026-03", job_id="j-1", plan="enterprise"),
        JobQuotaUsed(org_id="acme", month="2026-03", job_id="j-2", plan="enterprise"),
        JobQuotaUsed(org_id="other", month="2026-03", job_id="j-3", plan="enterprise"),
        DatasetStorageCharged(
            org_id="acme",
            dataset_id="ds-1",
            upload_id="u-1",
            size_bytes=900,
            total_bytes=900,
            dataset_version=1,
            charged_at=T0,
        ),
        DatasetStorageFreed(
            org_id="acme", dataset_id="ds-1", deletion="ds-1:a", size_bytes=200, total_bytes=700
        ),
        _released("v-1", "production"),
        _released("v-1", "staging"),  # the same version in a second environment: still one
        _released("v-2", "production"),
        _released("v-9", "production", module="counter"),
        ModelDeprecated(
            version_id="v-2",
            org_id="acme",
            ai_module="reader",
            semantic_version="1.0.0",
            environments=["production"],
            deprecated_by="carol",
            reason="rolled back",
        ),
    ]
    return [_envelope(event, n) for n, event in enumerate(events, start=1)]


async def _rows(engine: AsyncEngine, schema: str, table: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT * FROM {schema}.{table} ORDER BY 1, 2"))
        return [tuple(r) for r in result]


async def test_batches_and_one_by_one_build_the_same_usage_and_it_reads_back(
    engine: AsyncEngine, unique_schema: str
) -> None:
    history = _history()
    batch, single = UsageViews(unique_schema), OneByOne(UsageViews(f"{unique_schema}_b"))
    async with engine.begin() as conn:
        await batch.create_tables(conn)
        await single.create_tables(conn)
        await batch.apply_batch(history, conn)
        for event, envelope in history:
            await single.apply(event, envelope, conn)
        await batch.apply_batch(history[:3], conn)  # applied again: keyed rows change nothing
    for table in ("usage_jobs", "usage_storage", "usage_models"):
        assert await _rows(engine, unique_schema, table) == await _rows(engine, f"{unique_schema}_b", table)
    async with engine.connect() as conn:
        usage = await read_usage(conn, unique_schema, "acme", "2026-03")
        nobody = await read_usage(conn, unique_schema, "nobody", "2026-03")
    assert (usage.jobs_this_month, usage.dataset_bytes, usage.active_models) == (
        2,
        700,
        {"counter": 1, "reader": 1},
    )
    assert (nobody.jobs_this_month, nobody.dataset_bytes, nobody.active_models) == (0, 0, {})
