"""`verify`: walk a store's hash chain and its signed heads; name the first position that does not hold.

The checks themselves are `chain_check.ChainChecker`'s (shared with `yard audit verify`, which reads
the same log through ReadEvents); this module feeds it the store's rows, a page at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelyard_events.chain_check import ChainChecker
from modelyard_events.hashing import RowHasher
from modelyard_events.signing import HeadVerifier, SignedHead
from modelyard_events.store.postgres import PostgresEventStore

_PAGE = 5000


@dataclass(frozen=True)
class ChainReport:
    """The outcome of a verification: ok, or the first broken position and why."""

    checked: int
    head_position: int
    broken_position: int | None = None
    reason: str = ""
    signed_through: int = 0  # the last position a verified signed head covers (with keys)

    @property
    def ok(self) -> bool:
        """True when every link holds and the log ends at the recorded head."""
        return self.broken_position is None


async def verify_chain(
    store: PostgresEventStore,
    progress: Callable[[int, int], None] | None = None,
    *,
    keys: HeadVerifier | None = None,
) -> ChainReport:
    """Recompute every hash from the stored rows, and with `keys` check every signed head.

    Detects an edited row (its hash no longer matches), a deleted row (a hole
    in the dense positions, or a log shorter than the head), and rows swapped
    or re-ordered (prev_hash no longer names the predecessor). With `keys` (the
    service's pinned public keys) it also detects a suffix rewritten with
    recomputed hashes, even when the head row was updated too: a signed head no
    longer matches its event, a signature does not verify, or events after the
    last verified head are not covered by any signature.
    """
    head = await store.head_position()
    checker = ChainChecker(RowHasher().hash, keys)
    heads = _SignedHeads(store, keys)
    while rows := await store.read_rows(checker.last_position, _PAGE):
        if checker.feed(rows, await heads.between(checker.last_position, rows[-1].position)):
            break
        if progress:
            progress(checker.checked, head)
    broken = checker.finish(head)
    if broken is None:
        return ChainReport(checker.checked, head, signed_through=checker.signed_through)
    return ChainReport(checker.checked, head, broken.position, broken.reason, checker.signed_through)


class _SignedHeads:
    """Pages of a store's signed heads, read beside the pages of events."""

    def __init__(self, store: PostgresEventStore, keys: HeadVerifier | None) -> None:
        self._store, self._keys = store, keys

    async def between(self, after_position: int, through: int) -> list[SignedHead]:
        if self._keys is None:
            return []
        async with self._store.engine.connect() as conn:
            return await self._store.signatures.heads_between(conn, after_position, through)
