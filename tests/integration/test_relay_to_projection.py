"""Store -> relay -> Kafka -> projection, on the real PostgreSQL and broker."""

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.consumer.shared_decodes import SharedDecodes
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
    runner = _runner(stack, engine, store, projection)
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


async def test_two_runners_of_one_topic_decode_each_message_once_and_each_apply_it_once(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore
) -> None:
    topic = f"modelyard.{store.schema}.events"
    relay = Relay(store, stack.database_url, stack.kafka_bootstrap_servers, topic)
    decodes = SharedDecodes()
    projections = [CounterTotals(schema=f"{store.schema}_read{n}") for n in (1, 2)]
    runners = [_runner(stack, engine, store, projection, decodes=decodes) for projection in projections]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay.run(stop)), *(asyncio.create_task(r.run(stop)) for r in runners)]
    try:
        await eventually(lambda: _joined(decodes, topic), what="both runners consuming the topic")
        expected = await write_counters(store, streams=5, increments=20)
        for projection in projections:
            await eventually(lambda p=projection: _equal(engine, p.schema, expected), what=projection.schema)
            assert await application_counts(engine, projection.schema) == (105, 1)
        # A runner whose partitions came late may have applied the events from the store (its
        # reconcile) before Kafka brought them: wait until both consumers have taken all 105.
        await eventually(lambda: _taken(decodes, 2 * 105), what="both consumers taking every message")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    # 105 messages to each consumer: most decoded once for both (a message read again after a
    # rebalance may be decoded again).
    assert decodes.shared > 0
    assert decodes.decoded + decodes.shared >= 2 * 105
    assert decodes.decoded < 2 * 105
    assert len(decodes) == 0  # both left: nothing kept


def _runner(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore, projection: CounterTotals, **options: Any
) -> ProjectionRunner:
    """A runner of `projection` over the store's topic, in a consumer group of its own."""
    return ProjectionRunner(
        engine,
        projection,
        SAMPLE_REGISTRY,
        [SourceTopic("counters", f"modelyard.{store.schema}.events", store, TEST_KEYS)],
        stack.kafka_bootstrap_servers,
        group_id=f"g-{uuid.uuid4().hex}",
        **options,
    )


async def _joined(decodes: SharedDecodes, topic: str) -> bool:
    return decodes.readers(topic) == 2


async def _taken(decodes: SharedDecodes, messages: int) -> bool:
    return decodes.decoded + decodes.shared >= messages


async def _equal(engine: AsyncEngine, schema: str, expected: dict[str, int]) -> bool:
    try:
        return await projected_totals(engine, schema) == expected
    except Exception:
        return False  # the tables may not exist yet
