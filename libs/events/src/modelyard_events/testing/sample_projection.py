"""A read model of the sample counters that also counts how often each event was applied."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.db import checked_schema
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.testing.sample_events import CounterIncremented, CounterOpened


@dataclass
class CounterTotals:
    """counter_totals(counter_id, name, total) plus applications(event_id, times)."""

    schema: str
    name: str = "counter_totals"

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create both tables in the projection's schema."""
        s = checked_schema(self.schema)
        await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s}"))
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {s}.counter_totals "
                "(counter_id text PRIMARY KEY, name text NOT NULL, total bigint NOT NULL)"
            )
        )
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {s}.applications (event_id uuid PRIMARY KEY, times int NOT NULL)"
            )
        )

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Open or increment a counter and count the application."""
        s = self.schema
        await conn.execute(
            text(
                f"INSERT INTO {s}.applications VALUES (:id, 1) "
                f"ON CONFLICT (event_id) DO UPDATE SET times = {s}.applications.times + 1"
            ),
            {"id": envelope.event_id},
        )
        if isinstance(event, CounterOpened):
            await conn.execute(
                text(f"INSERT INTO {s}.counter_totals VALUES (:c, :n, 0)"),
                {"c": envelope.stream_id, "n": event.name},
            )
        elif isinstance(event, CounterIncremented):
            await conn.execute(
                text(f"UPDATE {s}.counter_totals SET total = total + :a WHERE counter_id = :c"),
                {"c": envelope.stream_id, "a": event.amount},
            )


async def projected_totals(engine: AsyncEngine, schema: str) -> dict[str, int]:
    """counter id -> total as the CounterTotals projection in `schema` shows it now."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text(f"SELECT counter_id, total FROM {schema}.counter_totals"))).all()
    return {r.counter_id: int(r.total) for r in rows}
