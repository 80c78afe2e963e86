"""An in-memory event store obeying the same contract tests as the PostgreSQL one (for unit tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from modelyard_events.envelope import GENESIS_HASH, CommandContext, DomainEvent, EventEnvelope
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.hashing import chain_hash
from modelyard_events.signing import HeadSigner, SignedHead
from modelyard_events.store.pending import prepare_append
from modelyard_events.store.ports import SignedPage


class InMemoryEventStore:
    """A process-local log with dense positions and the same hash chain as PostgreSQL."""

    def __init__(self, *, signer: HeadSigner | None = None) -> None:
        self._signer = signer
        self._heads: dict[int, SignedHead] = {}
        self._log: list[EventEnvelope] = []
        self._versions: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        context: CommandContext,
    ) -> list[EventEnvelope]:
        """Append atomically if the stream is at expected_version."""
        request = prepare_append(stream_type, stream_id, expected_version, events, context)
        async with self._lock:
            actual = self._versions.get(stream_id, 0)
            if actual != expected_version:
                raise ConcurrencyConflict(stream_id, expected_version, actual)
            recorded = []
            prev = self._log[-1].hash if self._log else GENESIS_HASH
            for pending in request.events:
                position = len(self._log) + 1
                digest = chain_hash(prev, pending.halves, position)
                envelope = pending.recorded(position, prev, digest)
                self._log.append(envelope)
                recorded.append(envelope)
                prev = digest
            self._versions[stream_id] = recorded[-1].stream_version
            if self._signer is not None:
                last = recorded[-1].position
                self._heads[last] = self._signer.sign(last, prev)
            return recorded

    async def read_stream(
        self, stream_id: str, after_version: int = 0, *, limit: int | None = None
    ) -> list[EventEnvelope]:
        """A stream's events after a version, at most `limit`."""
        found = [e for e in self._log if e.stream_id == stream_id and e.stream_version > after_version]
        return found if limit is None else found[:limit]

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[EventEnvelope]]:
        """Several whole streams."""
        return {stream_id: await self.read_stream(stream_id) for stream_id in stream_ids}

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        """The log after a position."""
        return self._log[after_position : after_position + limit]

    async def head_position(self) -> int:
        """The highest position."""
        return len(self._log)

    async def read_signed(self, after_position: int = 0, limit: int = 1000) -> SignedPage:
        """The log after a position through a signed head (see EventSource)."""
        signed = sorted(p for p in self._heads if p > after_position)
        within = [p for p in signed if p <= after_position + limit]
        end = within[-1] if within else (signed[0] if signed else None)
        if end is None:
            return SignedPage([], [])
        heads = [self._heads[p] for p in signed if p <= end]
        return SignedPage(self._log[after_position:end], heads)
