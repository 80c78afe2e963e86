"""A catch-up pass ends at the heads its sources had when it began, however fast they grow.

A pass that chased a head moving faster than it applies (a busy writer, a projection applying event
by event) never ended, and its runner never saw its stop: a test stopping a runner while events
flowed waited on it for ever (test_failures, under load).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.envelope import EventEnvelope
from modelyard_events.store.ports import SignedPage
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import SAMPLE_REGISTRY, TEST_CONTEXT, CounterIncremented
from modelyard_events.testing.sample_projection import CounterTotals
from modelyard_events.testing.signing import TEST_KEYS, TEST_SIGNER

pytestmark = pytest.mark.integration


class _Growing:
    """A store that appends 100 more events (signed) before every page it serves: its head moves
    ahead of any reader."""

    def __init__(self, store: PostgresEventStore, stream: str) -> None:
        self.store, self.stream, self.version = store, stream, 0

    async def grow(self) -> None:
        events = [CounterIncremented(amount=1)] * 100
        await self.store.append("counter", self.stream, self.version, events, TEST_CONTEXT)
        await self.store.signatures.flush()
        self.version += 100

    async def head_position(self) -> int:
        return await self.store.head_position()

    async def read_signed(self, after_position: int = 0, limit: int = 1000) -> SignedPage:
        await self.grow()
        return await self.store.read_signed(after_position, min(limit, 100))

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        return await self.store.read_all(after_position, limit)


async def _applied(engine: AsyncEngine, runner: ProjectionRunner) -> int:
    async with engine.connect() as conn:
        sql = f"SELECT count(*) FROM {runner.projection.schema}.applications"
        return int((await conn.execute(text(sql))).scalar_one())


async def _runner(engine: AsyncEngine, schema: str, sources: list[SourceTopic]) -> ProjectionRunner:
    runner = ProjectionRunner(engine, CounterTotals(schema), SAMPLE_REGISTRY, sources, bootstrap_servers=None)
    await runner.create_tables()
    return runner


async def test_one_source_growing_faster_than_it_is_read_is_caught_up_to_where_it_was(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    growing = _Growing(store, "c")
    await growing.grow()
    runner = await _runner(
        engine, f"{unique_schema}_read", [SourceTopic("counters", "t", growing, TEST_KEYS)]
    )

    await asyncio.wait_for(runner.catch_up(), timeout=30)  # chasing the head, it never returned

    applied = await _applied(engine, runner)
    assert applied >= 100  # the head it found, at least; its own reads grew the log beyond
    assert await store.head_position() > applied


async def test_sources_caught_up_together_end_at_their_heads_too(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    other = PostgresEventStore(engine, f"{unique_schema}_b", signer=TEST_SIGNER)
    await other.create_schema()
    try:
        first, second = _Growing(store, "a"), _Growing(other, "b")
        await first.grow()
        await second.grow()
        sources = [
            SourceTopic("first", "t1", first, TEST_KEYS),
            SourceTopic("second", "t2", second, TEST_KEYS),
        ]
        runner = await _runner(engine, f"{unique_schema}_read", sources)

        await asyncio.wait_for(runner.catch_up(), timeout=30)

        heads = await store.head_position() + await other.head_position()
        assert 200 <= await _applied(engine, runner) < heads
    finally:
        await other.close()
