"""Load an aggregate, let the domain decide, append at the version read; on a conflict, again.

A ConcurrencyConflict means another command appended to the stream after this one read it: the
decision is made again on fresh state (which may now decide nothing, or refuse), a few times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from modelyard_events.caller import Caller
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.store.ports import EventStore

ATTEMPTS = 5


class FoldedAggregate(Protocol):
    """What the loop needs of an aggregate: the version to append at, its organization, and how to
    fold what was just recorded."""

    @property
    def stream_version(self) -> int: ...
    @property
    def org_id(self) -> str: ...
    def apply_envelopes(self, envelopes: Sequence[EventEnvelope]) -> Self: ...


A = TypeVar("A", bound=FoldedAggregate)


@dataclass(frozen=True)
class AggregateStream:
    """Where an aggregate's events go."""

    stream_type: str
    stream_id: str


async def decide_and_append(
    store: EventStore,
    stream: AggregateStream,
    load: Callable[[str], Awaitable[A]],
    decide: Callable[[A], Sequence[DomainEvent]],
    caller: Caller,
) -> A:
    """The aggregate after `decide`'s events (unchanged when it decides none)."""
    for attempt in range(1, ATTEMPTS + 1):
        aggregate = await load(stream.stream_id)
        events = decide(aggregate)
        if not events:
            return aggregate
        context = caller.context_for(aggregate.org_id)
        try:
            recorded = await store.append(
                stream.stream_type, stream.stream_id, aggregate.stream_version, events, context
            )
        except ConcurrencyConflict:
            if attempt == ATTEMPTS:
                raise
            continue
        return aggregate.apply_envelopes(recorded)
    raise AssertionError("unreachable")
