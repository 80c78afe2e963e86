"""What a read model implements to be run by ProjectionRunner or rebuilt by replay."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope


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
