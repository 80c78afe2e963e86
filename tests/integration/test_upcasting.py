"""A v1 event written to PostgreSQL by an old release is read back as the current version."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import (
    TEST_CONTEXT,
    TemperatureRecorded,
    TemperatureRecordedV1,
    evolved_registry,
)
from modelyard_events.testing.signing import TEST_SIGNER

pytestmark = pytest.mark.integration


async def test_v1_stored_in_postgres_reads_back_as_v3(store: PostgresEventStore, engine: AsyncEngine) -> None:
    await store.append("sensor", "s-1", 0, [TemperatureRecordedV1(celsius=-3.25)], TEST_CONTEXT)

    # A later release opens the same schema with the evolved registry.
    upgraded = PostgresEventStore(engine, store.schema, signer=TEST_SIGNER)
    [stored] = await upgraded.read_stream("s-1")
    [from_log] = await upgraded.read_all()

    assert (stored.schema_version, stored.data) == (1, {"celsius": -3.25})
    expected = TemperatureRecorded(value=-3.25, unit="C", site="unknown")
    assert evolved_registry().decode(stored) == expected
    assert evolved_registry().decode(from_log) == expected
