"""For tests: a projection seen without its `apply_batch`, so the runner applies one event at a time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.consumer.projection import Projection
from modelyard_events.envelope import DomainEvent, EventEnvelope


@dataclass
class OneByOne:
    """Wraps a BatchProjection; rebuilding through it and through the projection itself must agree."""

    projection: Projection

    @property
    def name(self) -> str:
        """The wrapped projection's name (same checkpoints)."""
        return self.projection.name

    @property
    def schema(self) -> str:
        """The wrapped projection's schema."""
        return self.projection.schema

    async def create_tables(self, conn: AsyncConnection) -> None:
        """The wrapped projection's tables."""
        await self.projection.create_tables(conn)

    async def apply(self, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection) -> None:
        """One event, through the wrapped projection's `apply`."""
        await self.projection.apply(event, envelope, conn)
