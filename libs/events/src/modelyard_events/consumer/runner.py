"""ProjectionRunner: Kafka in, read model out, each source event applied exactly once.

Per source service the runner keeps (position, hash) of the last applied event
in the read model's transaction. A message at position+1 whose prev_hash
matches is applied; one at or below the position is a duplicate; anything
further on means messages went missing (a broker that lost data, partitions
delivering out of order), so the missing range is read from the source itself
(`EventSource`: the store now, ReadEvents over gRPC later) and applied in order.
Kafka offsets are committed only after that transaction commits. Poison
(undecodable bytes, unknown types, a handler failing `max_attempts` times) goes
to `<topic>.dlq` with the error, and the runner goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.consumer.checkpoints import create_checkpoint_table, lock_checkpoint, save_checkpoint
from modelyard_events.consumer.projection import Projection
from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import EventStoreError, MalformedEvent, SourceUnavailable
from modelyard_events.registry import EventRegistry
from modelyard_events.store.ports import EventSource
from modelyard_events.topics import FETCH_MAX_WAIT_MS, dead_letter_topic, ensure_topics
from modelyard_events.wire import decode_envelope, encode_envelope

log = logging.getLogger(__name__)
_CATCH_UP_PAGE = 1000


@dataclass(frozen=True)
class SourceTopic:
    """One upstream service: its topic, and where to read its log when messages are missing."""

    name: str
    topic: str
    source: EventSource


class ProjectionRunner:
    """Runs one projection over one or more source topics."""

    def __init__(
        self,
        engine: AsyncEngine,
        projection: Projection,
        registry: EventRegistry,
        sources: list[SourceTopic],
        bootstrap_servers: str | None,
        *,
        group_id: str | None = None,
        max_attempts: int = 3,
        reconcile_every_s: float = 5.0,
    ) -> None:
        self.engine, self.projection, self.registry = engine, projection, registry
        self._by_topic = {s.topic: s for s in sources}
        self._bootstrap = bootstrap_servers
        self._group_id = group_id or f"projection.{projection.name}"
        self._max_attempts, self._reconcile_every_s = max_attempts, reconcile_every_s
        self._dlq: AIOKafkaProducer | None = None
        self.dead_lettered = 0
        self.caught_up = 0  # events applied from the source reader because Kafka did not bring them

    async def create_tables(self) -> None:
        """Create the checkpoint table and the projection's own tables."""
        async with self.engine.begin() as conn:
            await create_checkpoint_table(conn, self.projection.schema)
            await self.projection.create_tables(conn)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; lost connections are retried with backoff."""
        await self.create_tables()
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._consume(stop)
            except Exception as error:
                log.warning("projection %s: %r; retrying in %.1f s", self.projection.name, error, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)

    async def _consume(self, stop: asyncio.Event) -> None:
        if self._bootstrap is None:
            raise EventStoreError("run() needs bootstrap_servers; without them only catch_up() works")
        topics = list(self._by_topic)
        await ensure_topics(self._bootstrap, topics + [dead_letter_topic(t) for t in topics])
        consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._dlq = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all")
        await self._dlq.start()
        await consumer.start()
        try:
            reconciled_at = time.monotonic()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=1000)
                records = [r for partition in batches.values() for r in partition]
                if records:
                    await self.handle_records(records)
                    await consumer.commit()
                if time.monotonic() - reconciled_at > self._reconcile_every_s:
                    await self._reconcile()
                    reconciled_at = time.monotonic()
        finally:
            await consumer.stop()
            await self._dlq.stop()
            self._dlq = None

    async def _reconcile(self) -> None:
        # A source that cannot be read right now (its service is restarting) must not stop the
        # live consumption of the others; the next reconcile tries again.
        try:
            await self.catch_up()
        except (OSError, SourceUnavailable) as error:
            log.warning("projection %s: catch-up skipped: %r", self.projection.name, error)

    async def handle_records(self, records: list[Any]) -> None:
        """Apply a batch of Kafka records in one transaction (poison to the DLQ)."""
        arrived: dict[str, list[EventEnvelope]] = defaultdict(list)
        for record in records:
            try:
                arrived[record.topic].append(decode_envelope(record.value))
            except MalformedEvent as error:
                await self._dead_letter(record.topic, record.value, error, record)
        async with self.engine.begin() as conn:
            for topic, envelopes in arrived.items():
                await self._apply_arrivals(conn, self._by_topic[topic], envelopes)

    async def catch_up(self) -> None:
        """Apply whatever the sources hold beyond the checkpoints (heals lost tails)."""
        for source in self._by_topic.values():
            while True:
                async with self.engine.begin() as conn:
                    position, last_hash = await self._lock(conn, source)
                    head = await source.source.head_position()
                    if head <= position:
                        break
                    through = min(head, position + _CATCH_UP_PAGE)
                    await self._catch_up_through(conn, source, position, last_hash, through)

    async def _apply_arrivals(
        self, conn: AsyncConnection, source: SourceTopic, envelopes: list[EventEnvelope]
    ) -> None:
        position, last_hash = await self._lock(conn, source)
        for envelope in sorted(envelopes, key=lambda e: e.position):
            if envelope.position <= position:
                continue  # duplicate: the relay republished, or catch-up got here first
            if envelope.position == position + 1 and envelope.prev_hash == last_hash:
                await self._apply(conn, source, envelope)
                position, last_hash = envelope.position, envelope.hash
                continue
            position, last_hash = await self._catch_up_through(
                conn, source, position, last_hash, envelope.position
            )
            if position < envelope.position:
                problem = f"position {envelope.position} is not in {source.name}'s log"
            elif position == envelope.position and last_hash != envelope.hash:
                problem = f"differs from {source.name}'s event at position {position}"
            else:
                continue
            await self._dead_letter(source.topic, encode_envelope(envelope), MalformedEvent(problem))
        await save_checkpoint(
            conn, self.projection.schema, self.projection.name, source.name, position, last_hash
        )

    async def _catch_up_through(
        self, conn: AsyncConnection, source: SourceTopic, position: int, last_hash: str, through: int
    ) -> tuple[int, str]:
        """Read (position, through] from the source and apply it; return the new checkpoint."""
        while position < through:
            page = await source.source.read_all(position, min(_CATCH_UP_PAGE, through - position))
            if not page:
                break
            for envelope in page:
                if envelope.prev_hash != last_hash:
                    raise EventStoreError(
                        f"{source.name} position {envelope.position} does not chain to the last "
                        "applied event: the source's log was altered (run verify)"
                    )
                await self._apply(conn, source, envelope)
                position, last_hash = envelope.position, envelope.hash
                self.caught_up += 1
        await save_checkpoint(
            conn, self.projection.schema, self.projection.name, source.name, position, last_hash
        )
        return position, last_hash

    async def _apply(self, conn: AsyncConnection, source: SourceTopic, envelope: EventEnvelope) -> None:
        try:
            event = self.registry.decode(envelope)
        except EventStoreError as error:
            await self._dead_letter(source.topic, encode_envelope(envelope), error)
            return
        failure: Exception | None = None
        for _ in range(self._max_attempts):
            try:
                async with conn.begin_nested():
                    await self.projection.apply(event, envelope, conn)
                return
            except Exception as error:
                failure = error
        assert failure is not None
        await self._dead_letter(source.topic, encode_envelope(envelope), failure)

    async def _lock(self, conn: AsyncConnection, source: SourceTopic) -> tuple[int, str]:
        return await lock_checkpoint(conn, self.projection.schema, self.projection.name, source.name)

    async def _dead_letter(
        self, topic: str, value: bytes | None, error: Exception, record: Any = None
    ) -> None:
        self.dead_lettered += 1
        log.error("projection %s: dead-lettering a message from %s: %s", self.projection.name, topic, error)
        headers = [
            ("error", f"{type(error).__name__}: {error}".encode()[:4000]),
            ("projection", self.projection.name.encode()),
        ]
        if record is not None:
            headers.append(("origin", f"{record.topic}/{record.partition}/{record.offset}".encode()))
        if self._dlq is None:
            return  # a rebuild without Kafka: counted and logged, reported by the caller
        await self._dlq.send_and_wait(dead_letter_topic(topic), value or b"", headers=headers)
