"""One conductor pass at a time across replicas: a PostgreSQL transaction-scoped advisory lock.

The conductor takes a `PassLock`: an async context manager factory yielding whether this replica holds
the lock. Unit tests pass `no_pass_lock`; bootstrap passes `advisory_pass_lock(engine)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PassLock = Callable[[], AbstractAsyncContextManager[bool]]
CONDUCTOR_LOCK_KEY = 0x6465706C  # "depl": one conductor pass at a time per database


def advisory_pass_lock(engine: AsyncEngine, key: int = CONDUCTOR_LOCK_KEY) -> PassLock:
    """A lock held for the pass's duration by pg_try_advisory_xact_lock (released when the
    transaction ends, also when the replica dies)."""

    @contextlib.asynccontextmanager
    async def held() -> AsyncIterator[bool]:
        async with engine.connect() as conn, conn.begin():
            got = (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})).scalar()
            yield bool(got)

    return held


@contextlib.asynccontextmanager
async def no_pass_lock() -> AsyncIterator[bool]:
    """Always held: for a single process (unit tests)."""
    yield True
