"""The chain check, apart from where the events come from: the store's rows, ReadEvents pages or an export.

A `ChainChecker` is fed a log in position order, one page at a time (events, and the signed heads
among them), and keeps O(1) state between pages: the position and hash of the last event, and the
last position a verified signed head covers. It stops at the first position that does not hold and
says why, so `verify_chain` (rows from PostgreSQL), `yard audit verify` (ReadEvents pages) and the
exporter all report a broken log the same way.

What each check catches:
- the recomputed hash differs from the recorded one: the event was edited;
- a position is skipped: an event was deleted;
- a position repeats or goes back, or prev_hash does not name the previous event: events were
  deleted, swapped or re-ordered;
- a signed head names a different hash than the event at its position: the log was rewritten
  (hashes recomputed to link again, possibly with the head row too);
- a head's signature does not verify under a pinned key: forged, or signed with a key not pinned;
- events after the last verified head: the tail is not vouched for by the service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from modelyard_events.envelope import GENESIS_HASH
from modelyard_events.signing import ForgedEvent, HeadVerifier, SignedHead


class Linked(Protocol):
    """What the checker reads of an event besides what its hash function reads."""

    @property
    def position(self) -> int: ...

    @property
    def prev_hash(self) -> str: ...

    @property
    def hash(self) -> str: ...


E = TypeVar("E", bound=Linked)


class BreakKind(StrEnum):
    """Why a log stops verifying at a position."""

    EDITED = "edited"
    MISSING = "missing"
    REORDERED = "reordered"
    REWRITTEN = "rewritten"
    SIGNATURE = "signature"
    UNSIGNED = "unsigned"
    SHORT = "short"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first position of a log that does not hold, and why."""

    position: int
    kind: BreakKind
    reason: str


class ChainChecker(Generic[E]):
    """Checks a log page by page; see the module's docstring.

    `hash_of(event)` recomputes what the event's hash must be from its content and its own
    prev_hash and position. With `keys` (the source's pinned public keys) signed heads are checked,
    and `finish` requires the last event to be covered by one. The chain starts after
    `after_position` at `prev_hash` (the genesis hash for a whole log); `prev_hash=None` takes the
    first event's prev_hash as given: an anchor, which only a signed head further on vouches for.
    """

    def __init__(
        self,
        hash_of: Callable[[E], str],
        keys: HeadVerifier | None = None,
        *,
        after_position: int = 0,
        prev_hash: str | None = GENESIS_HASH,
    ) -> None:
        self._hash_of = hash_of
        self._keys = keys
        self.last_position = after_position
        self.last_hash = prev_hash
        self.signed_through = after_position  # nothing before the start is this check's business
        self.checked = 0
        self.broken: ChainBreak | None = None

    def feed(self, events: Sequence[E], heads: Iterable[SignedHead] = ()) -> ChainBreak | None:
        """Check the next page: `events` continue the log, `heads` are the signed heads among them.

        Returns the first break (and remembers it: later pages are not checked), else None.
        """
        if self.broken is not None:
            return self.broken
        signed = {head.position: head for head in heads} if self._keys is not None else {}
        for event in events:
            problem = self._link(event)
            if problem is None and (head := signed.get(event.position)) is not None:
                problem = self._signed(event, head)
                if problem is None:
                    self.signed_through = event.position
            if problem is not None:
                self.broken = problem
                return problem
            self.last_position, self.last_hash = event.position, event.hash
            self.checked += 1
        return None

    def finish(self, head_position: int | None = None) -> ChainBreak | None:
        """After the last page: the log must reach `head_position` (when known) and, with keys, end
        at a verified signed head. Returns the first break of the whole log, else None."""
        if self.broken is not None:
            return self.broken
        if head_position is not None and self.last_position < head_position:
            self.broken = ChainBreak(
                self.last_position + 1,
                BreakKind.SHORT,
                f"the log ends at {self.last_position} but its head is {head_position}",
            )
        elif self._keys is not None and self.signed_through < self.last_position:
            self.broken = ChainBreak(
                self.signed_through + 1,
                BreakKind.UNSIGNED,
                f"events {self.signed_through + 1}..{self.last_position} are not covered by a signed "
                "head: they were appended without the service's key (or a crash left them unsigned "
                "and the service has not started since)",
            )
        return self.broken

    def _link(self, event: E) -> ChainBreak | None:
        expected = self.last_position + 1
        if event.position > expected:
            return ChainBreak(
                expected,
                BreakKind.MISSING,
                f"position {expected} is missing (next event is {event.position}): deleted or moved",
            )
        if event.position < expected:
            return ChainBreak(
                expected,
                BreakKind.REORDERED,
                f"position {event.position} comes where {expected} should: events repeated or re-ordered",
            )
        if self.last_hash is not None and event.prev_hash != self.last_hash:
            return ChainBreak(
                expected,
                BreakKind.REORDERED,
                "prev_hash does not name the previous event: rows deleted, swapped or re-ordered",
            )
        if self._hash_of(event) != event.hash:
            return ChainBreak(
                expected,
                BreakKind.EDITED,
                "the stored hash does not match the row's content: the row was edited",
            )
        return None

    def _signed(self, event: E, head: SignedHead) -> ChainBreak | None:
        assert self._keys is not None  # heads are only collected with keys
        # The altered event is one of those this head covers beyond the last good head.
        altered = f"an event in {self.signed_through + 1}..{event.position} was altered"
        if head.hash != event.hash:
            return ChainBreak(
                self.signed_through + 1,
                BreakKind.REWRITTEN,
                f"the event differs from the one its service signed: the log was rewritten ({altered})",
            )
        try:
            self._keys.check(head)
        except ForgedEvent as error:
            return ChainBreak(
                self.signed_through + 1,
                BreakKind.SIGNATURE,
                f"{error}: a signature was forged or the key is not pinned ({altered})",
            )
        return None
