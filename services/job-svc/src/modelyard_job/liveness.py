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
    """Heartbeat rows in `schema`: trainer_heartbeats and lease_renewals.

    lease_renewals is keyed by (dispatch, trainer), so a heartbeat naming another trainer's dispatch
    neither renews that lease nor blocks its own trainer's renewals; the sweeper counts only the
    row of the lease's trainer. (It replaces dispatch_renewals, keyed by dispatch alone, whose first
    writer owned the row: no longer written, safe to drop.)
    """

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
                    f"CREATE TABLE IF NOT EXISTS {s}.lease_renewals (dispatch_id text NOT NULL, "
                    "trainer_id text NOT NULL, at timestamptz NOT NULL, "
                    "PRIMARY KEY (dispatch_id, trainer_id))"
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
                        f"INSERT INTO {s}.lease_renewals "
                        "SELECT DISTINCT d, :id, :at FROM unnest(CAST(:ids AS text[])) d "
                        "ON CONFLICT (dispatch_id, trainer_id) DO UPDATE SET at = :at"
                    ),
                    {"id": beat.trainer_id, "ids": dispatch_ids, "at": beat.at},
                )
        return previous

    async def heartbeats(self) -> dict[str, Heartbeat]:
        """Every trainer's last heartbeat."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(f"SELECT * FROM {self.schema}.trainer_heartbeats"))).mappings()
            return {r["trainer_id"]: Heartbeat(**r) for r in rows}

    async def renewals(self, dispatch_ids: list[str]) -> dict[tuple[str, str], datetime]:
        """(dispatch, trainer) → when that trainer last named that dispatch, for `dispatch_ids`."""
        sql = text(
            f"SELECT dispatch_id, trainer_id, at FROM {self.schema}.lease_renewals "
            "WHERE dispatch_id = ANY(:ids)"
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(sql, {"ids": dispatch_ids})).all()
        return {(r.dispatch_id, r.trainer_id): r.at for r in rows}

    async def _heartbeat(self, conn: AsyncConnection, trainer_id: str, *, lock: bool) -> Heartbeat | None:
        sql = f"SELECT * FROM {self.schema}.trainer_heartbeats WHERE trainer_id = :id"
        row = (
            (await conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"id": trainer_id}))
            .mappings()
            .first()
        )
        return Heartbeat(**row) if row else None
