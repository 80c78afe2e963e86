"""Audit replay: rebuild a live projection from its sources into a fresh schema and compare the two.

What an auditor's `yard audit replay` asks of each service. The rebuild goes through the runner's
own catch-up path (signed pages, every head checked against the pinned keys, the one decode path
with its upcasters), a page at a time, so memory stays flat however long the logs are. The live
projection keeps running meanwhile, so the comparison waits for a moment when both have applied
exactly the same positions of every source, and compares in one REPEATABLE READ snapshot.

The comparison is row by row, done by PostgreSQL: for each table, `EXCEPT ALL` both ways (a
multiset difference, so a row applied twice is a difference too). Python only receives the counts
and the first few differing rows. Columns of type json (no equality operator) are compared as text.

Only read models replay: a reaction's effect is an append, and replaying it would write events.
Tables that are not derived from the log (e.g. liveness rows written by heartbeats) are named by
the service and left out, with the reason in the report.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.consumer.projection import Projection
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.db import checked_schema
from modelyard_events.errors import SourceUnavailable
from modelyard_events.registry import EventRegistry

CHECKPOINT_TABLE = "projection_checkpoints"
DIFFERENCES_SHOWN = 5  # differing rows named per table and direction
_ALIGN_DEADLINE_S = 60.0  # how long to wait for the live projection to reach the replay's positions
_SOURCE_RETRY_S = 30.0  # how long a source that cannot be reached is tried again


@dataclass(frozen=True)
class ReplayTarget:
    """One live projection and how to build it again: `build(schema)` gives a fresh instance."""

    name: str
    live_schema: str
    build: Callable[[str], Projection]
    registry: EventRegistry
    sources: Sequence[SourceTopic]
    not_from_the_log: Mapping[str, str] = field(default_factory=dict)  # table → why it is skipped


@dataclass(frozen=True)
class TableComparison:
    """One table: rows on each side and the rows found on only one side (a few shown)."""

    table: str
    live_rows: int
    replayed_rows: int
    only_live: int
    only_replayed: int
    only_live_examples: tuple[str, ...] = ()
    only_replayed_examples: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        return self.only_live == 0 and self.only_replayed == 0


@dataclass(frozen=True)
class ReplayReport:
    """The outcome for one projection: identical, or the tables that differ."""

    projection: str
    events_replayed: int
    positions: Mapping[str, int]  # source → the position both sides were compared at
    tables: tuple[TableComparison, ...]
    skipped: Mapping[str, str]
    dead_lettered: int
    problem: str = ""  # set when no comparison could be made (e.g. the live side never aligned)

    @property
    def identical(self) -> bool:
        return not self.problem and self.dead_lettered == 0 and all(t.identical for t in self.tables)


Progress = Callable[[str], Awaitable[None]]


def target_of(
    runner: ProjectionRunner,
    build: Callable[[str], Projection],
    not_from_the_log: Mapping[str, str] | None = None,
) -> ReplayTarget:
    """The replay of a live runner's projection: same name, schema, registry and sources."""
    projection = runner.projection
    return ReplayTarget(
        projection.name,
        projection.schema,
        build,
        runner.registry,
        runner.sources,
        dict(not_from_the_log or {}),
    )


async def replay_and_compare(
    engine: AsyncEngine,
    target: ReplayTarget,
    progress: Progress,
    *,
    align_deadline_s: float = _ALIGN_DEADLINE_S,
    source_retry_s: float = _SOURCE_RETRY_S,
) -> ReplayReport:
    """Rebuild `target` into a fresh schema, compare it with the live one, drop the fresh schema."""
    fresh = checked_schema(f"{target.live_schema}_replay_{uuid.uuid4().hex[:8]}")
    projection = target.build(fresh)
    runner = ProjectionRunner(
        engine, projection, target.registry, list(target.sources), bootstrap_servers=None
    )
    try:
        await runner.create_tables()
        await progress(f"{target.name}: rebuilding into {fresh}")
        await _catch_up(runner, target, progress, source_retry_s)
        deadline = time.monotonic() + align_deadline_s
        while True:
            async with engine.connect() as plain:
                conn = await plain.execution_options(isolation_level="REPEATABLE READ")
                live = await _positions(conn, target.live_schema, projection.name)
                replayed = await _positions(conn, fresh, projection.name)
                if live == replayed:
                    await progress(f"{target.name}: both at {_describe(live)}; comparing tables")
                    tables = await _compare_all(conn, target, fresh, progress)
                    return ReplayReport(
                        target.name,
                        runner.caught_up,
                        live,
                        tables,
                        dict(target.not_from_the_log),
                        runner.dead_lettered,
                    )
            if time.monotonic() > deadline:
                problem = (
                    f"the live projection ({_describe(live)}) never reached the replay's positions "
                    f"({_describe(replayed)}) within {align_deadline_s:.0f} s: is it halted or stopped?"
                )
                return ReplayReport(
                    target.name, runner.caught_up, replayed, (), {}, runner.dead_lettered, problem
                )
            if any(live.get(s, 0) > p for s, p in replayed.items()):
                # The log grew: the replay follows it.
                await _catch_up(runner, target, progress, source_retry_s)
            else:
                await asyncio.sleep(0.2)  # the live projection is applying what the replay has
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {fresh} CASCADE"))


