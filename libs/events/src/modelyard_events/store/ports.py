"""The store's port: what command handlers, relays, consumers and audits may rely on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from modelyard_events.envelope import CommandContext, DomainEvent, EventEnvelope
from modelyard_events.signing import SignedHead


@dataclass(frozen=True)
class SignedPage:
    """Consecutive events of a log that end at a signed head, with every signed head among them."""

    events: list[EventEnvelope]
    heads: list[SignedHead]
    # True when the reader itself recomputed every event's hash from what it read (the store from
    # its rows' stored text, a ReadEvents client from each message) and all matched: a consumer
    # then need not recompute them again.
    hashes_checked: bool = False


class EventSource(Protocol):
    """Reads a service's log in position order: the store itself, or its ReadEvents gRPC."""

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        """Events with position > after_position, ascending, at most `limit`."""
        ...

    async def head_position(self) -> int:
        """The highest committed position (0 for an empty store)."""
        ...

    async def read_signed(self, after_position: int = 0, limit: int = 1000) -> SignedPage:
        """Events after `after_position` ending at a signed head (about `limit`), with the heads.

        Empty when nothing after `after_position` is signed yet.
        """
        ...


class EventStore(EventSource, Protocol):
    """An append-only, hash-chained log of one service.

    Guarantees: an append is atomic; it succeeds only if the stream is at
    `expected_version` (else ConcurrencyConflict, nothing written); positions are
    dense and follow commit order, so a reader that has seen position N has seen
    every position below N.
    """

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[DomainEvent],
        context: CommandContext,
    ) -> list[EventEnvelope]:
        """Append `events` to a stream that must be at `expected_version` (0 = new)."""
        ...

    async def read_stream(
        self, stream_id: str, after_version: int = 0, *, limit: int | None = None
    ) -> list[EventEnvelope]:
        """A stream's events with stream_version > after_version, ascending; at most `limit` (None: all)."""
        ...

    async def read_streams(self, stream_ids: Sequence[str]) -> dict[str, list[EventEnvelope]]:
        """Several whole streams in one read, each ascending; a stream with no events maps to []."""
        ...
