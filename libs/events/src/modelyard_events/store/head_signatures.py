"""Writing and reading a store's signed heads (see modelyard_events.signing).

The committer signs the last event it committed, and the signature rides in the next batch's call
of the append function: no commit of its own, and the append stays one round trip. Under a steady
stream of appends one signature rides every few milliseconds (`CARRY_EVERY_S`); when no append
follows (the committer finds its queue empty), it writes the signature alone at once, with an
asynchronous commit. Appends committed in between are covered by the next signature (a head
vouches for every event its chain links back to). A signature lost in a crash is written again when
the service starts (`PostgresEventStore.sign_tail`), once the unsigned events are checked to link to
the last signed head. Consumers apply nothing beyond the last signed head, so a lost or late
signature delays events, it never lets an unverified one through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.errors import EventStoreError
from modelyard_events.signing import HeadSigner, SignedHead

_INT64_MAX = 2**63 - 1
# Under a steady stream of appends, how often a signature rides along (see HeadSignatures.take).
CARRY_EVERY_S = 0.005
NO_SIGNATURE = {"s_position": None, "s_hash": None, "s_key_id": None, "s_signature": None}


class HeadSignatures:
    """The signed heads of one store's schema: the one waiting to be written, and the reads."""

    def __init__(
        self,
        schema: str,
        signer: HeadSigner | None,
        *,
        carry_every_s: float = CARRY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.schema, self.signer = schema, signer
        self.pending: tuple[int, str] | None = None  # (position, hash) committed, not yet signed
        self._signed_through = 0
        self._carry_every_s, self._clock = carry_every_s, clock
        self._carried_at = float("-inf")
        self._progressed = asyncio.Event()
        self._sign_alone = text(f"SELECT {schema}.sign_head(:s_position, :s_hash, :s_key_id, :s_signature)")

    def written(self, position: int, hash_: str) -> None:
        """An append committed through `position`: it is to be signed (no-op without a signer)."""
        if self.signer is not None and position > max(self._signed_through, self._pending_position()):
            self.pending = (position, hash_)

    def take(self) -> dict[str, Any]:
        """Parameters that carry the pending head's signature in the next append, or none.

        Under a steady stream of appends one signature every `carry_every_s` covers them all, so
        single-event appends do not each pay for a signature and its row; when the stream pauses
        the committer writes the pending one alone at once (`write_pending`).
        """
        if self.pending is None or self._clock() - self._carried_at < self._carry_every_s:
            return NO_SIGNATURE
        self._carried_at = self._clock()
        return self._signed_row()

    def committed(self, parameters: dict[str, Any]) -> None:
        """The append that carried `parameters` (from `take`) committed."""
        position = parameters["s_position"]
        if position is not None:
            self._signed(position)

    async def write_pending(self, conn: AsyncConnection) -> None:
        """Write the pending signature alone (the committer found no append to carry it)."""
        if self.pending is not None:
            parameters = self._signed_row()
            await conn.execute(self._sign_alone, parameters)
            self._signed(parameters["s_position"])

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Return once every head passed to `written` is written (the committer writes it)."""
        async with asyncio.timeout(timeout_s):
            while True:
                self._progressed.clear()
                if self.pending is None:
                    return
                await self._progressed.wait()

    def _signed_row(self) -> dict[str, Any]:
        assert self.signer is not None
        assert self.pending is not None
        return _row(self.signer.sign(*self.pending))

    def _signed(self, position: int) -> None:
        self._signed_through = max(self._signed_through, position)
        if self.pending is not None and self.pending[0] <= self._signed_through:
            self.pending = None
        self._progressed.set()

    def _pending_position(self) -> int:
        return 0 if self.pending is None else self.pending[0]

    async def sign_tail(self, conn: AsyncConnection, head_position: int, head_hash: str) -> None:
        """Sign the store's current head now, in `conn`'s transaction (the caller checked the tail)."""
        if self.signer is None:
            raise EventStoreError(f"store {self.schema} has no signing key")
        head = self.signer.sign(head_position, head_hash)
        await conn.execute(self._sign_alone, _row(head))  # the same SQL as a pending head's
        self._signed(head_position)

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
            "WHERE position > :p AND position <= :upto), "
            f"(SELECT min(position) FROM {self.schema}.event_signatures WHERE position > :p))"
        )
        upto = min(after_position + limit, _INT64_MAX)  # ReadEvents asks after the largest position
        return (await conn.execute(sql, {"p": after_position, "upto": upto})).scalar()

    async def heads_between(
        self, conn: AsyncConnection, after_position: int, through: int
    ) -> list[SignedHead]:
        """The signed heads with after_position < position <= through, ascending."""
        sql = text(
            f"SELECT position, hash, key_id, signature FROM {self.schema}.event_signatures "
            "WHERE position > :p AND position <= :t ORDER BY position"
        )
        rows = (await conn.execute(sql, {"p": after_position, "t": through})).all()
        return [SignedHead(r.position, r.hash, r.key_id, r.signature) for r in rows]


def _row(head: SignedHead) -> dict[str, Any]:
    return {
        "s_position": head.position,
        "s_hash": head.hash,
        "s_key_id": head.key_id,
        "s_signature": head.signature,
    }