async def _catch_up(
    runner: ProjectionRunner, target: ReplayTarget, progress: Progress, retry_s: float = _SOURCE_RETRY_S
) -> None:
    """Replay what the sources hold; a source that cannot be reached (a service starting or restarting)
    is tried again for up to `retry_s`, then SourceUnavailable names it."""
    before = runner.caught_up
    deadline, wait = time.monotonic() + retry_s, 0.5
    while True:
        try:
            await runner.catch_up()
            break
        except SourceUnavailable as error:
            if time.monotonic() + wait > deadline:
                raise
            await progress(f"{target.name}: {error}; trying again in {wait:.1f} s")
            await asyncio.sleep(wait)
            wait = min(wait * 2, 5.0)
    await progress(f"{target.name}: {runner.caught_up:,} events replayed (+{runner.caught_up - before:,})")


async def _positions(conn: AsyncConnection, schema: str, projection: str) -> dict[str, int]:
    rows = await conn.execute(
        text(
            f"SELECT source, position FROM {checked_schema(schema)}.{CHECKPOINT_TABLE} WHERE projection = :p"
        ),
        {"p": projection},
    )
    return {str(r.source): int(r.position) for r in rows if int(r.position) > 0}


def _describe(positions: Mapping[str, int]) -> str:
    return ", ".join(f"{s} {p:,}" for s, p in sorted(positions.items())) or "nothing applied"


async def _compare_all(
    conn: AsyncConnection, target: ReplayTarget, fresh: str, progress: Progress
) -> tuple[TableComparison, ...]:
    # The projection's tables are those its rebuild created: a live schema may hold other
    # projections' tables too (and a store's), which are not this replay's to judge.
    live_tables = await _tables(conn, target.live_schema)
    compared = []
    for table in sorted(await _tables(conn, fresh) - {CHECKPOINT_TABLE} - set(target.not_from_the_log)):
        if table not in live_tables:
            missing = ("the live schema has no such table",)
            compared.append(TableComparison(table, 0, -1, 0, 1, (), missing))
            continue
        result = await _compare_table(conn, target.live_schema, fresh, table)
        compared.append(result)
        verdict = (
            "identical" if result.identical else f"{result.only_live + result.only_replayed} rows differ"
        )
        await progress(f"{target.name}: {table}: {result.live_rows:,} rows, {verdict}")
    return tuple(compared)


async def _tables(conn: AsyncConnection, schema: str) -> set[str]:
    rows = await conn.execute(
        text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = :s AND table_type = 'BASE TABLE'"
        ),
        {"s": schema},
    )
    return {str(r.table_name) for r in rows}


async def _compare_table(conn: AsyncConnection, live: str, fresh: str, table: str) -> TableComparison:
    columns = await _column_list(conn, live, table)

    def side(schema: str) -> str:
        return f"SELECT {columns} FROM {schema}.{table}"

    async def count(sql: str) -> int:
        return int((await conn.execute(text(f"SELECT count(*) FROM ({sql}) AS x"))).scalar_one())

    async def examples(sql: str) -> tuple[str, ...]:
        rows = await conn.execute(
            text(f"SELECT row_to_json(x)::text FROM ({sql}) AS x LIMIT {DIFFERENCES_SHOWN}")
        )
        return tuple(str(r[0]) for r in rows)

    only_live_sql = f"{side(live)} EXCEPT ALL {side(fresh)}"
    only_fresh_sql = f"{side(fresh)} EXCEPT ALL {side(live)}"
    only_live, only_fresh = await count(only_live_sql), await count(only_fresh_sql)
    return TableComparison(
        table,
        await count(side(live)),
        await count(side(fresh)),
        only_live,
        only_fresh,
        await examples(only_live_sql) if only_live else (),
        await examples(only_fresh_sql) if only_fresh else (),
    )


async def _column_list(conn: AsyncConnection, schema: str, table: str) -> str:
    rows = await conn.execute(
        text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
        ),
        {"s": schema, "t": table},
    )
    # json has no equality operator; both sides wrote the same text, so text compares them exactly.
    return ", ".join(
        f'"{r.column_name}"::text AS "{r.column_name}"' if r.data_type == "json" else f'"{r.column_name}"'
        for r in rows
    )
