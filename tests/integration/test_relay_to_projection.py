"""Store -> relay -> Kafka -> projection, on the real PostgreSQL and broker."""

import asyncio
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.relay import Relay
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import SAMPLE_REGISTRY
from modelyard_events.testing.sample_projection import CounterTotals, projected_totals
from modelyard_events.testing.signing import TEST_KEYS
from tests.integration.support import application_counts, write_counters

pytestmark = pytest.mark.integration


async def test_appended_events_reach_the_projection_exactly_once(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore
) -> None:
    topic = f"modelyard.{store.schema}.events"
    relay = Relay(store, stack.database_url, stack.kafka_bootstrap_servers, topic)
    projection = CounterTotals(schema=f"{store.schema}_read")
    runner = ProjectionRunner(
        engine,
        projection,
        SAMPLE_REGISTRY,
        [SourceTopic("counters", topic, store, TEST_KEYS)],
        stack.kafka_bootstrap_servers,
        group_id=f"g-{uuid.uuid4().hex}",
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]
    try:
        expected = await write_counters(store, streams=5, increments=20)
        await eventually(lambda: _equal(engine, projection.schema, expected), what="projection")
        assert await application_counts(engine, projection.schema) == (105, 1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert await relay.checkpoint() == 105  # saved in the background, and flushed when the relay stops


async def _equal(engine: AsyncEngine, schema: str, expected: dict[str, int]) -> bool:
    try:
        return await projected_totals(engine, schema) == expected
    except Exception:
        return False  # the tables may not exist yet
