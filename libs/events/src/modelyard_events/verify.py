"""`verify`: walk a store's hash chain and name the first position that does not hold."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard_events.canonical import canonical_json, canonical_timestamp
from modelyard_events.envelope import GENESIS_HASH
from modelyard_events.hashing import HalvesTemplate, chain_hash
from modelyard_events.store.postgres import PostgresEventStore

_PAGE = 5000


@dataclass(frozen=True)
class ChainReport:
    """The outcome of a verification: ok, or the first broken position and why."""

    checked: int
    head_position: int
    broken_position: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when every link holds and the log ends at the recorded head."""
        return self.broken_position is None


async def verify_chain(
    store: PostgresEventStore, progress: Callable[[int, int], None] | None = None
) -> ChainReport:
    """Recompute every hash from the stored rows.

    Detects an edited row (its hash no longer matches), a deleted row (a hole
    in the dense positions, or a log shorter than the head), and rows swapped
    or re-ordered (prev_hash no longer names the predecessor).
    """
    head = await store.head_position()
    expected_position, prev_hash, checked = 1, GENESIS_HASH, 0
    hasher = _RowHasher()
    while rows := await store.read_rows(expected_position - 1, _PAGE):
        for row in rows:
            problem = _check_row(row, expected_position, prev_hash, hasher)
            if problem:
                return ChainReport(checked, head, expected_position, problem)
            prev_hash, expected_position, checked = row.hash, expected_position + 1, checked + 1
        if progress:
            progress(checked, head)
    if checked < head:
        return ChainReport(checked, head, checked + 1, f"the log ends at {checked} but its head is {head}")
    return ChainReport(checked, head)


def _check_row(row: Any, expected_position: int, prev_hash: str, hasher: _RowHasher) -> str:
    if row.position != expected_position:
        return f"position {expected_position} is missing (next row is {row.position})"
    if row.prev_hash != prev_hash:
        return "prev_hash does not name the previous event: rows deleted, swapped or re-ordered"
    if hasher.hash(row) != row.hash:
        return "the stored hash does not match the row's content: the row was edited"
    return ""


class _RowHasher:
    """Recomputes row hashes, encoding the fields an append's rows share once per run of rows."""

    def __init__(self) -> None:
        self._shared: tuple[Any, ...] = ()
        self._template: HalvesTemplate | None = None

    def hash(self, row: Any) -> str:
        shared = (
            row.actor,
            row.causation_id,
            row.correlation_id,
            row.occurred_at,
            row.org_id,
            row.stream_id,
            row.stream_type,
        )
        if self._template is None or shared != self._shared:
            self._shared = shared
            self._template = HalvesTemplate(
                actor_json=_canonical_actor(row.actor),
                causation_id=row.causation_id,
                correlation_id=row.correlation_id,
                occurred_at=canonical_timestamp(row.occurred_at),
                org_id=row.org_id,
                stream_id=row.stream_id,
                stream_type=row.stream_type,
            )
        halves = self._template.halves(
            data_json=row.data,
            event_id=str(row.event_id),
            schema_version=row.schema_version,
            stream_version=row.stream_version,
            type_name=row.type,
        )
        return chain_hash(row.prev_hash, halves, row.position)


@functools.lru_cache(maxsize=4096)
def _canonical_actor(stored: str) -> str:
    # jsonb prints its own spacing; the hash covers the canonical form. Few distinct actors.
    return canonical_json(json.loads(stored))
