"""Faults a projection meets that are nobody's input: they must neither lose an event nor stall the rest.

Issue 11, item 7: a transient database error used to be retried three times at once and then
dead-lettered while the checkpoint moved on (the view diverged for good); a source that could not be
read during a catch-up failed the whole batch, so every other source stalled with it.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_devstack import Infra
from modelyard_devstack.processes import eventually
from modelyard_events.consumer import ProjectionRunner, SourceTopic
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import (
    SAMPLE_REGISTRY,
    TEST_CONTEXT,
    CounterIncremented,
    CounterOpened,
)
from modelyard_events.testing.sample_projection import CounterTotals, projected_totals
from modelyard_events.testing.signing import TEST_KEYS, TEST_SIGNER
from modelyard_events.wire import encode_envelope, message_headers
from tests.integration.support import DownSource

pytestmark = pytest.mark.integration
LOCK_KEY = 9_011_007


class CounterTotalsBehindALock(CounterTotals):
    """CounterTotals that takes an advisory lock per event, under a lock_timeout of 50 ms."""

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        await conn.execute(text("SET LOCAL lock_timeout = '50ms'"))
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({LOCK_KEY})"))
        await super().apply(event, envelope, conn)


async def test_a_lock_timeout_in_a_projection_is_retried_later_never_dead_lettered(
    engine: AsyncEngine, store: PostgresEventStore
) -> None:
    await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
    await store.append("counter", "c", 1, [CounterIncremented(amount=4)], TEST_CONTEXT)
    await store.signatures.flush()
    projection = CounterTotalsBehindALock(schema=f"{store.schema}_read")
    runner = ProjectionRunner(
        engine, projection, SAMPLE_REGISTRY, [SourceTopic("c", "t", store, TEST_KEYS)], None
    )
    await runner.create_tables()

    async with engine.connect() as holder:
        await holder.execute(text(f"SELECT pg_advisory_lock({LOCK_KEY})"))
        with pytest.raises(Exception, match="lock timeout"):
            await runner.catch_up()
        await holder.execute(text(f"SELECT pg_advisory_unlock({LOCK_KEY})"))
        await holder.commit()

    assert runner.dead_lettered == 0
    await runner.catch_up()
    assert await projected_totals(engine, projection.schema) == {"c": 4}
    assert runner.dead_lettered == 0


@dataclass
class Record:
    topic: str
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int = 0
    offset: int = 0


async def test_a_source_that_cannot_be_read_does_not_stall_the_others(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    other = PostgresEventStore(engine, f"{unique_schema}_down", signer=TEST_SIGNER)
    await other.create_schema()
    try:
        up = await _counter(store, "up", 5)
        down = await _counter(other, "down", 6)
        projection = CounterTotals(schema=f"{unique_schema}_read")
        sources = [
            SourceTopic("up", "t-up", store, TEST_KEYS),
            SourceTopic("down", "t-down", DownSource(), TEST_KEYS),
        ]
        runner = ProjectionRunner(engine, projection, SAMPLE_REGISTRY, sources, None, gap_wait_s=0)
        await runner.create_tables()

        # The down source's first event never came: its hole is overdue at once and cannot be read.
        records = [_record("t-up", e) for e in up] + [_record("t-down", down[1])]
        await runner.handle_records(records, drained=True)

        assert await projected_totals(engine, projection.schema) == {"up": 5}
    finally:
        await other.close()


async def _counter(store: PostgresEventStore, name: str, amount: int) -> list[EventEnvelope]:
    opened = await store.append("counter", name, 0, [CounterOpened(name=name)], TEST_CONTEXT)
    increment = await store.append("counter", name, 1, [CounterIncremented(amount=amount)], TEST_CONTEXT)
    return opened + increment


def _record(topic: str, envelope: EventEnvelope, **fields: Any) -> Record:
    head = TEST_SIGNER.sign(envelope.position, envelope.hash)
    return Record(topic, encode_envelope(envelope), message_headers(envelope, head), **fields)


class CounterTotalsFailingToStart(CounterTotals):
    """CounterTotals whose first table creation fails, as when a twin runner's CREATE races it."""

    failures_left: int = 1

    async def create_tables(self, conn: AsyncConnection) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("duplicate key value violates unique constraint (a concurrent CREATE)")
        await super().create_tables(conn)


async def test_a_failed_table_creation_at_start_is_retried_and_the_runner_goes_on(
    engine: AsyncEngine, store: PostgresEventStore, stack: Infra
) -> None:
    await store.append("counter", "c", 0, [CounterOpened(name="c")], TEST_CONTEXT)
    await store.append("counter", "c", 1, [CounterIncremented(amount=6)], TEST_CONTEXT)
    await store.signatures.flush()
    projection = CounterTotalsFailingToStart(schema=f"{store.schema}_read")
    topic = f"{store.schema}.events"
    runner = ProjectionRunner(
        engine,
        projection,
        SAMPLE_REGISTRY,
        [SourceTopic("c", topic, store, TEST_KEYS)],
        stack.kafka_bootstrap_servers,
        reconcile_every_s=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    async def applied() -> bool:
        try:
            return await projected_totals(engine, projection.schema) == {"c": 6}
        except DBAPIError:
            return False

    try:
        await eventually(applied, 30, "the runner to start after its failed table creation")
    finally:
        stop.set()
        await task
    assert projection.failures_left == 0
