"""The hashes a committer expects a batch to get, computed before the append function runs.

The committer is usually the only writer of its store, so after its own append it knows where the
head is. It hashes the next batch's events for that head in Python (it hashed them afterwards
anyway, to cross-check PostgreSQL) and sends them along; the append function takes them when the
head is still there, instead of hashing each event under the head's lock. When another writer (a
second replica) moved the head, or a request conflicts, the function hashes as before and the
guess goes unused: a wrong guess costs nothing but the guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelyard_events.hashing import chain_hash
from modelyard_events.store.pending import AppendRequest
from modelyard_events.store.postgres_rows import RECORD_SEPARATOR

NO_GUESS: dict[str, Any] = {"g_position": None, "g_hash": None, "j_hash": None}


@dataclass(frozen=True, slots=True)
class Head:
    """The log's last position and its hash."""

    position: int
    hash: str


@dataclass(frozen=True, slots=True)
class ChainGuess:
    """Each request's first position, previous hash and hashes, if the batch starts at `head` and
    every request is accepted."""

    head: Head
    starts: tuple[Head, ...]  # per request: the position before its first event, and that hash
    hashes: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, requests: Sequence[AppendRequest], head: Head) -> ChainGuess:
        starts, hashes = [], []
        position, prev = head.position, head.hash
        for request in requests:
            starts.append(Head(position, prev))
            own = []
            for pending in request.events:
                position += 1
                prev = chain_hash(prev, pending.halves, position)
                own.append(prev)
            hashes.append(tuple(own))
        return cls(head, tuple(starts), tuple(hashes))

    @property
    def end(self) -> Head:
        """Where the head is once the whole batch is written as guessed."""
        last = next((own for own in reversed(self.hashes) if own), None)
        if last is None:
            return self.head
        return Head(self.head.position + sum(len(own) for own in self.hashes), last[-1])

    def parameters(self) -> dict[str, Any]:
        """The append function's g_position, g_hash and j_hash."""
        return {
            "g_position": self.head.position,
            "g_hash": self.head.hash,
            "j_hash": RECORD_SEPARATOR.join(h for own in self.hashes for h in own),
        }

    def hashes_for(self, index: int, first_position: int, first_prev_hash: str) -> tuple[str, ...] | None:
        """Request `index`'s hashes, when it was written where the guess put it; else None."""
        start = self.starts[index]
        if first_position == start.position + 1 and first_prev_hash == start.hash:
            return self.hashes[index]
        return None
