"""Helpers of the cross-process tests: writing sample events, reading projections, waiting."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened


async def write_counters(
    store: PostgresEventStore, streams: int, increments: int, first_round: int = 0
) -> dict[str, int]:
    """Open `streams` counters (in round 0) and increment each once per round; return the added totals."""
    added = {f"counter-{s}": 0 for s in range(streams)}
    if first_round == 0:
        for counter in added:
            await store.append("counter", counter, 0, [CounterOpened(name=counter)], TEST_CONTEXT)
    for i in range(first_round, first_round + increments):
        for counter in added:
            await store.append("counter", counter, i + 1, [CounterIncremented(amount=i + 1)], TEST_CONTEXT)
            added[counter] += i + 1
    return added


async def write_counters_until(
    store: PostgresEventStore, streams: int, stop: asyncio.Event
) -> tuple[dict[str, int], int]:
    """Like write_counters, round after round until `stop` is set; return (totals, events written)."""
    totals = await write_counters(store, streams, increments=1)
    rounds = 1
    while not stop.is_set():
        added = await write_counters(store, streams, increments=1, first_round=rounds)
        totals = {c: totals[c] + added[c] for c in totals}
        rounds += 1
    return totals, streams * (rounds + 1)


async def application_counts(engine: AsyncEngine, schema: str) -> tuple[int, int]:
    """(events applied, the most times any one event was applied)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(text(f"SELECT count(*), coalesce(max(times), 0) FROM {schema}.applications"))
        ).one()
    return int(row[0]), int(row[1])
