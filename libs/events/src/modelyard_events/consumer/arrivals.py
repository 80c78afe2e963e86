"""Messages that arrived ahead of a source's chain, held until the missing ones arrive (no I/O).

A topic's partitions are delivered independently, so a poll often brings position n+5 before n+1,
which another partition carries and the next poll brings. Reading every such hole from the source
would read most of the log twice; holding the early messages lets Kafka fill the hole. A hole is
read from the source (lost data, a partition this replica does not own) once it has waited
`gap_wait_s` and a poll came back short of a full batch (the consumer has taken all that was
fetched, so a busy consumer does not give up on messages sitting in its own buffer), or once it has
waited `MAX_WAIT_S` or holds `MAX_HELD` messages whatever the polls say. The held messages are a
cache: losing them (a crash) loses nothing, because the source is read whenever a hole is found or
the runner reconciles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard_events.envelope import EventEnvelope

MAX_HELD = 20_000  # per source
MAX_WAIT_S = 1.0


@dataclass
class _Held:
    by_position: dict[int, EventEnvelope] = field(default_factory=dict)
    hole: int = 0  # the missing position the held messages wait for
    since: float = 0.0


class EarlyArrivals:
    """Per source: messages beyond the applied position, and since when the chain has had a hole."""

    def __init__(self, gap_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._gap_wait_s, self._clock = gap_wait_s, clock
        self._held: dict[str, _Held] = {}

    def chain(
        self, source: str, arrived: list[EventEnvelope], position: int, last_hash: str
    ) -> list[EventEnvelope]:
        """Hold `arrived`, then take every held message that extends the chain after `position`."""
        held = self._held.setdefault(source, _Held())
        for envelope in arrived:
            if envelope.position > position:
                held.by_position[envelope.position] = envelope
        chained: list[EventEnvelope] = []
        while (next_one := held.by_position.get(position + 1)) and next_one.prev_hash == last_hash:
            del held.by_position[position + 1]
            chained.append(next_one)
            position, last_hash = next_one.position, next_one.hash
        for stale in [p for p in held.by_position if p <= position]:
            del held.by_position[stale]  # applied by someone else (catch-up, another replica)
        if held.by_position and held.hole != position + 1:
            held.hole, held.since = position + 1, self._clock()
        return chained

    def overdue(self, source: str, drained: bool) -> dict[int, EventEnvelope]:
        """The held messages of `source` if its hole has waited too long (and forget them), else {}.

        `drained`: the last poll returned less than a full batch.
        """
        held = self._held.get(source)
        if held is None or not held.by_position:
            return {}
        waited = self._clock() - held.since
        if not (
            (drained and waited >= self._gap_wait_s)
            or waited >= MAX_WAIT_S
            or len(held.by_position) >= MAX_HELD
        ):
            return {}
        taken, held.by_position, held.hole = held.by_position, {}, 0
        return taken

    def waiting(self, source: str | None = None) -> bool:
        """Whether `source` (or any source) has held messages; the runner polls more often then."""
        if source is not None:
            return bool(self._held.get(source, _Held()).by_position)
        return any(held.by_position for held in self._held.values())
