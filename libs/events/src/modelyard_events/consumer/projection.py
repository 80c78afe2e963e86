"""What a read model implements to be run by ProjectionRunner or rebuilt by replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope

Decoded = tuple[DomainEvent, EventEnvelope]


class Projection(Protocol):
    """A read model in its own schema, updated inside the runner's transaction.

    `apply` must only touch the database through `conn`: the runner commits the
    effect together with its checkpoint, which is what makes it exactly once.
    """

    name: str
    schema: str

    async def create_tables(self, conn: AsyncConnection) -> None:
        """Create the read model's tables in `schema` if missing."""
        ...

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """Update the read model for one event (ignore types it does not use)."""
        ...


@runtime_checkable
class BatchProjection(Projection, Protocol):
    """A projection that can fold many consecutive events of one source in a few statements.

    `apply_batch(events)` must leave the read model exactly as `apply` on each event in order
    would. The runner calls it in a savepoint; when it raises, the runner rolls the savepoint back
    and applies the events one by one, so one poison event still reaches the dead-letter topic
    alone and the others are applied.
    """

    async def apply_batch(self, events: Sequence[Decoded], conn: AsyncConnection) -> None:
        """Update the read model for `events`, in log order, as `apply` on each would."""
        ...
