"""Writing and reading a store's signed heads (see modelyard_events.signing).

The signature is written right after the append commits, on its own connection, so an append stays
one round trip: appends that commit while a signature is being written are covered by the next one
(a head vouches for every event its chain links back to). The write uses an asynchronous commit: a
signature lost in a crash is written again when the service starts (`sign_tail`), after the
unsigned events are checked to link to the last signed one. Consumers apply nothing beyond the last
signed head, so the cost of a lost signature is a delay, never an unverified event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.errors import EventStoreError
from modelyard_events.signing import HeadSigner, SignedHead
from modelyard_events.store.postgres_schema import notify_channel

log = logging.getLogger(__name__)


class HeadSignatures:
    """The signed heads of one store's schema: a background writer and the reads."""

    def __init__(self, engine: AsyncEngine, schema: str, signer: HeadSigner | None) -> None:
        self.engine, self.schema, self.signer = engine, schema, signer
        self._wanted: tuple[int, str] | None = None  # the newest head not yet signed
        self._signed_through = 0
        self._changed = asyncio.Event()
        self._progressed = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._insert = text(
            f"INSERT INTO {schema}.event_signatures VALUES (:p, :h, :k, :s) ON CONFLICT DO NOTHING"
        )
        self._notify = text(f"SELECT pg_notify('{notify_channel(schema)}', :p)")

    def written(self, position: int, hash_: str) -> None:
        """An append committed through `position`: sign it soon (no-op without a signer)."""
        if self.signer is None or (self._wanted is not None and self._wanted[0] >= position):
            return
        self._wanted = (position, hash_)
        self._changed.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="head-signer")

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Return once every head passed to `written` is signed and committed."""
        async with asyncio.timeout(timeout_s):
            while True:
                self._progressed.clear()
                if self._wanted is None or self._signed_through >= self._wanted[0]:
                    return
                await self._progressed.wait()

    async def close(self) -> None:
        """Write the last head if one is pending (best effort), then stop the writer."""
        if self._writer is None:
            return
        with contextlib.suppress(TimeoutError, EventStoreError):
            await self.flush(2.0)
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        self._writer = None

    async def _write_forever(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            wanted = self._wanted
            if wanted is None or wanted[0] <= self._signed_through:
                continue
            try:
                await self._write(wanted)
            except (DBAPIError, OSError) as error:
                log.warning("signing head %d of %s failed: %r; retrying", wanted[0], self.schema, error)
                self._changed.set()
                await asyncio.sleep(0.2)
                continue
            self._signed_through = max(self._signed_through, wanted[0])
            self._progressed.set()

    async def _write(self, wanted: tuple[int, str]) -> None:
        # A connection from the pool per signature, not one held: appends that commit meanwhile are
        # covered by the next signature, so these writes are few under load.
        assert self.signer is not None
        head = self.signer.sign(*wanted)
        async with self.engine.begin() as conn:
            await conn.execute(text("SET LOCAL synchronous_commit TO off"))
            await conn.execute(self._insert, _row(head))
            await conn.execute(self._notify, {"p": str(head.position)})

    async def sign_tail(self, conn: AsyncConnection, head_position: int, head_hash: str) -> None:
        """Sign the store's current head now, in `conn`'s transaction (the caller checked the tail)."""
        if self.signer is None:
            raise EventStoreError(f"store {self.schema} has no signing key")
        head = self.signer.sign(head_position, head_hash)
        await conn.execute(self._insert, _row(head))
        await conn.execute(self._notify, {"p": str(head.position)})
        self._signed_through = max(self._signed_through, head_position)

    async def last_signed(self, conn: AsyncConnection) -> SignedHead | None:
        """The highest signed head, if any."""
        sql = text(
            f"SELECT position, hash, key_id, signature FROM {self.schema}.event_signatures "
            "ORDER BY position DESC LIMIT 1"
        )
        row = (await conn.execute(sql)).one_or_none()
        return None if row is None else SignedHead(row.position, row.hash, row.key_id, row.signature)

    async def page_end(self, conn: AsyncConnection, after_position: int, limit: int) -> int | None:
        """Where a page after `after_position` of about `limit` events ends: at a signed head.

        The last signed position within the limit, else the first signed position beyond it (one
        append may exceed the limit), else None (nothing after `after_position` is signed yet).
        """
        sql = text(
            f"SELECT coalesce((SELECT max(position) FROM {self.schema}.event_signatures "
            "WHERE position > :p AND position <= :p + :n), "
            f"(SELECT min(position) FROM {self.schema}.event_signatures WHERE position > :p))"
        )
        return (await conn.execute(sql, {"p": after_position, "n": limit})).scalar()

    async def heads_between(
        self, conn: AsyncConnection, after_position: int, through: int
    ) -> list[SignedHead]:
        """The signed heads with after_position < position <= through, ascending."""
        sql = text(
            f"SELECT position, hash, key_id, signature FROM {self.schema}.event_signatures "
            "WHERE position > :p AND position <= :t ORDER BY position"
        )
        rows = (await conn.execute(sql, {"p": after_position, "t": through})).all()
        return heads_from_rows(rows)


def heads_from_rows(rows: Sequence[object]) -> list[SignedHead]:
    """SignedHead values from event_signatures rows."""
    return [SignedHead(r.position, r.hash, r.key_id, r.signature) for r in rows]  # type: ignore[attr-defined]


def _row(head: SignedHead) -> dict[str, object]:
    return {"p": head.position, "h": head.hash, "k": head.key_id, "s": head.signature}
