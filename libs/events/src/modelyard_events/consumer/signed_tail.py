"""A consumer that reads a topic from its end, with no checkpoint, and acts only on signed events.

A trainer worker reads job-svc's topic from the end of every partition: it has no chain prefix to
extend, so it proves events backwards. A message that carries a signed head which verifies names
its own hash; each event whose hash the next one's `prev_hash` names is then proven too
(consumer/verified_runs.py). Until a head reaches them, messages are held (a bounded number);
whatever never links to a verified head is never released. Partitions deliver independently, so an
event may arrive after a later head was released without it: the hash its successor names is kept,
and the event is released when it comes (late, but never lost and never unproven).
"""

from __future__ import annotations

from typing import TypeVar

from modelyard_events.consumer.verified_runs import linked_back_from
from modelyard_events.envelope import EventEnvelope
from modelyard_events.signing import HeadVerifier
from modelyard_events.wire import Delivered

MAX_HELD = 10_000
_V = TypeVar("_V")


class SignedTail:
    """Holds messages of one source until a verified signed head links to them, then releases them once."""

    def __init__(self, keys: HeadVerifier, max_held: int = MAX_HELD) -> None:
        self._keys, self._max_held = keys, max_held
        self._held: dict[int, EventEnvelope] = {}
        self._released: dict[int, None] = {}  # recently released positions, oldest first
        self._awaited: dict[int, str] = {}  # position → the hash a released successor names

    def offer(self, delivered: Delivered) -> list[EventEnvelope]:
        """Take one message (hash already checked); return the events it proves, ascending.

        Raises ForgedEvent when the message claims a head whose signature does not verify.
        """
        envelope, head = delivered.envelope, delivered.head
        if head is not None:
            self._keys.check(head)
        if envelope.position in self._released:
            return []  # a duplicate
        if head is not None or self._awaited.get(envelope.position) == envelope.hash:
            self._held[envelope.position] = envelope  # proven: a head or a successor names it
            return self._release(envelope.position)
        self._held.setdefault(envelope.position, envelope)  # the first stays until one is proven
        _bound(self._held, self._max_held)
        return []

    def _release(self, position: int) -> list[EventEnvelope]:
        """The proven event at `position` and what links back from it; remember the hash below."""
        run = [e for e in linked_back_from(position, self._held) if e.position not in self._released]
        for envelope in run:
            del self._held[envelope.position]
            self._awaited.pop(envelope.position, None)
            self._released[envelope.position] = None
        if run[0].position > 1 and run[0].position - 1 not in self._released:
            self._awaited[run[0].position - 1] = run[0].prev_hash
        _bound(self._released, self._max_held)
        _bound(self._awaited, self._max_held)
        return run


def _bound(entries: dict[int, _V], most: int) -> None:
    """Forget the lowest positions beyond `most` entries."""
    while len(entries) > most:
        del entries[min(entries)]
