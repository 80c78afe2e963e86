"""Edge liveness: each server's last heartbeat, in a table updated in place.

A heartbeat is a fact about now, not history, so it updates one row per server instead of
appending events (registering and switching models are events). The rows live beside the views,
so every replica's streams, conductor and fleet views see the same liveness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.db import checked_schema


@dataclass(frozen=True)
class EdgeHeartbeat:
    """What an edge server said in its last heartbeat, and when."""

    org_id: str
    server_id: str
    last_at: datetime
    free_disk_bytes: int
    active_deployment_id: str  # "" when it installs nothing


class EdgeLiveness:
    """The edge_heartbeats table in `schema`."""

    def __init__(self, engine: AsyncEngine, schema: str) -> None:
        self._engine, self.schema = engine, checked_schema(schema)

    async def create_tables(self) -> None:
        """Create the schema and the table if missing."""
        async with self._engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {self.schema}"))
            await conn.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {self.schema}.edge_heartbeats (org_id text NOT NULL, "
                    "server_id text NOT NULL, last_at timestamptz NOT NULL, free_disk_bytes bigint NOT NULL, "
                    "active_deployment_id text NOT NULL, PRIMARY KEY (org_id, server_id))"
                )
            )

    async def record(self, beat: EdgeHeartbeat) -> None:
        """Store the server's heartbeat (an older one arriving late never replaces a newer one)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                text(
                    f"""INSERT INTO {self.schema}.edge_heartbeats VALUES (:org, :server, :at, :disk, :active)
                    ON CONFLICT (org_id, server_id) DO UPDATE SET last_at = :at, free_disk_bytes = :disk,
                    active_deployment_id = :active WHERE edge_heartbeats.last_at <= :at"""
                ),
                {
                    "org": beat.org_id,
                    "server": beat.server_id,
                    "at": beat.last_at,
                    "disk": beat.free_disk_bytes,
                    "active": beat.active_deployment_id,
                },
            )

    async def last_heartbeats(self, org_id: str | None = None) -> dict[tuple[str, str], EdgeHeartbeat]:
        """(org, server) → its last heartbeat, for one organization or all."""
        sql = f"SELECT * FROM {self.schema}.edge_heartbeats" + (" WHERE org_id = :org" if org_id else "")
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(sql), {"org": org_id})).mappings()
            return {(r["org_id"], r["server_id"]): EdgeHeartbeat(**r) for r in rows}

    async def last_heartbeat_times(self) -> dict[tuple[str, str], datetime]:
        """(org, server) → when it last spoke (what the conductor needs to notice silence)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(f"SELECT org_id, server_id, last_at FROM {self.schema}.edge_heartbeats")
            )
            return {(str(r[0]), str(r[1])): r[2] for r in rows}
