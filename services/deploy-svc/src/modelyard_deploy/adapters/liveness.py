"""Edge liveness: each server's last heartbeat, in a table updated in place.

A heartbeat is a fact about now, not history, so it updates one row per server instead of
appending events (registering and switching models are events). The rows live beside the views,
so every replica's streams, conductor and fleet views see the same liveness.

A fleet of a thousand servers beating every 10 s is a hundred writes a second; one transaction each
cost deploy-svc more CPU than the rest of a heartbeat. So heartbeats are noted in memory (the newest
per server) and written together, one statement every `flush_every_s` (0.25 s): the table lags a
heartbeat by at most that, and a crash loses at most that much liveness, which the next beat restores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.db import checked_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeHeartbeat:
    """What an edge server said in its last heartbeat, and when."""

    org_id: str
    server_id: str
    last_at: datetime
    free_disk_bytes: int
    active_deployment_id: str  # "" when it installs nothing


class EdgeLiveness:
    """The edge_heartbeats table in `schema`, and the heartbeats noted but not yet written to it."""

    def __init__(self, engine: AsyncEngine, schema: str, flush_every_s: float = 0.25) -> None:
        self._engine, self.schema, self._flush_every_s = engine, checked_schema(schema), flush_every_s
        self._pending: dict[tuple[str, str], EdgeHeartbeat] = {}

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

    def note(self, beat: EdgeHeartbeat) -> None:
        """Keep the heartbeat for the next write (`run`), unless a newer one of the server is kept."""
        key = (beat.org_id, beat.server_id)
        kept = self._pending.get(key)
        if kept is None or kept.last_at <= beat.last_at:
            self._pending[key] = beat

    async def record(self, beat: EdgeHeartbeat) -> None:
        """Note the heartbeat and write it now, with any others noted (a registration: seen at once)."""
        self.note(beat)
        await self.flush()

    async def run(self, stop: asyncio.Event) -> None:
        """Write the noted heartbeats every `flush_every_s` until `stop`, then once more."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._flush_every_s)
            try:
                await self.flush()
            except Exception:  # the database away: keep the beats, try again at the next tick
                log.warning("could not write %d edge heartbeats; retrying", len(self._pending), exc_info=True)

    async def flush(self) -> None:
        """Write every noted heartbeat in one statement (an older one never replaces a newer row)."""
        if not self._pending:
            return
        beats, self._pending = list(self._pending.values()), {}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    text(
                        f"""INSERT INTO {self.schema}.edge_heartbeats SELECT * FROM unnest(
                        CAST(:orgs AS text[]), CAST(:servers AS text[]), CAST(:ats AS timestamptz[]),
                        CAST(:disks AS bigint[]), CAST(:actives AS text[]))
                        ON CONFLICT (org_id, server_id) DO UPDATE SET last_at = EXCLUDED.last_at,
                        free_disk_bytes = EXCLUDED.free_disk_bytes,
                        active_deployment_id = EXCLUDED.active_deployment_id
                        WHERE edge_heartbeats.last_at <= EXCLUDED.last_at"""
                    ),
                    {
                        "orgs": [b.org_id for b in beats],
                        "servers": [b.server_id for b in beats],
                        "ats": [b.last_at for b in beats],
                        "disks": [b.free_disk_bytes for b in beats],
                        "actives": [b.active_deployment_id for b in beats],
                    },
                )
        except BaseException:
            for beat in beats:  # back in line, unless the server has beaten again since
                self.note(beat)
            raise

    async def last_heartbeats(self, org_id: str | None = None) -> dict[tuple[str, str], EdgeHeartbeat]:
        """(org, server) → its last heartbeat, for one organization or all."""
        sql = f"SELECT * FROM {self.schema}.edge_heartbeats" + (" WHERE org_id = :org" if org_id else "")
        async with self._engine.connect() as conn:
            rows = (await conn.execute(text(sql), {"org": org_id})).mappings()
            found = {(r["org_id"], r["server_id"]): EdgeHeartbeat(**r) for r in rows}
        for key, beat in list(self._pending.items()):
            newer = key not in found or found[key].last_at <= beat.last_at
            if newer and (org_id is None or key[0] == org_id):
                found[key] = beat
        return found

    async def last_heartbeat_times(self) -> dict[tuple[str, str], datetime]:
        """(org, server) → when it last spoke (what the conductor needs to notice silence)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                text(f"SELECT org_id, server_id, last_at FROM {self.schema}.edge_heartbeats")
            )
            found = {(str(r[0]), str(r[1])): r[2] for r in rows}
        for key, beat in list(self._pending.items()):
            if key not in found or found[key] <= beat.last_at:
                found[key] = beat.last_at
        return found
