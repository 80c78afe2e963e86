"""`verify`: walk a store's hash chain and its signed heads; name the first position that does not hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard_events.envelope import GENESIS_HASH
from modelyard_events.hashing import RowHasher
from modelyard_events.signing import ForgedEvent, HeadVerifier, SignedHead
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
    expected_position, prev_hash, checked, signed_through = 1, GENESIS_HASH, 0, 0
    hasher = RowHasher()
    heads = _SignedHeads(store, keys)
    while rows := await store.read_rows(expected_position - 1, _PAGE):
        signed = await heads.between(expected_position - 1, rows[-1].position)
        for row in rows:
            if problem := _check_row(row, expected_position, prev_hash, hasher):
                return ChainReport(checked, head, expected_position, problem, signed_through)
            if problem := _check_signed(row, signed.get(row.position), keys):
                # The altered event is one of those this head covers beyond the last good one.
                where = f"{problem} (an event in {signed_through + 1}..{row.position} was altered)"
                return ChainReport(checked, head, signed_through + 1, where, signed_through)
            if row.position in signed:
                signed_through = row.position
            prev_hash, expected_position, checked = row.hash, expected_position + 1, checked + 1
        if progress:
            progress(checked, head)
    if checked < head:
        problem = f"the log ends at {checked} but its head is {head}"
        return ChainReport(checked, head, checked + 1, problem, signed_through)
    if keys is not None and signed_through < checked:
        problem = (
            f"events {signed_through + 1}..{checked} are not covered by a signed head: they were "
            "appended without the service's key (or a crash left them unsigned and the service "
            "has not started since)"
        )
        return ChainReport(checked, head, signed_through + 1, problem, signed_through)
    return ChainReport(checked, head, signed_through=signed_through)


def _check_row(row: Any, expected_position: int, prev_hash: str, hasher: RowHasher) -> str:
    if row.position != expected_position:
        return f"position {expected_position} is missing (next row is {row.position})"
    if row.prev_hash != prev_hash:
        return "prev_hash does not name the previous event: rows deleted, swapped or re-ordered"
    if hasher.hash(row) != row.hash:
        return "the stored hash does not match the row's content: the row was edited"
    return ""


def _check_signed(row: Any, head: SignedHead | None, keys: HeadVerifier | None) -> str:
    if head is None or keys is None:
        return ""
    if head.hash != row.hash:
        return "the event differs from the one its service signed: the log was rewritten"
    try:
        keys.check(head)
    except ForgedEvent as error:
        return f"{error}: a signature was forged or the key is not pinned"
    return ""


class _SignedHeads:
    """Pages of a store's signed heads, read beside the pages of events."""

    def __init__(self, store: PostgresEventStore, keys: HeadVerifier | None) -> None:
        self._store, self._keys = store, keys

    async def between(self, after_position: int, through: int) -> dict[int, SignedHead]:
        if self._keys is None:
            return {}
        async with self._store.engine.connect() as conn:
            heads = await self._store.signatures.heads_between(conn, after_position, through)
        return {head.position: head for head in heads}
