"""The projection runner's FastStream intake on the real broker (issue 16, item 1): a batch whose
transaction fails is not acknowledged, so Kafka brings it again (the source cannot be read) and it is
applied once; partitions
assigned to a runner have their sources read at once, not at the next reconcile."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.relay import Relay
from modelyard_events.store.ports import EventSource
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import SAMPLE_REGISTRY
from modelyard_events.testing.sample_projection import CounterTotals, projected_totals
from modelyard_events.testing.signing import TEST_KEYS
from modelyard_events.topics import dead_letter_topic, ensure_topics
from tests.integration.support import DownSource, application_counts, counters_topic, write_counters

pytestmark = pytest.mark.integration
LOCK_KEY = 9_011_016
NEVER_S = 3600.0  # no timed reconcile during the test: what arrives, arrives by Kafka


class CounterTotalsBehindALock(CounterTotals):
    """CounterTotals that takes an advisory lock per event, under a lock_timeout of 50 ms."""

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        await conn.execute(text("SET LOCAL lock_timeout = '50ms'"))
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({LOCK_KEY})"))
        await super().apply(event, envelope, conn)


def _runner(
    engine: AsyncEngine,
    store: PostgresEventStore,
    bootstrap: str,
    projection: CounterTotals,
    source: EventSource | None = None,
) -> ProjectionRunner:
    return ProjectionRunner(
        engine,
        projection,
        SAMPLE_REGISTRY,
        [SourceTopic("counters", counters_topic(store), source or store, TEST_KEYS)],
        bootstrap,
        group_id=f"g-{store.schema}",
        reconcile_every_s=NEVER_S,
    )


async def test_a_batch_whose_transaction_fails_comes_again_from_kafka_and_is_applied_once(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore
) -> None:
    bootstrap, topic = stack.kafka_bootstrap_servers, counters_topic(store)
    await ensure_topics(bootstrap, [topic, dead_letter_topic(topic)])
    projection = CounterTotalsBehindALock(schema=f"{store.schema}_read")
    # The source cannot be read: whatever is applied came from Kafka.
    runner = _runner(engine, store, bootstrap, projection, DownSource())
    relay = Relay(store, stack.database_url, bootstrap, topic)
    stop = asyncio.Event()
    async with engine.connect() as holder:
        await holder.execute(text(f"SELECT pg_advisory_lock({LOCK_KEY})"))
        tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(runner.run(stop))]
        try:
            written = await write_counters(store, streams=3, increments=5)
            await eventually(lambda: _failed_twice(runner), 60, "a batch to fail on the lock twice")
            assert await projected_totals(engine, projection.schema) == {}
            await holder.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
            await holder.commit()
            await eventually(
                lambda: _totals_are(engine, projection.schema, written), 60, "the totals after the lock"
            )
            applied, most = await application_counts(engine, projection.schema)
            assert (applied, most) == (18, 1)
            assert runner.dead_lettered == 0
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def test_partitions_assigned_to_a_runner_have_their_source_read_at_once(
    stack: Infra, engine: AsyncEngine, store: PostgresEventStore
) -> None:
    """Events no relay ever published (a broker that lost them, a replica that left) are read from the
    source when the partitions are assigned, although the timed reconcile is an hour away."""
    bootstrap, topic = stack.kafka_bootstrap_servers, counters_topic(store)
    await ensure_topics(bootstrap, [topic, dead_letter_topic(topic)])
    written = await write_counters(store, streams=2, increments=3)
    await store.signatures.flush()
    projection = CounterTotals(schema=f"{store.schema}_read")
    runner = _runner(engine, store, bootstrap, projection)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: _totals_are(engine, projection.schema, written), 60, "the totals")
        assert runner.caught_up == 8
    finally:
        stop.set()
        await task


async def _failed_twice(runner: ProjectionRunner) -> bool:
    return runner.batches_failed >= 2


async def _totals_are(engine: AsyncEngine, schema: str, expected: dict[str, int]) -> bool:
    try:
        return await projected_totals(engine, schema) == expected
    except Exception:  # the read model's tables are created by the runner as it starts
        return False
