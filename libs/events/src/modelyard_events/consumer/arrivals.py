"""Messages that arrived ahead of a source's chain, held until the missing ones arrive (no I/O).

A topic's partitions are delivered independently, so a poll often brings position n+5 before n+1,
which another partition carries and the next poll brings. Reading every such hole from the source
would read most of the log twice; holding the early messages lets Kafka fill the hole. A hole is
read from the source (lost data, a partition this replica does not own) once it has waited
`gap_wait_s` and the consumer has taken everything its partitions hold on the broker (so a
busy consumer, or one reading a backlog, which the broker hands out a partition's run at a time,
does not give up on messages still to come), or once it has
waited `MAX_WAIT_S`, or holds `MAX_HELD` messages, or the runner's held messages together take
about `MAX_HELD_BYTES`, whatever the polls say. The held messages are a
cache: losing them (a crash) loses nothing, because the source is read whenever a hole is found or
the runner reconciles.

Kafka is not trusted: a held message is released only as part of a run that ends at an event whose
hash a verified signed head names (`note_head`); a message that will never be so vouched for (a
forgery that links, or one that took a genuine message's place) waits out the hole like a missing
one, and then the source is read and the held messages that differ from it are dead-lettered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard_events.consumer.verified_runs import verified_prefix
from modelyard_events.envelope import EventEnvelope, StoredPayload

MAX_HELD = 20_000  # per source
# Per runner, all sources together: the count alone let a broker that sends large messages (a bulk
# SamplesAdded decodes into several hundred KB) fill the process. A held envelope takes about 3.5 KB
# plus 3 bytes a character of its payload's text (tracemalloc: a trainer report 4.3 KB and its kept
# message 0.9 KB, a 10 KB payload 33 KB with its message), so this is about 14,000 trainer reports.
MAX_HELD_BYTES = 64 * 1024 * 1024
MAX_WAIT_S = 1.0


@dataclass
class _Held:
    by_position: dict[int, EventEnvelope] = field(default_factory=dict)
    heads: dict[int, str] = field(default_factory=dict)  # verified signed heads: position → hash
    displaced: list[EventEnvelope] = field(default_factory=list)  # took a place a head gave another
    hole: int = 0  # the missing position the held messages wait for
    since: float = 0.0
    footprint: int = 0  # estimated bytes of by_position (held_footprint)


class EarlyArrivals:
    """Per source: messages beyond the applied position, and since when the chain has had a hole."""

    def __init__(
        self, gap_wait_s: float, clock: Callable[[], float] = time.monotonic, max_bytes: int = MAX_HELD_BYTES
    ) -> None:
        self._gap_wait_s, self._clock, self._max_bytes = gap_wait_s, clock, max_bytes
        self._held: dict[str, _Held] = {}

    def chain(
        self, source: str, arrived: list[EventEnvelope], position: int, last_hash: str
    ) -> list[EventEnvelope]:
        """Hold `arrived`, then take every held message that extends the chain after `position`."""
        held = self._held.setdefault(source, _Held())
        for envelope in arrived:
            if envelope.position > position:
                _hold(held, envelope)
        linked: list[EventEnvelope] = []
        at, at_hash = position, last_hash
        while (next_one := held.by_position.get(at + 1)) and next_one.prev_hash == at_hash:
            linked.append(next_one)
            at, at_hash = next_one.position, next_one.hash
        chained = verified_prefix(linked, position, last_hash, held.heads)
        if chained:
            position, last_hash = chained[-1].position, chained[-1].hash
        for stale in [p for p in held.by_position if p <= position]:
            # applied now, or by someone else (catch-up, another replica)
            held.footprint -= held_footprint(held.by_position.pop(stale))
        for stale in [p for p in held.heads if p <= position]:
            del held.heads[stale]
        if held.by_position and held.hole != position + 1:
            held.hole, held.since = position + 1, self._clock()
        return chained

    def take_displaced(self, source: str) -> list[EventEnvelope]:
        """Messages that held a position until a signed head named another one: forgeries."""
        held = self._held.get(source)
        if held is None or not held.displaced:
            return []
        taken, held.displaced = held.displaced, []
        return taken

    def note_head(self, source: str, position: int, hash_: str) -> None:
        """A signed head of `source` whose signature the caller verified."""
        heads = self._held.setdefault(source, _Held()).heads
        if len(heads) < MAX_HELD:
            heads[position] = hash_

    def overdue(self, source: str, drained: bool) -> dict[int, EventEnvelope]:
        """The held messages of `source` if its hole has waited too long, or it or the runner holds
        too much (and forget them), else {}.

        `drained`: the consumer has taken everything the broker holds of the source's topic.
        """
        held = self._held.get(source)
        if held is None or not held.by_position:
            return {}
        waited = self._clock() - held.since
        if not (
            (drained and waited >= self._gap_wait_s)
            or waited >= MAX_WAIT_S
            or len(held.by_position) >= MAX_HELD
            or self.footprint() >= self._max_bytes
        ):
            return {}
        taken, held.by_position, held.hole, held.heads = held.by_position, {}, 0, {}
        held.footprint = 0
        return taken

    def footprint(self) -> int:
        """Estimated bytes of every source's held messages."""
        return sum(held.footprint for held in self._held.values())

    def due(self) -> set[str]:
        """The sources whose hole has waited `gap_wait_s`: whether their topics are drained matters now."""
        now = self._clock()
        return {
            source
            for source, held in self._held.items()
            if held.by_position and now - held.since >= self._gap_wait_s
        }

    def waiting(self, source: str | None = None) -> bool:
        """Whether `source` (or any source) has held messages; the runner polls more often then."""
        if source is not None:
            return bool(self._held.get(source, _Held()).by_position)
        return any(held.by_position for held in self._held.values())


def _hold(held: _Held, arriving: EventEnvelope) -> None:
    """Hold `arriving`: the first message at a position stays, unless a signed head names this one."""
    present = held.by_position.get(arriving.position)
    if present is None:
        held.by_position[arriving.position] = arriving
        held.footprint += held_footprint(arriving)
    elif present.hash != arriving.hash and held.heads.get(arriving.position) == arriving.hash:
        held.displaced.append(present)
        held.by_position[arriving.position] = arriving
        held.footprint += held_footprint(arriving) - held_footprint(present)


def held_footprint(envelope: EventEnvelope) -> int:
    """About what holding `envelope` costs: its payload's size, times what decoding made of it."""
    data = envelope.data
    size = len(data.json) if type(data) is StoredPayload else len(repr(data))  # a loose message's dict
    return 3_500 + 3 * size
