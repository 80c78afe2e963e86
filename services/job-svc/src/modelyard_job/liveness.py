"""Trainer liveness: the last heartbeat of each trainer and of each dispatch it renews.

A heartbeat is a fact about now, not history, so it updates rows instead of appending events
(registering and being lost are events). The rows live in job-svc's database beside the views,
so every replica's dispatcher and sweeper see the same liveness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.db import checked_schema


@dataclass(frozen=True)
class Heartbeat:
    """What a trainer said in its last heartbeat, and when."""

    trainer_id: str
    slots_total: int
    gpus: list[str]
    at: datetime


class Liveness:
    """Heartbeat rows in `schema`: trainer_heartbeats and dispatch_renewals."""

    def __init__(self, engine: AsyncEngine, schema: str) -> None:
        self._engine, self.schema = engine, checked_schema(schema)

    async def create_tables(self) -> None:
        """Create the schema and both tables if missing."""
        s = self.schema
        async with self._engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s}"))
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {s}.trainer_heartbeats (trainer_id text PRIMARY KEY, "
                    "slots_total int NOT NULL, gpus jsonb NOT NULL, at timestamptz NOT NULL)"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {s}.dispatch_renewals (dispatch_id text PRIMARY KEY, "
                    "trainer_id text NOT NULL, at timestamptz NOT NULL)"
                )
            )

    async def record(self, beat: Heartbeat, dispatch_ids: list[str]) -> Heartbeat | None:
        """Store a heartbeat and renew the dispatches it names; return the trainer's previous one."""
        s = self.schema
        async with self._engine.begin() as conn:
            previous = await self._heartbeat(conn, beat.trainer_id, lock=True)
            await conn.execute(
                text(
                    f"INSERT INTO {s}.trainer_heartbeats VALUES (:id, :slots, CAST(:gpus AS jsonb), :at) "
                    "ON CONFLICT (trainer_id) DO UPDATE SET slots_total = :slots, "
                    "gpus = CAST(:gpus AS jsonb), at = :at"
                ),
                {
                    "id": beat.trainer_id,
                    "slots": beat.slots_total,
                    "gpus": json.dumps(beat.gpus),
                    "at": beat.at,
                },
            )
            if dispatch_ids:
                await conn.execute(
                    text(
                        f"INSERT INTO {s}.dispatch_renewals "
                        "SELECT d, :id, :at FROM unnest(CAST(:ids AS text[])) d "
                        "ON CONFLICT (dispatch_id) DO UPDATE SET at = :at WHERE "
                        f"{s}.dispatch_renewals.trainer_id = :id"
                    ),
                    {"id": beat.trainer_id, "ids": dispatch_ids, "at": beat.at},
                )
        return previous

    async def heartbeats(self) -> dict[str, Heartbeat]:
        """Every trainer's last heartbeat."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT * FROM {self.schema}.trainer_heartbeats"))).mappings()
            return {r["trainer_id"]: Heartbeat(**r) for r in rows}

    async def renewals(self, dispatch_ids: list[str]) -> dict[str, datetime]:
        """When each of `dispatch_ids` was last renewed (missing: never)."""
        sql = text(
            f"SELECT dispatch_id, at FROM {self.schema}.dispatch_renewals WHERE dispatch_id = ANY(:ids)"
        )
        async with self._engine.connect() as conn:
            return {r.dispatch_id: r.at for r in (await conn.execute(sql, {"ids": dispatch_ids})).all()}

    async def _heartbeat(self, conn: AsyncConnection, trainer_id: str, *, lock: bool) -> Heartbeat | None:
        sql = f"SELECT * FROM {self.schema}.trainer_heartbeats WHERE trainer_id = :id"
        row = (
            (await conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"id": trainer_id}))
            .mappings()
            .first()
        )
        return Heartbeat(**row) if row else None
