"""Per-source positions a projection has applied, stored beside its read model."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.db import checked_schema
from modelyard_events.envelope import GENESIS_HASH


async def create_checkpoint_table(conn: AsyncConnection, schema: str) -> None:
    """The table that makes a projection idempotent: (projection, source) -> position."""
    s = checked_schema(schema)
    await conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {s}"))
    await conn.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {s}.projection_checkpoints ("
            "projection text NOT NULL, source text NOT NULL, position bigint NOT NULL, "
            "last_hash text NOT NULL, "
            "PRIMARY KEY (projection, source))"
        )
    )


async def lock_checkpoint(
    conn: AsyncConnection, schema: str, projection: str, source: str
) -> tuple[int, str]:
    """The applied position and its event's hash, row-locked until the transaction ends."""
    s = checked_schema(schema)
    await conn.execute(
        text(f"INSERT INTO {s}.projection_checkpoints VALUES (:p, :s, 0, :g) ON CONFLICT DO NOTHING"),
        {"p": projection, "s": source, "g": GENESIS_HASH},
    )
    sql = text(
        f"SELECT position, last_hash FROM {s}.projection_checkpoints "
        "WHERE projection = :p AND source = :s FOR UPDATE"
    )
    row = (await conn.execute(sql, {"p": projection, "s": source})).one()
    return int(row.position), str(row.last_hash)


async def save_checkpoint(
    conn: AsyncConnection, schema: str, projection: str, source: str, position: int, last_hash: str
) -> None:
    """Record the applied position in the caller's transaction."""
    sql = text(
        f"UPDATE {checked_schema(schema)}.projection_checkpoints SET position = :n, last_hash = :h "
        "WHERE projection = :p AND source = :s"
    )
    await conn.execute(sql, {"p": projection, "s": source, "n": position, "h": last_hash})


async def read_checkpoint(conn: AsyncConnection, schema: str, projection: str, source: str) -> int:
    """The applied position without locking (0 when none)."""
    sql = text(
        f"SELECT position FROM {checked_schema(schema)}.projection_checkpoints "
        "WHERE projection = :p AND source = :s"
    )
    return int((await conn.execute(sql, {"p": projection, "s": source})).scalar() or 0)


async def wait_for_checkpoint(
    engine: AsyncEngine, schema: str, projection: str, source: str, position: int, timeout_s: float
) -> bool:
    """Return True once the projection has applied `source` through `position`, False at the deadline.

    For read-your-writes: a read of the views first waits until they have applied what the store
    held when the read began, so it shows every command answered before it. The projection runs in
    another task or process; the wait polls its checkpoint row, backing off from 2 ms to 50 ms.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    pause = 0.002
    while True:
        async with engine.connect() as conn:
            if await read_checkpoint(conn, schema, projection, source) >= position:
                return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
