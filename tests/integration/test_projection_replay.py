"""Audit replay against the real PostgreSQL: a live projection rebuilt into a fresh schema and
compared row by row; an edited read model, a row applied twice and a live side that never catches
up are all reported, and the fresh schema is always dropped."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.errors import SourceUnavailable
from modelyard_events.projection_replay import ReplayTarget, replay_and_compare
from modelyard_events.store.ports import SignedPage
from modelyard_events.store.postgres import PostgresEventStore
from modelyard_events.testing.sample_events import (
    SAMPLE_REGISTRY,
    TEST_CONTEXT,
    CounterIncremented,
    CounterOpened,
)
from modelyard_events.testing.sample_projection import CounterTotals
from modelyard_events.testing.signing import TEST_KEYS


async def _log(store: PostgresEventStore, counters: int = 3, increments: int = 20) -> None:
    for n in range(counters):
        await store.append("counter", f"c{n}", 0, [CounterOpened(name=f"counter {n}")], TEST_CONTEXT)
        events = [CounterIncremented(amount=k, note="x") for k in range(increments)]
        await store.append("counter", f"c{n}", 1, events, TEST_CONTEXT)
    await store.signatures.flush()


async def _live(
    engine: AsyncEngine, store: PostgresEventStore, schema: str
) -> tuple[ReplayTarget, ProjectionRunner]:
    sources = [SourceTopic("counters", "unused", store, TEST_KEYS)]
    runner = ProjectionRunner(engine, CounterTotals(schema), SAMPLE_REGISTRY, sources, bootstrap_servers=None)
    await runner.create_tables()
    await runner.catch_up()
    return ReplayTarget("counter_totals", schema, CounterTotals, SAMPLE_REGISTRY, sources), runner


async def _schemas_like(engine: AsyncEngine, prefix: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"), {"p": f"{prefix}_replay_%"}
        )
        return [str(r[0]) for r in rows]


async def test_a_faithful_projection_replays_identical_and_leaves_no_schema_behind(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    await _log(store)
    target, _ = await _live(engine, store, unique_schema)
    said: list[str] = []

    async def progress(line: str) -> None:
        said.append(line)

    report = await replay_and_compare(engine, target, progress)
    assert report.identical, report
    assert report.events_replayed == 63
    assert report.positions == {"counters": 63}
    assert {t.table: t.live_rows for t in report.tables} == {"applications": 63, "counter_totals": 3}
    assert any("counter_totals: 3 rows, identical" in line for line in said)
    assert await _schemas_like(engine, unique_schema) == []


async def test_an_edited_read_model_and_a_row_applied_twice_are_named(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    await _log(store)
    target, _ = await _live(engine, store, unique_schema)
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {unique_schema}.counter_totals SET total = total + 1 WHERE counter_id = 'c1'")
        )
        await conn.execute(
            text(
                f"UPDATE {unique_schema}.applications SET times = 2 "
                f"WHERE event_id = (SELECT event_id FROM {unique_schema}.applications LIMIT 1)"
            )
        )

    async def quiet(_: str) -> None:
        return None

    report = await replay_and_compare(engine, target, quiet)
    assert not report.identical
    by_table = {t.table: t for t in report.tables}
    totals = by_table["counter_totals"]
    assert (totals.only_live, totals.only_replayed) == (1, 1)
    assert '"counter_id":"c1"' in totals.only_live_examples[0]
    assert '"total":191' in totals.only_live_examples[0]  # 0+1+…+19 = 190, plus the edit
    assert '"total":190' in totals.only_replayed_examples[0]
    applied = by_table["applications"]
    assert (applied.only_live, applied.only_replayed) == (1, 1)
    assert '"times":2' in applied.only_live_examples[0]


async def test_the_replay_waits_for_a_live_side_that_is_behind_and_gives_up_with_the_reason(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    await _log(store, counters=1)
    target, live_runner = await _live(engine, store, unique_schema)
    await store.append("counter", "late", 0, [CounterOpened(name="late")], TEST_CONTEXT)
    await store.signatures.flush()

    async def quiet(_: str) -> None:
        return None

    stalled = await replay_and_compare(engine, target, quiet, align_deadline_s=0.5)
    assert not stalled.identical
    assert "never reached the replay's positions (counters 22)" in stalled.problem
    assert "(counters 21)" in stalled.problem

    async def live_catches_up_later() -> None:
        await asyncio.sleep(0.5)
        await live_runner.catch_up()

    catching_up = asyncio.create_task(live_catches_up_later())
    report = await replay_and_compare(engine, target, quiet, align_deadline_s=30)
    await catching_up
    assert report.identical, report
    assert report.positions == {"counters": 22}
    assert await _schemas_like(engine, unique_schema) == []


class _Unreachable:
    """A source whose service does not answer its first `refusals` reads (it is still starting)."""

    def __init__(self, store: PostgresEventStore, refusals: int) -> None:
        self.store, self.refusals = store, refusals

    async def read_signed(self, after_position: int = 0, limit: int = 1000) -> SignedPage:
        if self.refusals > 0:
            self.refusals -= 1
            raise SourceUnavailable("ReadEvents failed: UNAVAILABLE: connection refused")
        return await self.store.read_signed(after_position, limit)

    async def head_position(self) -> int:
        return await self.store.head_position()


async def test_a_source_that_answers_only_after_a_while_is_tried_again_and_one_that_never_does_is_named(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    await _log(store, counters=1)
    target, _ = await _live(engine, store, unique_schema)
    said: list[str] = []

    async def progress(line: str) -> None:
        said.append(line)

    late = SourceTopic("counters", "unused", _Unreachable(store, refusals=2), TEST_KEYS)
    report = await replay_and_compare(engine, dataclasses.replace(target, sources=(late,)), progress)
    assert report.identical, report
    assert sum("connection refused; trying again in" in line for line in said) == 2

    never = SourceTopic("counters", "unused", _Unreachable(store, refusals=10**6), TEST_KEYS)
    with pytest.raises(SourceUnavailable, match="connection refused"):
        await replay_and_compare(
            engine, dataclasses.replace(target, sources=(never,)), progress, source_retry_s=1
        )
    assert await _schemas_like(engine, unique_schema) == []


async def test_the_store_flags_a_page_whose_hashes_it_recomputed_and_not_one_with_an_edited_row(
    engine: AsyncEngine, store: PostgresEventStore, unique_schema: str
) -> None:
    await _log(store, counters=1, increments=3)
    assert (await store.read_signed(0, 100)).hashes_checked
    async with engine.begin() as conn:  # same meaning, other bytes: the stored text is what was hashed
        await conn.execute(text(f"UPDATE {unique_schema}.events SET data = ' ' || data WHERE position = 2"))
    page = await store.read_signed(0, 100)
    assert not page.hashes_checked
    assert [e.position for e in page.events] == [1, 2, 3, 4]  # served as stored, for an auditor to see
