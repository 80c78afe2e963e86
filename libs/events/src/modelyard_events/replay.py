"""Replay primitives: walk a log through the one decode path, or rebuild a read model from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_events.consumer.projection import Projection
from modelyard_events.consumer.runner import ProjectionRunner, SourceTopic
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.registry import EventRegistry
from modelyard_events.store.ports import EventSource

Handler = Callable[[DomainEvent, EventEnvelope], Awaitable[None]]


async def replay(
    source: EventSource,
    registry: EventRegistry,
    handle: Handler,
    *,
    after_position: int = 0,
    page: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Decode (upcasting) every event after `after_position` and hand it to `handle`, in order.

    Returns the last position replayed.
    """
    head = await source.head_position()
    position = after_position
    while batch := await source.read_all(position, page):
        for envelope in batch:
            await handle(registry.decode(envelope), envelope)
        position = batch[-1].position
        if progress:
            progress(position, head)
    return position


async def rebuild_projection(
    engine: AsyncEngine, projection: Projection, registry: EventRegistry, sources: list[SourceTopic]
) -> int:
    """Build `projection` from scratch in its schema, which should be new: never rebuild in place.

    Uses the runner's own apply path, so upcasters and idempotency are the same
    as live. Returns how many events could not be applied (dead letters).
    """
    runner = ProjectionRunner(engine, projection, registry, sources, bootstrap_servers=None)
    await runner.create_tables()
    await runner.catch_up()
    return runner.dead_lettered
